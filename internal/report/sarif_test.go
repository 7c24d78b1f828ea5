package report

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func decodeSARIF(t *testing.T, data []byte) sarifLog {
	t.Helper()
	var log sarifLog
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatalf("decoding SARIF: %v", err)
	}
	if log.Version != "2.1.0" || log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" {
		t.Errorf("version, $schema = %q, %q, want SARIF 2.1.0", log.Version, log.Schema)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(log.Runs))
	}
	return log
}

func TestSARIF(t *testing.T) {
	r := testReport()
	run := decodeSARIF(t, write(t, SARIF, r, Options{ToolVersion: testToolVersion})).Runs[0]

	driver := run.Tool.Driver
	if driver.Name != "bulwark" || driver.Version != testToolVersion || driver.InformationURI == "" {
		t.Errorf("driver = %q %q %q, want bulwark %s and an informationUri", driver.Name, driver.Version, driver.InformationURI, testToolVersion)
	}

	// One rule per vulnerability ID: CVE-2024-2961 is in two packages.
	if got, want := len(driver.Rules), 6; got != want {
		t.Errorf("%d rules, want %d", got, want)
	}
	if got, want := len(run.Results), len(r.Findings); got != want {
		t.Errorf("%d results, want one per finding, %d", got, want)
	}

	rules := map[string]sarifRule{}
	for _, rule := range driver.Rules {
		rules[rule.ID] = rule
	}
	lodash := rules["GHSA-35jh-r3h4-6jhm"]
	if want := (sarifRule{
		ID:                   "GHSA-35jh-r3h4-6jhm",
		ShortDescription:     sarifMessage{Text: "Command Injection in lodash"},
		HelpURI:              "https://github.com/advisories/GHSA-35jh-r3h4-6jhm",
		DefaultConfiguration: sarifConfiguration{Level: "error"},
		Properties:           sarifRuleProps{SecuritySeverity: "7.2", Tags: []string{"security", "vulnerability", "HIGH"}},
	}); !cmp.Equal(want, lodash) {
		t.Errorf("lodash rule (-want +got):\n%s", cmp.Diff(want, lodash))
	}
	if got := rules["GO-2024-2687"].Properties.SecuritySeverity; got != "" {
		t.Errorf("security-severity of a finding without a score = %q, want none", got)
	}

	levels := map[string]string{}
	for _, res := range run.Results {
		levels[res.RuleID] = res.Level
		if rule := driver.Rules[res.RuleIndex]; rule.ID != res.RuleID {
			t.Errorf("result for %s has ruleIndex %d, which is %s", res.RuleID, res.RuleIndex, rule.ID)
		}
		if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation.ArtifactLocation.URI == "" {
			t.Errorf("result for %s has locations %+v, want one with a uri", res.RuleID, res.Locations)
		}
	}
	wantLevels := map[string]string{
		"CVE-2024-5535":       "error",
		"CVE-2024-2961":       "error",
		"GHSA-35jh-r3h4-6jhm": "error",
		"GHSA-29mw-wpgm-hmr9": "warning",
		"CVE-2010-4756":       "note",
		"GO-2024-2687":        "note",
	}
	if diff := cmp.Diff(wantLevels, levels); diff != "" {
		t.Errorf("result levels (-want +got):\n%s", diff)
	}

	var lodashResult sarifResult
	for _, res := range run.Results {
		if res.RuleID == "GHSA-35jh-r3h4-6jhm" {
			lodashResult = res
		}
	}
	if want := "Package lodash version 4.17.20 is vulnerable to GHSA-35jh-r3h4-6jhm; fixed in 4.17.21"; lodashResult.Message.Text != want {
		t.Errorf("message = %q, want %q", lodashResult.Message.Text, want)
	}
	if got, want := lodashResult.Locations[0].PhysicalLocation.ArtifactLocation.URI, "srv/shop/package-lock.json"; got != want {
		t.Errorf("uri = %q, want %q", got, want)
	}
}

func TestSARIFLocationWithoutPath(t *testing.T) {
	r := testReport()
	r.Target.Name = "alpine:3.19"
	r.Findings = r.Findings[:1]
	r.Findings[0].Package.Path = ""
	run := decodeSARIF(t, write(t, SARIF, r, Options{})).Runs[0]
	// A bare "alpine:3.19" would read as a URI with the scheme "alpine".
	if got, want := run.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI, "./alpine:3.19"; got != want {
		t.Errorf("uri = %q, want %q", got, want)
	}
}

func TestSARIFEmpty(t *testing.T) {
	run := decodeSARIF(t, write(t, SARIF, emptyReport(), Options{})).Runs[0]
	if run.Results == nil || run.Tool.Driver.Rules == nil {
		t.Errorf("results, rules = %v, %v; want empty arrays, not null", run.Results, run.Tool.Driver.Rules)
	}
}

func TestRelativeURI(t *testing.T) {
	tests := []struct{ in, want string }{
		{"var/lib/dpkg/status", "var/lib/dpkg/status"},
		{"srv/my app/package.json", "srv/my%20app/package.json"},
		{"alpine:3.19", "./alpine:3.19"},
		{"docker.io/library/node:20", "docker.io/library/node:20"},
	}
	for _, tt := range tests {
		if got := relativeURI(tt.in); got != tt.want {
			t.Errorf("relativeURI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
