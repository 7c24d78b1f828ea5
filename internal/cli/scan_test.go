package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

const slimTar = "../../testdata/images/slim.tar"

var (
	scanDBOnce sync.Once
	scanDBDir  string
)

// scanDB imports the Debian, Go and npm fixtures once, through the CLI.
func scanDB(t *testing.T) string {
	t.Helper()
	scanDBOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bulwark-cli-db-")
		if err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI(t, nil, "db", "import", "--db-dir", dir,
			"../../testdata/osv/Debian", "../../testdata/osv/Go", "../../testdata/osv/npm")
		if code != ExitOK {
			t.Fatalf("db import: %s", errOut)
		}
		scanDBDir = dir
	})
	if scanDBDir == "" {
		t.Fatal("no scan database")
	}
	return scanDBDir
}

// cleaningM removes the shared scan database after the tests ran, before
// testenv.Main stops the shared components and exits.
type cleaningM struct{ m *testing.M }

func (c cleaningM) Run() int {
	code := c.m.Run()
	if scanDBDir != "" {
		os.RemoveAll(scanDBDir)
	}
	return code
}

func TestMain(m *testing.M) {
	if code, ok := runCLIFromEnv(); ok {
		os.Exit(code)
	}
	testenv.Main(cleaningM{m})
}

func scanReport(t *testing.T, args ...string) *model.Report {
	t.Helper()
	code, out, errOut := runCLI(t, nil, append(args, "--db-dir", scanDB(t), "-f", "json", "--cache-dir", t.TempDir())...)
	if code != ExitOK {
		t.Fatalf("bulwark %v: exit %d\n%s", args, code, errOut)
	}
	var r model.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bulwark %v printed %.200q: %v", args, out, err)
	}
	return &r
}

func reportHas(r *model.Report, pkg, id string) bool {
	for _, f := range r.Findings {
		if f.Package.Name == pkg && (f.VulnerabilityID == id || slices.Contains(f.Aliases, id)) {
			return true
		}
	}
	return false
}

func TestScanArchiveJSON(t *testing.T) {
	r := scanReport(t, "scan", "archive", slimTar)
	for _, w := range []struct{ pkg, id string }{
		{"libc6", "CVE-2025-4802"}, {"curl", "CVE-2024-2398"}, {"lodash", "GHSA-35jh-r3h4-6jhm"},
		{"golang.org/x/net", "GO-2023-2102"}, {"stdlib", "GO-2024-2687"},
	} {
		if !reportHas(r, w.pkg, w.id) {
			t.Errorf("no %s in %s", w.id, w.pkg)
		}
	}
	if r.SchemaVersion != model.ReportSchemaVersion || r.Target.Kind != model.TargetArchive || r.Database.Built.IsZero() {
		t.Errorf("report header = %d %+v %+v", r.SchemaVersion, r.Target, r.Database)
	}
}

func TestScanFilters(t *testing.T) {
	all := scanReport(t, "scan", "archive", slimTar)
	high := scanReport(t, "scan", "archive", slimTar, "--severity", "HIGH,CRITICAL", "--ignore-unfixed")
	if len(high.Findings) == 0 || len(high.Findings) >= len(all.Findings) {
		t.Fatalf("filtered %d of %d findings", len(high.Findings), len(all.Findings))
	}
	for _, f := range high.Findings {
		if (f.Severity != model.SeverityHigh && f.Severity != model.SeverityCritical) || f.FixedVersion == "" {
			t.Errorf("filter kept %s %s fixed %q", f.VulnerabilityID, f.Severity, f.FixedVersion)
		}
	}
}

func TestScanExitCodeAndOutputFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.sarif")
	code, stdout, errOut := runCLI(t, nil, "scan", "archive", slimTar, "--db-dir", scanDB(t),
		"-f", "sarif", "-o", out, "--exit-code", "3", "--no-cache")
	if code != 3 || !strings.Contains(errOut, "vulnerabilities reported") || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 3 and the report in the file", code, stdout, errOut)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var sarif struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &sarif); err != nil || sarif.Version != "2.1.0" {
		t.Errorf("report file is not SARIF 2.1.0: %v %.100q", err, data)
	}
	// Nothing at or above CRITICAL+fixable in npm only: exit 0 even with --exit-code.
	dir := t.TempDir()
	code, _, errOut = runCLI(t, nil, "scan", "fs", dir, "--db-dir", scanDB(t), "--exit-code", "3", "--no-cache")
	if code != ExitOK {
		t.Errorf("clean directory: exit %d, %s", code, errOut)
	}
}

func TestScanTableAndFS(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "srv", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := `{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"4.17.15"}}}`
	if err := os.WriteFile(filepath.Join(app, "package-lock.json"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "scan", "fs", root, "--db-dir", scanDB(t), "--no-cache")
	if code != ExitOK {
		t.Fatalf("scan fs: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "lodash") || !strings.Contains(out, "GHSA-35jh-r3h4-6jhm") || !strings.Contains(out, "4.17.21") {
		t.Errorf("table output lacks the lodash finding:\n%s", out)
	}
}

func TestScanErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown format", []string{"scan", "fs", ".", "-f", "xml"}, ExitUsage, `unknown format "xml"`},
		{"unknown severity", []string{"scan", "fs", ".", "--severity", "SEVERE"}, ExitUsage, `unknown severity "SEVERE"`},
		{"no database", []string{"scan", "fs", ".", "--db-dir", t.TempDir()}, ExitError, "no vulnerability database"},
		{"missing archive", []string{"scan", "archive", "/nonexistent.tar"}, ExitError, "no such file"},
		{"not an archive", []string{"scan", "archive", "scan_test.go"}, ExitError, "archive"},
		{"missing directory", []string{"scan", "fs", "/nonexistent-dir"}, ExitError, "no such file"},
		{"bad reference", []string{"scan", "image", "UPPER/Case::bad"}, ExitError, "parsing image reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !slices.Contains(args, "--db-dir") {
				args = append(args, "--db-dir", scanDB(t))
			}
			args = append(args, "--no-cache")
			code, _, errOut := runCLI(t, nil, args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestScanIgnoreFileAndVEX(t *testing.T) {
	dir := t.TempDir()
	ignore := filepath.Join(dir, "ignore.yaml")
	if err := os.WriteFile(ignore, []byte("ignore:\n  - id: CVE-2024-2398\n    package: curl\n    reason: curl is not run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vex := filepath.Join(dir, "app.vex.json")
	if err := os.WriteFile(vex, []byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[
		{"vulnerability":{"name":"GHSA-35jh-r3h4-6jhm"},"products":[{"@id":"pkg:npm/lodash"}],
		 "status":"not_affected","justification":"vulnerable_code_not_present"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := scanReport(t, "scan", "archive", slimTar, "--ignore-file", ignore, "--vex", vex)
	if reportHas(r, "curl", "CVE-2024-2398") || reportHas(r, "lodash", "GHSA-35jh-r3h4-6jhm") {
		t.Error("suppressed findings still reported")
	}
	if !reportHas(r, "libc6", "CVE-2025-4802") {
		t.Error("an unrelated finding was suppressed")
	}
	sources := map[string]int{}
	for _, s := range r.Suppressed {
		sources[s.Source]++
	}
	if sources["ignore-file"] != 1 || sources["vex"] == 0 {
		t.Errorf("suppressed by source = %v", sources)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("ignore:\n  - id: CVE-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, nil, "scan", "archive", slimTar, "--db-dir", scanDB(t), "--ignore-file", bad, "--no-cache")
	if code != ExitUsage || !strings.Contains(errOut, "has no reason") {
		t.Errorf("ignore entry without a reason: exit %d, %q", code, errOut)
	}
}

// TestScanImageCommand scans the fixture image in a registry with token
// authentication through the command line, with credentials from the
// environment.
func TestScanImageCommand(t *testing.T) {
	reg := testenv.StartDistributionTokenAuth(t)
	digest := reg.PushTarball(t, "vulnlab/slim:1", slimTar)
	env := map[string]string{"BULWARK_USERNAME": reg.Username, "BULWARK_PASSWORD": reg.Password}
	code, out, errOut := runCLI(t, env, "scan", "image", reg.Host+"/vulnlab/slim:1", "--insecure",
		"--db-dir", scanDB(t), "--cache-dir", t.TempDir(), "-f", "json")
	if code != ExitOK {
		t.Fatalf("scan image: exit %d\n%s", code, errOut)
	}
	var r model.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Target.Digest != digest.DigestStr() || !reportHas(&r, "libc6", "CVE-2025-4802") {
		t.Errorf("report target %+v, libc6 CVE-2025-4802 found: %v", r.Target, reportHas(&r, "libc6", "CVE-2025-4802"))
	}
	code, _, errOut = runCLI(t, nil, "scan", "image", reg.Host+"/vulnlab/slim:1", "--insecure", "--db-dir", scanDB(t), "--no-cache")
	if code != ExitError || !strings.Contains(strings.ToUpper(errOut), "UNAUTHORIZED") {
		t.Errorf("without credentials: exit %d, %q", code, errOut)
	}
}
