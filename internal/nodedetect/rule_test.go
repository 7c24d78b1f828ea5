package nodedetect

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/detect"
)

const validRule = `
rules:
  - id: r1
    title: T
    severity: high
    technique: {id: T1059, name: Command and Scripting Interpreter}
    kinds: [exec]
    match: process.name == "x"
    state: {kind: first-seen, key: container.id, ttl: 1h}
    tags: [t]
`

func TestParseRules(t *testing.T) {
	got, err := ParseRules([]byte(validRule), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{{
		ID: "r1", Title: "T", Severity: "HIGH",
		Technique: detect.Technique{ID: "T1059", Name: "Command and Scripting Interpreter"},
		Kinds:     []string{"exec"}, Match: `process.name == "x"`,
		State: &detect.StateSpec{Kind: detect.StateFirstSeen, Key: "container.id", TTL: time.Hour},
		Tags:  []string{"t"}, Source: "f.yaml",
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ParseRules (-want +got):\n%s", d)
	}
}

func TestParseRulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"unknown field", "    tags: [t]\n", "    tags: [t]\n    verbs: [get]\n", `rule r1: invalid runtime detection rule: line 11: unknown field "verbs"`},
		{"unknown technique field", "name: Command and Scripting Interpreter}", "name: C, url: x}", `unknown field "technique.url"`},
		{"unknown state field", "ttl: 1h}", "ttl: 1h, every: 2}", `unknown field "state.every"`},
		{"bad kind", "kinds: [exec]", "kinds: [open]", `field kinds: "open" is not one of exec, dns, connect`},
		{"bad severity", "severity: high", "severity: urgent", `field severity: "URGENT" is not one of`},
		{"bad technique", "id: T1059,", "id: X1,", `field technique.id: "X1" is not a MITRE ATT&CK technique id`},
		{"no match", `match: process.name == "x"`, `match: ""`, "field match: required"},
		{"bad ttl", "ttl: 1h", "ttl: soon", `field state.ttl: "soon" is not a duration`},
		{"threshold without window", "{kind: first-seen, key: container.id, ttl: 1h}", "{kind: threshold, key: container.id, count: 5}", "field state.window: required"},
		{"bad id", "id: r1", "id: 'a b'", `field id: "a b" must be`},
		{"rule not a mapping", "rules:\n  - id: r1", "rules:\n  - just text\n  - id: r1", "rule #1 (line 3): invalid runtime detection rule: line 3: field rule: want a mapping"},
		{"top-level typo", "rules:", "rule:", "field rule not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(validRule, tc.old, tc.new, 1)
			if src == validRule {
				t.Fatalf("edit %q not applied", tc.old)
			}
			_, err := ParseRules([]byte(src), "f.yaml")
			if err == nil {
				t.Fatalf("ParseRules accepted:\n%s", src)
			}
			if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "f.yaml: ") {
				t.Errorf("error %q, want ErrInvalidRule naming f.yaml and containing %q", err, tc.want)
			}
		})
	}
}

func TestNewCompileErrors(t *testing.T) {
	base := func(match string) Rule {
		return Rule{ID: "u1", Title: "T", Severity: "LOW", Technique: detect.Technique{ID: "T1059", Name: "C"}, Match: match, Source: "user.yaml"}
	}
	withOutput := base("true")
	withOutput.Output = "process.pid"
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"misspelt field", []Rule{base(`process.nme == "x"`)}, "field match: rule does not compile"},
		{"unknown variable", []Rule{base(`proc.name == "x"`)}, "undeclared reference to 'proc'"},
		{"wrong type", []Rule{base(`process.pid == "1"`)}, "field match"},
		{"not a bool", []Rule{base(`process.name`)}, "expression has type string, want bool"},
		{"output not a string", []Rule{withOutput}, "field output"},
		{"unknown list", []Rule{base(`domainIn(dns.name, "no-such-list")`)}, `domainIn: no domain list "no-such-list"`},
		{"duplicate id", []Rule{base("true"), base("false")}, "duplicate id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.rules, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rule u1 (user.yaml)") {
				t.Errorf("New: %v, want an error naming rule u1 (user.yaml) containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadDirAndLists(t *testing.T) {
	user, err := LoadDir("testdata/rules")
	if err != nil {
		t.Fatal(err)
	}
	lists, err := LoadLists("testdata/lists")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string][]string{
		"acme-export":  {"export.acme-partner.example", "dropzone.example"},
		"unusual-tlds": {"!xyz"},
	}, lists); d != "" {
		t.Errorf("LoadLists (-want +got):\n%s", d)
	}
	builtin, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(append(builtin, user...), Options{Lists: lists})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range e.rules {
		if r.limited != strings.HasPrefix(r.ID, "acme-") {
			t.Errorf("rule %s: limited %v", r.ID, r.limited)
		}
	}
	containers, _, _ := loadCases(t)
	evs, err := expandEvents(containers, []map[string]any{
		{"kind": "dns", "container": "api", "process": map[string]any{"pid": 10, "uid": 1000, "exe": "/usr/bin/python3", "args": []string{"python3", "export.py"}},
			"ancestors": []map[string]any{{"pid": 9, "exe": "/bin/sh"}, {"pid": 1, "exe": "/sbin/tini"}},
			"dns":       map[string]any{"name": "eu.dropzone.example", "type": "A", "server": "10.96.0.10:53"}},
		{"kind": "dns", "container": "api", "process": map[string]any{"exe": "/usr/bin/python3"}, "dns": map[string]any{"name": "cdn.thing.xyz", "type": "A"}},
		{"kind": "dns", "container": "api", "process": map[string]any{"exe": "/usr/bin/python3"}, "dns": map[string]any{"name": "cdn.thing.top", "type": "A"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range evs {
		for _, a := range e.Process(&evs[i], Meta{Node: "node-1", Cluster: "prod"}) {
			got = append(got, a.RuleID+": "+a.Summary)
		}
	}
	want := []string{
		"acme-crm-export-host: python3 (pid 10, uid 1000, parent sh, 2 ancestors) in shop/orders-api-75b9d8f4c-m8hzt resolved eu.dropzone.example (A via 10.96.0.10:53, domain dropzone.example, sub eu, tld example) on node-1/prod at 2026-03-14T09:26:53Z [dns]",
		"unusual-tld-dns: python3 in shop/orders-api-75b9d8f4c-m8hzt resolved cdn.thing.top",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("alerts (-want +got):\n%s", d)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/a.yaml", "rules:\n  - id: x\n")
	writeFile(t, dir+"/b.yml", "rules:\n  - {id: y, title: Y, severity: LOW, technique: {id: T1059, name: C}, match: 'true', kind: [exec]}\n")
	_, err := LoadDir(dir)
	for _, want := range []string{"a.yaml: rule x: invalid runtime detection rule: field title: required", `b.yml: rule y: invalid runtime detection rule: line 2: unknown field "kind"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadDir: %v, want %q", err, want)
		}
	}
	writeFile(t, dir+"/Bad_Name.txt", "x.com\n")
	writeFile(t, dir+"/ok.txt", "good.example\nbad..example\n")
	_, err = LoadLists(dir)
	for _, want := range []string{`list name "Bad_Name"`, `ok.txt: line 2: invalid domain list: "bad..example"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadLists: %v, want %q", err, want)
		}
	}
	if _, err := New(nil, Options{Lists: map[string][]string{"x": {"a b"}}}); !errors.Is(err, ErrInvalidList) {
		t.Errorf("New with a bad list entry: %v, want ErrInvalidList", err)
	}
}
