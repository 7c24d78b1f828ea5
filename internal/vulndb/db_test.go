package vulndb

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// buildDB imports paths into a new database under a temp dir.
func buildDB(t testing.TB, paths ...string) string {
	t.Helper()
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Import(context.Background(), w, paths...); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
)

// fixtureDB is a database of all OSV fixtures, built once for the package.
func fixtureDB(t testing.TB) *DB {
	t.Helper()
	fixtureOnce.Do(func() {
		fixtureDir, fixtureErr = os.MkdirTemp("", "bulwark-vulndb-test-")
		if fixtureErr != nil {
			return
		}
		var w *Writer
		if w, fixtureErr = Create(fixtureDir); fixtureErr != nil {
			return
		}
		if fixtureErr = Import(context.Background(), w, "../../testdata/osv"); fixtureErr != nil {
			w.Abort()
			return
		}
		fixtureErr = w.Commit()
	})
	if fixtureErr != nil {
		t.Fatalf("building fixture database: %v", fixtureErr)
	}
	return openDB(t, fixtureDir)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func openDB(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func match(t testing.TB, db *DB, pkgs ...model.Package) *Result {
	t.Helper()
	res, err := db.Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func findingFor(res *Result, pkg, id string) *model.Finding {
	for i, f := range res.Findings {
		if f.Package.Name == pkg && (f.VulnerabilityID == id || slices.Contains(f.Aliases, id)) {
			return &res.Findings[i]
		}
	}
	return nil
}

// TestMatchFixtureImagePackages checks the vulnerabilities the fixture
// image is known to carry, against the real OSV exports.
func TestMatchFixtureImagePackages(t *testing.T) {
	db := fixtureDB(t)
	res := match(t, db,
		model.Package{Name: "libc6", Version: "2.36-9+deb12u7", SourceName: "glibc", SourceVersion: "2.36-9+deb12u7", Ecosystem: "Debian:12"},
		model.Package{Name: "curl", Version: "7.88.1-10+deb12u5", SourceName: "curl", Ecosystem: "Debian:12"},
		model.Package{Name: "lodash", Version: "4.17.15", Ecosystem: "npm"},
		model.Package{Name: "golang.org/x/net", Version: "v0.7.0", Ecosystem: "Go"},
		model.Package{Name: "stdlib", Version: "1.21.0", Ecosystem: "Go"},
	)
	for _, want := range []struct{ pkg, id, fixed string }{
		{"libc6", "CVE-2025-4802", ""},
		{"curl", "CVE-2024-2398", "7.88.1-10+deb12u6"},
		{"lodash", "GHSA-35jh-r3h4-6jhm", "4.17.21"},
		{"golang.org/x/net", "GO-2023-2102", "0.17.0"},
		{"stdlib", "GO-2024-2687", "1.21.9"},
	} {
		f := findingFor(res, want.pkg, want.id)
		if f == nil {
			t.Errorf("%s: no finding %s", want.pkg, want.id)
			continue
		}
		if want.fixed != "" && f.FixedVersion != want.fixed {
			t.Errorf("%s %s: fixed %q, want %q", want.pkg, want.id, f.FixedVersion, want.fixed)
		}
	}
	lodash := findingFor(res, "lodash", "GHSA-35jh-r3h4-6jhm")
	if lodash != nil && (lodash.Severity != model.SeverityHigh || lodash.CVSSScore != 7.2 || !slices.Contains(lodash.Aliases, "CVE-2021-23337")) {
		t.Errorf("lodash finding = %+v, want HIGH 7.2 with alias CVE-2021-23337", lodash)
	}
	// GO-2023-2102 is one flaw under three ids: it shows once for x/net.
	n := 0
	for _, f := range res.Findings {
		if f.Package.Name == "golang.org/x/net" && (f.VulnerabilityID == "GO-2023-2102" || slices.Contains(f.Aliases, "CVE-2023-39325")) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("GO-2023-2102 reported %d times for golang.org/x/net, want once", n)
	}
}

func TestMatchDoesNotReportFixedVersions(t *testing.T) {
	db := fixtureDB(t)
	res := match(t, db,
		model.Package{Name: "lodash", Version: "4.17.21", Ecosystem: "npm"},
		model.Package{Name: "golang.org/x/net", Version: "v0.999.0", Ecosystem: "Go"},
		model.Package{Name: "curl", Version: "7.88.1-10+deb12u999", SourceName: "curl", Ecosystem: "Debian:12"},
		model.Package{Name: "curl", Version: "7.88.1-10+deb12u5", SourceName: "curl", Ecosystem: "Debian:11"},
	)
	for _, f := range res.Findings {
		t.Errorf("unexpected finding %s in %s %s (%s)", f.VulnerabilityID, f.Package.Name, f.Package.Version, f.Package.Ecosystem)
	}
	res = match(t, db, model.Package{Name: "lodash", Ecosystem: "npm"})
	if len(res.Findings) != 0 || len(res.Unmatched) != 1 || res.Unmatched[0].Reason != "no version" {
		t.Errorf("a package without a version: %+v", res)
	}
}

func TestAliasesMergeIntoOneFinding(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rng := `"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0.0"}]}]`
	write("a.json", `{"id":"GHSA-aaaa","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-1"],"summary":"from GitHub",
		"affected":[{"package":{"ecosystem":"npm","name":"pkg"},`+rng+`}],"database_specific":{"severity":"MODERATE"}}`)
	write("b.json", `{"id":"OTHER-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2024-1"],
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
		"affected":[{"package":{"ecosystem":"npm","name":"pkg"},`+rng+`}]}`)
	write("c.json", `{"id":"GHSA-cccc","modified":"2024-01-01T00:00:00Z","summary":"unrelated",
		"affected":[{"package":{"ecosystem":"npm","name":"pkg"},`+rng+`}]}`)
	db := openDB(t, buildDB(t, dir))
	res := match(t, db, model.Package{Name: "pkg", Version: "1.0.0", Ecosystem: "npm"})
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.VulnerabilityID+" "+strings.Join(f.Aliases, ",")+" "+string(f.Severity))
	}
	want := []string{"GHSA-aaaa CVE-2024-1,OTHER-1 CRITICAL", "GHSA-cccc  UNKNOWN"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestRejectedRecordsAreReported(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"good.json":      `{"id":"GHSA-good","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}`,
		"bad-json.json":  `{"id":"GHSA-badjson","modified":`,
		"bad-event.json": `{"id":"GHSA-badevent","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}]}]}`,
		"no-id.json":     `{"modified":"2024-01-01T00:00:00Z"}`,
		"withdrawn.json": `{"id":"GHSA-gone","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t, buildDB(t, dir))
	st, err := db.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 1 {
		t.Errorf("records = %d, want 1 (withdrawn and invalid ones left out)", st.Records)
	}
	var ids []string
	for _, r := range st.Rejected {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"", "GHSA-badevent", "GHSA-badjson"}, ids); diff != "" {
		t.Errorf("rejected ids (-want +got):\n%s\n%+v", diff, st.Rejected)
	}
	res := match(t, db, model.Package{Name: "x", Version: "1.0.0", Ecosystem: "npm"})
	if len(res.Findings) != 1 || res.Findings[0].VulnerabilityID != "GHSA-good" {
		t.Errorf("findings = %+v, want only GHSA-good", res.Findings)
	}
}

func TestUpdateReplacesAndWithdraws(t *testing.T) {
	src := t.TempDir()
	rec := func(id, modified, fixed, withdrawn string) {
		r := map[string]any{
			"id": id, "modified": modified,
			"affected": []any{map[string]any{
				"package": map[string]string{"ecosystem": "PyPI", "name": "Some_Package"},
				"ranges":  []any{map[string]any{"type": "ECOSYSTEM", "events": []any{map[string]string{"introduced": "0"}, map[string]string{"fixed": fixed}}}},
			}},
		}
		if withdrawn != "" {
			r["withdrawn"] = withdrawn
		}
		data, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(src, id+".json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec("PYSEC-1", "2024-01-01T00:00:00Z", "1.5", "")
	rec("PYSEC-2", "2024-01-01T00:00:00Z", "3.0", "")
	dir := buildDB(t, src)
	pkg := model.Package{Name: "some.package", Version: "2.0", Ecosystem: "PyPI"}

	old := openDB(t, dir)
	if got := match(t, old, pkg); len(got.Findings) != 1 || got.Findings[0].VulnerabilityID != "PYSEC-2" {
		t.Fatalf("before update: %+v", got.Findings)
	}

	os.RemoveAll(src)
	os.Mkdir(src, 0o755)
	rec("PYSEC-1", "2024-03-01T00:00:00Z", "2.5", "") // now affects 2.0
	rec("PYSEC-2", "2024-03-01T00:00:00Z", "3.0", "2024-03-01T00:00:00Z")
	w, err := Update(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Import(context.Background(), w, src); err != nil {
		t.Fatal(err)
	}
	stats := w.Stats
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(WriteStats{Updated: 1, Withdrawn: 1}, stats); diff != "" {
		t.Errorf("update stats (-want +got):\n%s", diff)
	}
	// A reader that opened the old file keeps its view; a new one sees
	// the update.
	if got := match(t, old, pkg); len(got.Findings) != 1 || got.Findings[0].VulnerabilityID != "PYSEC-2" {
		t.Errorf("old handle after update: %+v", got.Findings)
	}
	if got := match(t, openDB(t, dir), pkg); len(got.Findings) != 1 || got.Findings[0].VulnerabilityID != "PYSEC-1" || got.Findings[0].FixedVersion != "2.5" {
		t.Errorf("after update: %+v", got.Findings)
	}
}

func TestNamesMatchPerEcosystemRules(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"nuget.json": `{"id":"GHSA-nuget","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"NuGet","name":"Newtonsoft.Json"},"versions":["12.0.1"]}]}`,
		"pypi.json":  `{"id":"PYSEC-x","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"Zope.Interface"},"versions":["5.0"]}]}`,
		"npm.json":   `{"id":"GHSA-npm","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"Lodash"},"versions":["1.0.0"]}]}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t, buildDB(t, dir))
	res := match(t, db,
		model.Package{Name: "newtonsoft.json", Version: "12.0.1", Ecosystem: "NuGet"},
		model.Package{Name: "zope_interface", Version: "5.0", Ecosystem: "PyPI"},
		model.Package{Name: "lodash", Version: "1.0.0", Ecosystem: "npm"}, // npm names are case-sensitive
	)
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.VulnerabilityID)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"GHSA-nuget", "PYSEC-x"}, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no vulnerability database") {
		t.Errorf("Open(empty dir) = %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Open(dir); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Open(garbage) succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Open(garbage) hung")
	}
}

func TestStatusCountsEcosystems(t *testing.T) {
	db := openDB(t, buildDB(t, "../../testdata/osv/npm/all.zip", "../../testdata/osv/Debian/all.zip"))
	st, err := db.Status()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range st.Ecosystems {
		got[e.Ecosystem] = e.Records
	}
	if got["npm"] != 5 || got["Debian:12"] != 128 || len(st.Rejected) != 0 {
		t.Errorf("ecosystems = %v, rejected %d", got, len(st.Rejected))
	}
	if time.Since(st.Built) > time.Hour {
		t.Errorf("built = %v", st.Built)
	}
}
