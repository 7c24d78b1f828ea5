package suppress

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
)

func testReport() *model.Report {
	curl := model.Package{Name: "curl", Version: "7.88.1-10+deb12u5", Ecosystem: "Debian:12", Path: "var/lib/dpkg/status",
		PURL: "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"}
	lodashLock := model.Package{Name: "lodash", Version: "4.17.15", Ecosystem: "npm", Path: "srv/app/package-lock.json", PURL: "pkg:npm/lodash@4.17.15"}
	lodashMod := lodashLock
	lodashMod.Path = "srv/app/node_modules/lodash/package.json"
	return &model.Report{
		Target: model.Target{Kind: model.TargetImage, Name: "registry.example/app:1", Digest: "sha256:abc123"},
		Findings: []model.Finding{
			{Package: curl, VulnerabilityID: "DEBIAN-CVE-2024-2398", Aliases: []string{"CVE-2024-2398"}},
			{Package: curl, VulnerabilityID: "DEBIAN-CVE-2024-2004", Aliases: []string{"CVE-2024-2004"}},
			{Package: lodashLock, VulnerabilityID: "GHSA-35jh-r3h4-6jhm", Aliases: []string{"CVE-2021-23337"}},
			{Package: lodashMod, VulnerabilityID: "GHSA-35jh-r3h4-6jhm", Aliases: []string{"CVE-2021-23337"}},
		},
	}
}

func ids(fs []model.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.VulnerabilityID+"@"+f.Package.Path)
	}
	return out
}

func TestIgnoreFile(t *testing.T) {
	f, err := ParseIgnoreFile([]byte(`
ignore:
  - id: cve-2024-2398          # an alias, any case
    reason: curl is not used at run time
    expires: 2026-12-31
  - id: GHSA-35jh-r3h4-6jhm
    package: pkg:npm/lodash
    path: srv/app/package-lock.json
    reason: lock file only; node_modules is what runs
  - id: CVE-2024-2004
    reason: old decision
    expires: 2025-01-01
`))
	if err != nil {
		t.Fatal(err)
	}
	r := testReport()
	f.Apply(r, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if diff := cmp.Diff([]string{"DEBIAN-CVE-2024-2004@var/lib/dpkg/status", "GHSA-35jh-r3h4-6jhm@srv/app/node_modules/lodash/package.json"}, ids(r.Findings)); diff != "" {
		t.Errorf("kept findings (-want +got):\n%s", diff)
	}
	if len(r.Suppressed) != 2 || r.Suppressed[0].Source != "ignore-file" || r.Suppressed[0].Reason != "curl is not used at run time (until 2026-12-31)" {
		t.Errorf("suppressed = %+v", r.Suppressed)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "CVE-2024-2004 expired on 2025-01-01") {
		t.Errorf("warnings = %q", r.Warnings)
	}
	// On its last day an entry still applies; the day after, not.
	for day, want := range map[int]int{31: 1, 32: 0} {
		r := testReport()
		f.Apply(r, time.Date(2026, 12, day, 12, 0, 0, 0, time.UTC))
		n := 0
		for _, s := range r.Suppressed {
			if s.Finding.VulnerabilityID == "DEBIAN-CVE-2024-2398" {
				n++
			}
		}
		if n != want {
			t.Errorf("day %d of December: CVE-2024-2398 suppressed %d times, want %d", day, n, want)
		}
	}
}

func TestIgnoreFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no reason", "ignore:\n  - id: CVE-1\n", "has no reason"},
		{"no id", "ignore:\n  - reason: x\n", "has no id"},
		{"bad date", "ignore:\n  - id: CVE-1\n    reason: x\n    expires: next year\n", "not a date"},
		{"unknown key", "ignore:\n  - id: CVE-1\n    reason: x\n    expire: 2026-01-01\n", "field expire not found"},
		{"not yaml", "ignore: [", "invalid suppression file"},
		{"too large", strings.Repeat("#", MaxFileSize+1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIgnoreFile([]byte(tc.in))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
	if f, err := ParseIgnoreFile(nil); err != nil || len(f.Ignore) != 0 {
		t.Errorf("empty file: %v %v", f, err)
	}
}

func TestVEX(t *testing.T) {
	v, err := ParseVEX([]byte(`{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/1",
  "statements": [
    {"vulnerability": {"name": "CVE-2024-2398"},
     "products": [{"@id": "pkg:oci/app@sha256%3Aabc123", "subcomponents": [{"@id": "pkg:deb/debian/curl"}]}],
     "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
    {"vulnerability": "GHSA-35jh-r3h4-6jhm",
     "products": [{"@id": "pkg:npm/lodash@4.17.15"}],
     "status": "fixed"},
    {"vulnerability": {"name": "GHSA-35jh-r3h4-6jhm"},
     "products": [{"@id": "pkg:npm/lodash@4.17.15"}],
     "status": "under_investigation"},
    {"vulnerability": {"name": "CVE-2024-2004"},
     "products": [{"@id": "pkg:deb/debian/curl@9.9.9"}],
     "status": "not_affected", "impact_statement": "another version"}
  ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	r := testReport()
	v.Apply(r)
	// The later under_investigation statement overrides "fixed" for lodash.
	want := []string{"DEBIAN-CVE-2024-2004@var/lib/dpkg/status", "GHSA-35jh-r3h4-6jhm@srv/app/package-lock.json", "GHSA-35jh-r3h4-6jhm@srv/app/node_modules/lodash/package.json"}
	if diff := cmp.Diff(want, ids(r.Findings)); diff != "" {
		t.Errorf("kept findings (-want +got):\n%s", diff)
	}
	if len(r.Suppressed) != 1 || r.Suppressed[0].Source != "vex" || r.Suppressed[0].Reason != "not_affected: vulnerable_code_not_in_execute_path" {
		t.Errorf("suppressed = %+v", r.Suppressed)
	}
}

func TestVEXErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not openvex", `{"@context":"https://example.com","statements":[]}`, "is not OpenVEX"},
		{"bad status", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-1","products":[{"@id":"x"}],"status":"fine"}]}`, "unknown status"},
		{"not_affected without why", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-1","products":[{"@id":"x"}],"status":"not_affected"}]}`, "needs a justification"},
		{"no product", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-1","status":"fixed"}]}`, "names no product"},
		{"no vulnerability", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"products":[{"@id":"x"}],"status":"fixed"}]}`, "names no vulnerability"},
		{"not json", `{`, "invalid suppression file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVEX([]byte(tc.in))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseIgnoreFile(f *testing.F) {
	f.Add([]byte("ignore:\n  - id: CVE-1\n    reason: x\n    expires: 2026-01-01\n"))
	f.Add([]byte("ignore: [{id: a, reason: b, package: pkg:npm/x}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseIgnoreFile(data)
		if err != nil {
			return
		}
		file.Apply(testReport(), time.Now())
	})
}

func FuzzParseVEX(f *testing.F) {
	f.Add([]byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-2024-2398","products":[{"@id":"pkg:deb/debian/curl"}],"status":"fixed"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVEX(data)
		if err != nil {
			return
		}
		v.Apply(testReport())
	})
}
