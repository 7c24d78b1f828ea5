package cli

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// osvBucket serves the fixture exports of ecosystems as OSV's bucket lays
// them out: <Ecosystem>/all.zip as is, and a modified_id.csv generated
// from the records' modification times.
func osvBucket(t *testing.T, ecosystems ...string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for _, eco := range ecosystems {
		zipPath := filepath.Join("..", "..", "testdata", "osv", eco, "all.zip")
		csv := modifiedCSV(t, zipPath)
		mux.HandleFunc("/"+eco+"/all.zip", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, zipPath) })
		mux.HandleFunc("/"+eco+"/modified_id.csv", func(w http.ResponseWriter, _ *http.Request) { w.Write(csv) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// modifiedCSV builds the modified_id.csv of an export zip, newest first.
func modifiedCSV(t *testing.T, path string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	type line struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
	}
	var lines []line
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var l line
		if err := json.Unmarshal(data, &l); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		lines = append(lines, l)
	}
	slices.SortFunc(lines, func(a, b line) int { return b.Modified.Compare(a.Modified) })
	var buf bytes.Buffer
	for _, l := range lines {
		fmt.Fprintf(&buf, "%s,%s\n", l.Modified.Format(time.RFC3339), l.ID)
	}
	return buf.Bytes()
}

// statusOf runs `db status -f json` on dbDir.
func statusOf(t *testing.T, dbDir string) *vulndb.Status {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "db", "status", "--db-dir", dbDir, "-f", "json")
	if code != ExitOK {
		t.Fatalf("db status: exit %d\n%s", code, errOut)
	}
	var st vulndb.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("db status -f json printed %q: %v", out, err)
	}
	return &st
}

func TestDBUpdateFromOSV(t *testing.T) {
	srv := osvBucket(t, "npm", "Debian")
	dbDir := t.TempDir()
	env := map[string]string{"BULWARK_SOURCE_URL": srv.URL}
	code, _, errOut := runCLI(t, env, "db", "update", "--db-dir", dbDir, "--ecosystem", "npm", "--ecosystem", "Debian")
	if code != ExitOK {
		t.Fatalf("db update: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"ecosystem=npm mode=full", "ecosystem=Debian mode=full", "vulnerability database updated", "added=133"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("db update log does not contain %q:\n%s", want, errOut)
		}
	}
	counts := map[string]int{}
	for _, e := range statusOf(t, dbDir).Ecosystems {
		counts[e.Ecosystem] = e.Records
	}
	if counts["npm"] != 5 || counts["Debian:12"] != 128 {
		t.Errorf("ecosystems = %v", counts)
	}

	// Again, naming no ecosystem: the database's, incrementally, and
	// nothing has changed.
	code, _, errOut = runCLI(t, env, "db", "update", "--db-dir", dbDir)
	if code != ExitOK {
		t.Fatalf("second db update: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"ecosystem=npm mode=incremental", "ecosystem=Debian mode=incremental", "changed=0", "added=0 updated=0"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("second db update log does not contain %q:\n%s", want, errOut)
		}
	}
}

func TestDBUpdateErrors(t *testing.T) {
	srv := osvBucket(t, "npm")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"empty database, no ecosystem", []string{"db", "update", "--source-url", srv.URL}, ExitUsage, "has no ecosystems yet: name the ones to download with --ecosystem"},
		{"bad ecosystem", []string{"db", "update", "--source-url", srv.URL, "--ecosystem", "../npm"}, ExitUsage, `--ecosystem: invalid ecosystem name: "../npm"`},
		{"bad source URL", []string{"db", "update", "--source-url", "file:///srv/osv", "--ecosystem", "npm"}, ExitUsage, `--source-url: invalid source URL "file:///srv/osv"`},
		{"unknown ecosystem", []string{"db", "update", "--source-url", srv.URL, "--ecosystem", "npm,Nonesuch"}, ExitError, "no OSV export for ecosystem \"Nonesuch\""},
		{"from-oci with ecosystem", []string{"db", "update", "--from-oci", "localhost/x:1", "--ecosystem", "npm"}, ExitUsage, "cannot be combined with --ecosystem"},
		{"push without database", []string{"db", "push", "localhost/x:1"}, ExitError, "no vulnerability database"},
		{"push without ref", []string{"db", "push"}, ExitUsage, "accepts 1 arg(s), received 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "--db-dir", t.TempDir())
			code, _, errOut := runCLI(t, nil, args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestDBPushAndUpdateFromOCI(t *testing.T) {
	src := t.TempDir()
	code, _, errOut := runCLI(t, nil, "db", "import", "--db-dir", src, "../../testdata/osv/npm/all.zip", "../../testdata/osv/Debian")
	if code != ExitOK {
		t.Fatalf("db import: exit %d\n%s", code, errOut)
	}
	want := statusOf(t, src)
	registries := map[string]func(testing.TB) *testenv.Registry{
		"in-process":   testenv.InProcessRegistry,
		"distribution": testenv.StartDistribution,
	}
	for name, start := range registries {
		t.Run(name, func(t *testing.T) {
			reg := start(t)
			// Credentials from the environment, like any flag.
			env := map[string]string{"BULWARK_USERNAME": reg.Username, "BULWARK_PASSWORD": reg.Password}
			ref := reg.Host + "/bulwark/vulndb:latest"
			code, out, errOut := runCLI(t, env, "db", "push", "--db-dir", src, ref)
			if code != ExitOK {
				t.Fatalf("db push: exit %d\n%s", code, errOut)
			}
			if !strings.HasPrefix(out, reg.Host+"/bulwark/vulndb@sha256:") {
				t.Errorf("db push printed %q, want the bundle's reference by digest", out)
			}
			dst := t.TempDir()
			code, _, errOut = runCLI(t, env, "db", "update", "--db-dir", dst, "--from-oci", strings.TrimSpace(out))
			if code != ExitOK {
				t.Fatalf("db update --from-oci: exit %d\n%s", code, errOut)
			}
			if !strings.Contains(errOut, "vulnerability database pulled") {
				t.Errorf("db update --from-oci log: %s", errOut)
			}
			got := statusOf(t, dst)
			if diff := cmp.Diff(want.Ecosystems, got.Ecosystems); diff != "" {
				t.Errorf("pulled database (-pushed +pulled):\n%s", diff)
			}
		})
	}
}
