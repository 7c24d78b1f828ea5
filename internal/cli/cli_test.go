package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/version"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return code, out.String(), errb.String()
}

func TestVersionJSON(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "version", "-f", "json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got version.Info
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("version -o json printed %q: %v", out, err)
	}
	if diff := cmp.Diff(version.Get(), got); diff != "" {
		t.Errorf("version info (-want +got):\n%s", diff)
	}
}

func TestVersionText(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != ExitOK || !strings.HasPrefix(out, "bulwark ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version = %d %q", code, out)
	}
}

func TestSettingsPrecedenceAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badLevel := write("bad-level.yaml", "log-level: loud\n")
	scoped := write("scoped.yaml", "version:\n  format: json\n")
	typo := write("typo.yaml", "log-levle: debug\n")

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "bad level in file", args: []string{"--config", badLevel, "version"}, wantCode: ExitUsage, wantErr: `unknown log level "loud"`},
		{name: "env beats file", env: map[string]string{"BULWARK_LOG_LEVEL": "debug"}, args: []string{"--config", badLevel, "version"}, wantOut: "bulwark "},
		{name: "bad level in env", env: map[string]string{"BULWARK_LOG_LEVEL": "loud"}, args: []string{"version"}, wantCode: ExitUsage, wantErr: "loud"},
		{name: "flag beats env", env: map[string]string{"BULWARK_LOG_LEVEL": "loud"}, args: []string{"--log-level", "warn", "version"}, wantOut: "bulwark "},
		{name: "config path from env", env: map[string]string{"BULWARK_CONFIG": scoped}, args: []string{"version"}, wantOut: `"goVersion"`},
		{name: "subcommand section", args: []string{"--config", scoped, "version"}, wantOut: `"goVersion"`},
		{name: "flag beats subcommand section", args: []string{"--config", scoped, "version", "-f", "text"}, wantOut: "bulwark "},
		{name: "unknown key", args: []string{"--config", typo, "version"}, wantCode: ExitUsage, wantErr: `"log-levle" names no flag`},
		{name: "missing file", args: []string{"--config", filepath.Join(dir, "nope.yaml"), "version"}, wantCode: ExitUsage, wantErr: "no such file"},
		{name: "bad format", args: []string{"--log-format", "xml", "version"}, wantCode: ExitUsage, wantErr: `unknown log format "xml"`},
		{name: "unknown flag", args: []string{"version", "--nope"}, wantCode: ExitUsage, wantErr: "unknown flag: --nope"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: ExitUsage, wantErr: `unknown command "frobnicate"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			if !strings.Contains(out, tc.wantOut) {
				t.Errorf("stdout %q does not contain %q", out, tc.wantOut)
			}
			if !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("stderr %q does not contain %q", errOut, tc.wantErr)
			}
		})
	}
}

// TestLinkerStampsVersion builds the real binary with the -ldflags the
// Makefile uses and checks that `bulwark version` reports them.
func TestLinkerStampsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "bulwark")
	pkg := "github.com/bulwarkhq/bulwark/internal/version"
	ldflags := "-X " + pkg + ".Version=v9.8.7 -X " + pkg + ".Commit=abc123 -X " + pkg + ".BuildDate=2026-01-02T03:04:05Z"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "github.com/bulwarkhq/bulwark/cmd/bulwark")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "-f", "json").Output()
	if err != nil {
		t.Fatalf("bulwark version: %v", err)
	}
	var got version.Info
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("bulwark version printed %q: %v", out, err)
	}
	want := version.Info{Version: "v9.8.7", Commit: "abc123", BuildDate: "2026-01-02T03:04:05Z", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
}
