package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

func TestDBImportAndStatus(t *testing.T) {
	dbDir := t.TempDir()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "broken.json"), []byte(`{"id":"GHSA-broken","modified":`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, nil, "db", "import", "--db-dir", dbDir,
		"../../testdata/osv/npm/all.zip", "../../testdata/osv/Debian", src)
	if code != ExitOK {
		t.Fatalf("db import: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "rejected=1") {
		t.Errorf("db import log %q does not count the rejected record", errOut)
	}
	code, out, errOut := runCLI(t, nil, "db", "status", "--db-dir", dbDir, "-f", "json")
	if code != ExitOK {
		t.Fatalf("db status: exit %d\n%s", code, errOut)
	}
	var st vulndb.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("db status -o json printed %q: %v", out, err)
	}
	counts := map[string]int{}
	for _, e := range st.Ecosystems {
		counts[e.Ecosystem] = e.Records
	}
	if counts["npm"] != 5 || counts["Debian:12"] != 128 {
		t.Errorf("ecosystems = %v", counts)
	}
	if len(st.Rejected) != 1 || st.Rejected[0].ID != "GHSA-broken" {
		t.Errorf("rejected = %+v, want GHSA-broken", st.Rejected)
	}
	code, out, _ = runCLI(t, nil, "db", "status", "--db-dir", dbDir)
	if code != ExitOK || !strings.Contains(out, "Debian:12") || !strings.Contains(out, "GHSA-broken") {
		t.Errorf("db status text = %d %q", code, out)
	}
	// The db dir can come from the environment like any flag.
	code, _, _ = runCLI(t, map[string]string{"BULWARK_DB_DIR": dbDir}, "db", "status")
	if code != ExitOK {
		t.Errorf("db status with BULWARK_DB_DIR: exit %d", code)
	}
}

func TestDBErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"status without a database", []string{"db", "status", "--db-dir", t.TempDir()}, ExitError, "no vulnerability database"},
		{"import of a missing path", []string{"db", "import", "--db-dir", t.TempDir(), "/nonexistent/osv"}, ExitError, "no such file"},
		{"import without paths", []string{"db", "import", "--db-dir", t.TempDir()}, ExitUsage, "requires at least 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, nil, tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}
