package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"log-level": "BULWARK_LOG_LEVEL",
		"db-dir":    "BULWARK_DB_DIR",
		"config":    "BULWARK_CONFIG",
	} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Section
	}{
		{name: "empty", in: "", want: newSection()},
		{name: "null document", in: "~\n", want: newSection()},
		{name: "comment only", in: "# nothing\n", want: newSection()},
		{
			name: "scalars lists and sections",
			in: `log-level: debug
severity: [HIGH, CRITICAL]
timeout: 30s
port: 0755
skip:
db:
  db-dir: /var/lib/db
  update:
    url: http://127.0.0.1/
`,
			want: &Section{
				Values: map[string][]string{
					"log-level": {"debug"},
					"severity":  {"HIGH", "CRITICAL"},
					"timeout":   {"30s"},
					"port":      {"0755"},
				},
				Sections: map[string]*Section{
					"db": {
						Values: map[string][]string{"db-dir": {"/var/lib/db"}},
						Sections: map[string]*Section{
							"update": {Values: map[string][]string{"url": {"http://127.0.0.1/"}}, Sections: map[string]*Section{}},
						},
					},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tc.want, f.Root); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"not yaml", "a: [b\n", "invalid config file"},
		{"root is a list", "- a\n- b\n", "must be a mapping"},
		{"root is a scalar", "hello\n", "must be a mapping"},
		{"section is a list of maps", "db:\n  - a: b\n", "list of plain values"},
		{"duplicate key", "a: 1\na: 2\n", "given twice"},
		{"duplicate section", "db: {a: 1}\ndb: {b: 2}\n", "given twice"},
		{"alias", "a: &x b\nc: *x\n", "aliases are not supported"},
		{"billion laughs", "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "list of plain values"},
		{"two documents", "a: 1\n---\nb: 2\n", "more than one YAML document"},
		{"complex key", "? [a, b]\n: c\n", "keys must be non-empty strings"},
		{"empty key", "'': c\n", "keys must be non-empty strings"},
		{"too large", "a: " + strings.Repeat("x", MaxFileSize) + "\n", "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error containing %q", tc.in, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// testTree builds a small command tree: bulwark [--log-level] db [--db-dir]
// update [--url --severity].
func testTree() (root, db, update *cobra.Command) {
	root = &cobra.Command{Use: "bulwark"}
	root.PersistentFlags().String("log-level", "info", "")
	db = &cobra.Command{Use: "db"}
	db.PersistentFlags().String("db-dir", "/default", "")
	update = &cobra.Command{Use: "update", Run: func(*cobra.Command, []string) {}}
	update.Flags().String("url", "", "")
	update.Flags().StringSlice("severity", nil, "")
	update.Flags().Int("workers", 1, "")
	root.AddCommand(db)
	db.AddCommand(update)
	return root, db, update
}

func TestApplyPrecedence(t *testing.T) {
	file, err := Parse([]byte(`
log-level: warn
url: http://root/
severity: [LOW]
db:
  db-dir: /from/file
  update:
    url: http://update/
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want map[string]string
	}{
		{
			name: "file only; the most specific section wins",
			want: map[string]string{"log-level": "warn", "db-dir": "/from/file", "url": "http://update/", "severity": "[LOW]", "workers": "1"},
		},
		{
			name: "environment beats the file",
			env:  map[string]string{"BULWARK_LOG_LEVEL": "debug", "BULWARK_SEVERITY": "HIGH,CRITICAL", "BULWARK_WORKERS": "4"},
			want: map[string]string{"log-level": "debug", "db-dir": "/from/file", "url": "http://update/", "severity": "[HIGH,CRITICAL]", "workers": "4"},
		},
		{
			name: "flags beat the environment",
			args: []string{"--log-level", "error", "--db-dir", "/flag", "--severity", "MEDIUM"},
			env:  map[string]string{"BULWARK_LOG_LEVEL": "debug", "BULWARK_DB_DIR": "/env", "BULWARK_SEVERITY": "HIGH"},
			want: map[string]string{"log-level": "error", "db-dir": "/flag", "url": "http://update/", "severity": "[MEDIUM]", "workers": "1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, _, update := testTree()
			if err := file.Validate(root); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			root.SetArgs(append([]string{"db", "update"}, tc.args...))
			update.PreRunE = func(cmd *cobra.Command, _ []string) error {
				return Apply(cmd, file, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			}
			if err := root.Execute(); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			got := map[string]string{}
			for name := range tc.want {
				got[name] = update.Flags().Lookup(name).Value.String()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("flag values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyBadValues(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		wantErr    string
	}{
		{name: "bad env value", env: map[string]string{"BULWARK_WORKERS": "many"}, wantErr: "BULWARK_WORKERS"},
		{name: "bad file value", file: "workers: many\n", wantErr: `key "workers"`},
		{name: "list for a single-valued flag", file: "url: [a, b]\n", wantErr: "takes one value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file, err := Parse([]byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			file.Path = "test.yaml"
			_, _, update := testTree()
			err = Apply(update, file, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Apply error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateUnknownKeys(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"typo at the top", "log-levl: debug\n", `"log-levl" names no flag`},
		{"flag of another command", "db:\n  nope: 1\n", `"db.nope" names no flag`},
		{"unknown subcommand", "dbs:\n  db-dir: x\n", `"dbs" names no subcommand`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			root, _, _ := testTree()
			err = f.Validate(root)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) error = %v, want ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", MaxFileSize+10)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReadFile(big) error = %v, want ErrInvalid", err)
	}
	ok := filepath.Join(dir, "ok.yaml")
	if err := os.WriteFile(ok, []byte("log-level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(ok)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != ok || f.Root.Values["log-level"][0] != "debug" {
		t.Errorf("ReadFile(ok) = %+v", f)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "a: b\n", "db:\n  x: [1, 2]\n", "a: &x b\nc: *x\n", "? [a]\n: b\n", "- 1\n", "a: {b: {c: {d: e}}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			return
		}
		root, _, _ := testTree()
		_ = file.Validate(root)
	})
}
