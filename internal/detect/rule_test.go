package detect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const validRule = `
rules:
  - id: r1
    title: A rule
    severity: high
    technique: {id: T1609, name: Container Administration Command}
    verbs: [create]
    resources: [pods/exec]
    match: event.responseStatus.code < 400
`

func TestParseRules(t *testing.T) {
	got, err := ParseRules([]byte(validRule), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{{
		ID: "r1", Title: "A rule", Severity: "HIGH",
		Technique: Technique{ID: "T1609", Name: "Container Administration Command"},
		Verbs:     []string{"create"}, Resources: []string{"pods/exec"},
		Match: "event.responseStatus.code < 400", Source: "f.yaml",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseRules() mismatch (-want +got):\n%s", diff)
	}
}

// rule is validRule with one line replaced or added.
func rule(replace, with string) string {
	if replace == "" {
		return validRule + with
	}
	if !strings.Contains(validRule, replace) {
		panic("no " + replace)
	}
	return strings.Replace(validRule, replace, with, 1)
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown key", rule("", "    action: deny\n"), `unknown field "action"`},
		{"unknown technique key", rule("technique: {id: T1609, name: Container Administration Command}", "technique: {id: T1609, name: x, tactic: execution}"), `unknown field "technique.tactic"`},
		{"unknown top-level key", "checks: []\n", "field checks not found"},
		{"bad severity", rule("severity: high", "severity: urgent"), `field severity: "URGENT" is not one of`},
		{"missing technique", rule("    technique: {id: T1609, name: Container Administration Command}\n", ""), "field technique.id: required"},
		{"bad technique id", rule("id: T1609", "id: TA0002"), `"TA0002" is not a MITRE ATT&CK technique id`},
		{"missing technique name", rule("name: Container Administration Command", "name: ''"), "field technique.name: required"},
		{"missing match", rule("    match: event.responseStatus.code < 400\n", ""), "field match: required"},
		{"bad id", rule("id: r1", "id: 'r 1'"), "field id:"},
		{"bad resource", rule("resources: [pods/exec]", "resources: [pods/exec/x]"), `"pods/exec/x" is not a resource`},
		{"state without key", rule("", "    state: {kind: first-seen}\n"), "field state.key: required"},
		{"unknown state kind", rule("", "    state: {kind: sometimes, key: event.verb}\n"), `field state.kind: "sometimes"`},
		{"threshold without window", rule("", "    state: {kind: threshold, key: event.verb, count: 5}\n"), "field state.window: required"},
		{"threshold count 1", rule("", "    state: {kind: threshold, key: event.verb, count: 1, window: 1m}\n"), "field state.count: 1 must be between"},
		{"first-seen with count", rule("", "    state: {kind: first-seen, key: event.verb, count: 5}\n"), "count and window apply to threshold"},
		{"bad duration", rule("", "    state: {kind: first-seen, key: event.verb, ttl: forever}\n"), `field state.ttl: "forever" is not a duration`},
		{"huge max", rule("", "    state: {kind: first-seen, key: event.verb, max: 99999999}\n"), "field state.max"},
		{"not a list", "rules: {id: x}\n", "invalid detection rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.doc), "f.yaml")
			if err == nil {
				t.Fatalf("ParseRules() succeeded, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrInvalidRule) {
				t.Errorf("error %v does not wrap ErrInvalidRule", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "f.yaml") {
				t.Errorf("error %q, want it to name f.yaml and contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	base := func() Rule {
		rs, err := ParseRules([]byte(validRule), "f.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return rs[0]
	}
	tests := []struct {
		name   string
		mutate func(r *Rule)
		want   string
	}{
		{"syntax error", func(r *Rule) { r.Match = "event.verb ==" }, "field match"},
		{"match not bool", func(r *Rule) { r.Match = "size(event.verb)" }, "want bool"},
		{"unknown function", func(r *Rule) { r.Match = "isRoot(event.user)" }, "undeclared reference"},
		{"unknown variable", func(r *Rule) { r.Match = "request.verb == 'get'" }, "undeclared reference"},
		{"unknown event field", func(r *Rule) { r.Match = "event.usr.username == 'x'" }, `event has no field "usr"`},
		{"unknown objectRef field", func(r *Rule) { r.Match = "event.objectRef.kind == 'Pod'" }, `event.objectRef has no field "kind"`},
		{"unknown optional user field", func(r *Rule) { r.Match = "event.?user.?name.orValue('') == 'x'" }, `event.user has no field "name"`},
		{"output not string", func(r *Rule) { r.Output = "event.responseStatus.code + 1" }, "field output"},
		{"key not string", func(r *Rule) { r.State = &StateSpec{Kind: StateFirstSeen, Key: "1 + 1"} }, "field state.key"},
		{"invalid severity set in Go", func(r *Rule) { r.Severity = "high" }, "field severity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.mutate(&r)
			_, err := Compile([]Rule{r}, Options{})
			if err == nil {
				t.Fatalf("Compile() succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rule r1") {
				t.Errorf("error %q, want it to name rule r1 and contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileDuplicateID(t *testing.T) {
	rules := Builtin()
	user, err := ParseRules([]byte(strings.Replace(validRule, "id: r1", "id: pod-exec", 1)), "mine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(append(rules, user...), Options{})
	if !errors.Is(err, ErrCompile) || !strings.Contains(err.Error(), "duplicate id, also defined in builtin") {
		t.Errorf("Compile() error = %v, want a duplicate id error", err)
	}
}

func TestCompileDoesNotAliasRules(t *testing.T) {
	rules := Builtin()
	e, err := Compile(rules, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rules {
		rules[i].Match = "false"
		rules[i].Verbs = nil
	}
	if got := e.Process(context.Background(), one(exec("app", "web"))); len(got) != 1 {
		t.Errorf("Process() after changing the caller's rules = %v, want one alert", summarize(got))
	}
}

func TestLoadDir(t *testing.T) {
	rules, err := LoadDir("testdata/rules")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].ID != "acme-prod-secret-read-by-human" || rules[0].Source != filepath.Join("testdata/rules", "acme.yaml") {
		t.Fatalf("LoadDir() = %+v", rules)
	}
	e, err := Compile(append(Builtin(), rules...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := e.Process(context.Background(), one(ev("get", "secrets", in("prod-eu", "db"))))
	if diff := cmp.Diff([]string{"acme-prod-secret-read-by-human"}, ruleIDs(got)); diff != "" {
		t.Errorf("alerts mismatch (-want +got):\n%s", diff)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("rules:\n  - id: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir); !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "bad.yml") {
		t.Errorf("LoadDir(bad) error = %v, want an invalid rule error naming bad.yml", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadDir(missing) succeeded")
	}
}

func FuzzParseRules(f *testing.F) {
	for _, name := range []string{"execution.yaml", "anomalies.yaml", "credentials.yaml"} {
		data, err := builtinFS.ReadFile("rules/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(validRule))
	f.Add([]byte(rule("", "    state: {kind: threshold, key: event.verb, count: 3, window: 1m}\n")))
	f.Add([]byte("rules:\n  - &a {id: x}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data, "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("error does not wrap ErrInvalidRule: %v", err)
			}
			return
		}
		// Whatever parses either compiles or fails with a named error, and
		// a compiled engine survives an event.
		e, err := Compile(rules, Options{})
		if err != nil {
			if !errors.Is(err, ErrCompile) && !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("Compile error wraps neither ErrCompile nor ErrInvalidRule: %v", err)
			}
			return
		}
		e.Process(context.Background(), one(exec("app", "web")))
	})
}

func TestValidateCommon(t *testing.T) {
	ok := CommonFields{
		ID: "r1", Title: "T", Severity: "HIGH", Technique: Technique{ID: "T1609", Name: "N"},
		Match: "true", Tags: []string{"t"},
	}
	if err := ValidateCommon(ok); err != nil {
		t.Fatalf("ValidateCommon(valid) = %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*CommonFields)
		want string
	}{
		{"no id", func(c *CommonFields) { c.ID = "" }, "field id: required"},
		{"bad id", func(c *CommonFields) { c.ID = "a b" }, `field id: "a b" must be`},
		{"no title", func(c *CommonFields) { c.Title = "" }, "field title: required"},
		{"bad severity", func(c *CommonFields) { c.Severity = "high" }, `field severity: "high" is not one of CRITICAL, HIGH, MEDIUM, LOW`},
		{"no technique", func(c *CommonFields) { c.Technique.ID = "" }, "field technique.id: required"},
		{"bad technique", func(c *CommonFields) { c.Technique.ID = "T1" }, `field technique.id: "T1" is not`},
		{"no technique name", func(c *CommonFields) { c.Technique.Name = "" }, "field technique.name: required"},
		{"no match", func(c *CommonFields) { c.Match = "" }, "field match: required"},
		{"empty tag", func(c *CommonFields) { c.Tags = []string{""} }, "field tags: empty tag"},
		{"no state key", func(c *CommonFields) { c.State = &StateSpec{Kind: StateFirstSeen} }, "field state.key: required"},
		{"bad state kind", func(c *CommonFields) { c.State = &StateSpec{Kind: "often", Key: "k"} }, `field state.kind: "often" is not`},
		{"threshold count", func(c *CommonFields) {
			c.State = &StateSpec{Kind: StateThreshold, Key: "k", Count: 1, Window: time.Minute}
		}, "field state.count: 1 must be between 2 and"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			if err := ValidateCommon(c); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("ValidateCommon = %v, want an error starting %q", err, tc.want)
			}
		})
	}
}

func TestNewStateDefaults(t *testing.T) {
	fs := &StateSpec{Kind: StateFirstSeen, Key: "k"}
	NewState(fs)
	th := &StateSpec{Kind: StateThreshold, Key: "k", Count: 3, Window: time.Minute}
	s := NewState(th)
	want := []StateSpec{
		{Kind: StateFirstSeen, Key: "k", TTL: defaultFirstSeenTTL, Max: defaultFirstSeenMax},
		{Kind: StateThreshold, Key: "k", Count: 3, Window: time.Minute, Max: defaultThresholdMax},
	}
	if d := cmp.Diff(want, []StateSpec{*fs, *th}); d != "" {
		t.Errorf("specs after NewState (-want +got):\n%s", d)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var weights []int
	for i := range 4 {
		weights = append(weights, s.Observe("k", t0.Add(time.Duration(i)*time.Second)))
	}
	if d := cmp.Diff([]int{0, 0, 3, 1}, weights); d != "" {
		t.Errorf("threshold weights (-want +got):\n%s", d)
	}
}
