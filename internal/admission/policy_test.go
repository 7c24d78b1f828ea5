package admission

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	var ids []string
	for _, r := range p.Rules {
		ids = append(ids, r.ID+"="+r.Action)
	}
	want := []string{"deny-critical-fixable=deny", "warn-high-fixable=warn", "audit-vulnerable=audit"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("default rules (-want +got):\n%s", diff)
	}
	if p.Unscanned != UnscannedAllowWarn || p.ScanBudget != 3*time.Second || p.BreakGlassAnnotation != "bulwark.io/break-glass" || p.DryRun {
		t.Errorf("default settings = %+v", p)
	}
}

func TestParsePolicy(t *testing.T) {
	data, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePolicy(data, "policy.yaml")
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	want := Policy{
		Rules: []Rule{{ID: "no-critical", Description: "No critical vulnerabilities.", Action: ActionDeny,
			Match: `workload.kind != "Job"`, Violation: `summary.critical > 0`}},
		Exemptions: []Exemption{
			{Image: "registry.example/vendor/*", Vulnerability: "CVE-2025-4802", Reason: "not reachable, see SEC-12",
				Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
			{Namespace: "legacy", Reason: "migration", Expires: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)},
		},
		Unscanned: UnscannedScan, ScanBudget: 2 * time.Second, DryRun: true, BreakGlassAnnotation: "example.com/override",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParsePolicy (-want +got):\n%s", diff)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	rule := func(fields string) string {
		return "rules:\n  - id: r1\n    action: deny\n" + fields
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"not YAML", "rules: [", []string{"src.yaml", "invalid admission policy"}},
		{"not a mapping", "- a", []string{"want a mapping"}},
		{"unknown top-level key", "rulez: []", []string{`line 1: unknown field "rulez"`, "known: unscanned"}},
		{"unknown rule key", rule("    violation: 'true'\n    severity: high\n"), []string{"rules[0] (line 2)", `unknown field "severity"`}},
		{"rules not a list", "rules: {}", []string{"field rules (line 1): want a list"}},
		{"bad action", "rules:\n  - id: r1\n    action: block\n    violation: 'true'\n", []string{`rule "r1": field action: "block" is not one of deny, warn, audit`}},
		{"missing action", "rules:\n  - id: r1\n    violation: 'true'\n", []string{`rule "r1": field action: required`}},
		{"missing id", "rules:\n  - action: deny\n    violation: 'true'\n", []string{"rules[0]: field id: required"}},
		{"bad id", "rules:\n  - id: 'a b'\n    action: deny\n    violation: 'true'\n", []string{`field id: "a b" must be`}},
		{"duplicate id", rule("    violation: 'true'\n") + "  - id: r1\n    action: warn\n    violation: 'true'\n", []string{`rule "r1": duplicate id`}},
		{"missing violation", rule(""), []string{`rule "r1": field violation`, "required"}},
		{"CEL syntax error", rule("    violation: 'summary.critical >'\n"), []string{`rule "r1": field violation: rule does not compile`, "Syntax error"}},
		{"CEL type error", rule("    violation: 'summary.critical'\n"), []string{`field violation`, "has type int, want bool or list(string)"}},
		{"unknown variable", rule("    violation: 'true'\n    match: 'namespace == \"x\"'\n"), []string{"field match"}},
		{"match sees no vulnerabilities", rule("    violation: 'true'\n    match: 'vulnerabilities.size() > 0'\n"), []string{"field match", "undeclared reference to 'vulnerabilities'"}},
		{"violation sees no workload", rule("    violation: 'workload.kind == \"Pod\"'\n"), []string{"field violation", "undeclared reference to 'workload'"}},
		{"bad unscanned", "unscanned: maybe", []string{`field unscanned: "maybe" is not one of allow-warn, deny, scan`}},
		{"bad scan budget", "scanBudget: soon", []string{`field scanBudget: "soon" is not a duration`}},
		{"scan budget above webhook timeout", "scanBudget: 40s", []string{"field scanBudget: 40s must be between 0 and 25s"}},
		{"exemption without reason", "exemptions:\n  - namespace: x\n    expires: 2027-01-01\n", []string{"exemptions[0]: field reason: required"}},
		{"exemption without expiry", "exemptions:\n  - namespace: x\n    reason: y\n", []string{"exemptions[0]: field expires: required"}},
		{"exemption with a bad expiry", "exemptions:\n  - namespace: x\n    reason: y\n    expires: tomorrow\n", []string{`field expires: "tomorrow" is neither a date`}},
		{"exemption of everything", "exemptions:\n  - reason: y\n    expires: 2027-01-01\n", []string{"exempts everything"}},
		{"unknown exemption key", "exemptions:\n  - namespace: x\n    reason: y\n    expires: 2027-01-01\n    until: 2028-01-01\n", []string{`unknown field "until"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte(tc.yaml), "src.yaml")
			if err == nil {
				t.Fatal("ParsePolicy succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalidPolicy) && !errors.Is(err, ErrCompile) {
				t.Errorf("error %v wraps neither ErrInvalidPolicy nor ErrCompile", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLint(t *testing.T) {
	now := testNow
	p := Policy{Exemptions: []Exemption{
		{Namespace: "a", Reason: "r", Expires: now.Add(-time.Hour)},
		{Image: "x/*", Reason: "r", Expires: now.Add(48 * time.Hour)},
		{Vulnerability: "CVE-1", Reason: "r", Expires: now.Add(90 * 24 * time.Hour)},
	}}
	want := []string{
		"exemptions[0] (namespace a) expired on 2026-06-01 and is ignored",
		"exemptions[1] (image x/*) expires on 2026-06-03",
	}
	if diff := cmp.Diff(want, Lint(p, now)); diff != "" {
		t.Errorf("Lint (-want +got):\n%s", diff)
	}
}

// TestPolicyDocExamples keeps the YAML in POLICY.md valid.
func TestPolicyDocExamples(t *testing.T) {
	doc, err := os.ReadFile("POLICY.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d YAML examples in POLICY.md, want at least 2", len(blocks))
	}
	for i, b := range blocks {
		example, _, _ := strings.Cut(b, "```")
		if _, err := ParsePolicy([]byte(example), "POLICY.md"); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
}
