package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/model"
)

func TestParseRecordHostile(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", ``, "invalid OSV record"},
		{"not json", `hello`, "invalid OSV record"},
		{"array", `[1,2]`, "invalid OSV record"},
		{"no id", `{"modified":"2024-01-01T00:00:00Z"}`, "bad id"},
		{"id with slash", `{"id":"../../etc/passwd","modified":"2024-01-01T00:00:00Z"}`, "bad id"},
		{"id with NUL", `{"id":"A\u0000B","modified":"2024-01-01T00:00:00Z"}`, "bad id"},
		{"huge id", `{"id":"` + strings.Repeat("A", 300) + `"}`, "bad id"},
		{"bad time", `{"id":"X-1","modified":"yesterday"}`, "invalid OSV record"},
		{"trailing data", `{"id":"X-1","modified":"2024-01-01T00:00:00Z"} {}`, "data after the record"},
		{"package without name", `{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm"}}]}`, "no package ecosystem or name"},
		{"event with two fields", `{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"1"}]}]}]}`, "sets 2 fields"},
		{"empty event", `{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{}]}]}]}`, "sets 0 fields"},
		{"wrong types", `{"id":1}`, "invalid OSV record"},
		{"too large", `{"id":"X-1","details":"` + strings.Repeat("x", MaxRecordSize) + `"}`, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRecord([]byte(tc.in))
			if err == nil || !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRecord error = %v, want ErrInvalidRecord containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"id":"GHSA-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}],"versions":["0.9"]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`))
	f.Add([]byte(`{"id":"DEBIAN-CVE-1","upstream":["CVE-1"],"affected":[{"package":{"ecosystem":"Debian:12","name":"curl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"last_affected":"7.0-1"}]}]}]}`))
	f.Add([]byte(`{"id":"X","withdrawn":"2024-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
			return
		}
		// A record that parses must be safe to score and match.
		for i := range r.Affected {
			a := &r.Affected[i]
			_ = severityOf(r, a)
			e := entry{ID: r.ID, Ranges: a.Ranges, Versions: a.Versions}
			_, _, _ = e.affects(versionCache{}, a.Package.Ecosystem, "1.0.0")
		}
	})
}

func TestSeverity(t *testing.T) {
	tests := []struct {
		name       string
		rec        Record
		want       model.Severity
		wantScore  float64
		wantSource string
	}{
		{"cvss 3.1 critical", Record{Severity: []Severity{{"CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}}, model.SeverityCritical, 9.8, "CVSS_V3"},
		{"cvss 3.0 medium", Record{Severity: []Severity{{"CVSS_V3", "CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"}}}, model.SeverityMedium, 4.2, "CVSS_V3"},
		{"cvss 4.0", Record{Severity: []Severity{{"CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}}}, model.SeverityCritical, 9.3, "CVSS_V4"},
		{"cvss 2", Record{Severity: []Severity{{"CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"}}}, model.SeverityHigh, 7.5, "CVSS_V2"},
		{"v3 preferred over v4", Record{Severity: []Severity{{"CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}, {"CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N"}}}, model.SeverityLow, 3.3, "CVSS_V3"},
		{"broken vector falls through", Record{Severity: []Severity{{"CVSS_V3", "CVSS:3.1/AV:X"}}, DatabaseSpec: []byte(`{"severity":"MODERATE"}`)}, model.SeverityMedium, 0, "database_specific"},
		{"ubuntu rating", Record{Severity: []Severity{{"Ubuntu", "negligible"}}}, model.SeverityLow, 0, "Ubuntu"},
		{"nothing stays unknown", Record{}, model.SeverityUnknown, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := severityOf(&tc.rec, &Affected{})
			if got.Rating != tc.want || got.Score != tc.wantScore || got.Source != tc.wantSource {
				t.Errorf("severity = %+v, want %s %.1f from %q", got, tc.want, tc.wantScore, tc.wantSource)
			}
		})
	}
}

func TestImportHostileZip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "all.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	add := func(name, body string) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("GHSA-ok.json", `{"id":"GHSA-ok","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"versions":["1.0.0"]}]}`)
	add("../../escape.json", `{"id":"GHSA-escape","modified":"2024-01-01T00:00:00Z"}`)
	add("bomb.json", strings.Repeat(" ", MaxRecordSize+10)) // compresses to almost nothing
	add("README.md", "not a record")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	dbDir := t.TempDir()
	w, err := Create(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Import(context.Background(), w, path); err != nil {
		t.Fatalf("Import: %v", err)
	}
	if w.Stats.Added != 2 || w.Stats.Rejected != 1 {
		t.Errorf("stats = %+v, want 2 added (names in a zip are only labels) and the bomb rejected", w.Stats)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "escape.json")); err == nil {
		t.Error("import wrote outside its directory")
	}
	// A file that is not a zip is an error, not a silent skip.
	bad := filepath.Join(dir, "bad.zip")
	if err := os.WriteFile(bad, []byte("PK\x03\x04 truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	w2, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Abort()
	if err := Import(context.Background(), w2, bad); err == nil {
		t.Error("Import(truncated zip) succeeded")
	}
}
