package posture

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

const goodCheckYAML = `
checks:
  - id: ACME-1
    title: No latest tag
    severity: low
    target: workload
    frameworks: [acme]
    match: workload.namespace != "kube-system"
    violation: |
      containers.filter(c, c.image.endsWith(":latest")).map(c, c.kind + " " + c.name + ": image " + c.image)
    remediation: Pin images by digest.
`

func TestParseChecks(t *testing.T) {
	got, err := ParseChecks([]byte(goodCheckYAML), "acme.yaml")
	if err != nil {
		t.Fatalf("ParseChecks: %v", err)
	}
	want := []Check{{
		ID: "ACME-1", Title: "No latest tag", Severity: "LOW", Target: "workload",
		Frameworks:  []string{"acme"},
		Match:       `workload.namespace != "kube-system"`,
		Violation:   `containers.filter(c, c.image.endsWith(":latest")).map(c, c.kind + " " + c.name + ": image " + c.image)`,
		Remediation: "Pin images by digest.",
		Source:      "acme.yaml",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseChecks (-want +got):\n%s", diff)
	}
}

func TestParseChecksErrors(t *testing.T) {
	check := func(fields string) string {
		return "checks:\n  - id: ACME-1\n    title: t\n    target: workload\n    violation: \"true\"\n" + fields
	}
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown key", check("    severity: LOW\n    violations: x\n"), []string{"acme.yaml", "check ACME-1", `unknown field "violations"`}},
		{"unknown top-level key", "check:\n  - id: X\n", []string{"acme.yaml", "field check not found"}},
		{"bad severity", check("    severity: URGENT\n"), []string{"check ACME-1", "field severity", `"URGENT"`}},
		{"missing severity", check(""), []string{"check ACME-1", "field severity"}},
		{"unknown target", strings.Replace(check("    severity: LOW\n"), "target: workload", "target: pod", 1), []string{"check ACME-1", "field target", `unknown target "pod"`}},
		{"missing id", "checks:\n  - title: t\n    severity: LOW\n    target: workload\n    violation: \"true\"\n", []string{"check #1", "field id: required"}},
		{"bad id", strings.Replace(check("    severity: LOW\n"), "ACME-1", "has space", 1), []string{"field id"}},
		{"missing violation", "checks:\n  - id: A\n    title: t\n    severity: LOW\n    target: workload\n", []string{"check A", "field violation: required"}},
		{"not yaml", "checks: [", []string{"acme.yaml"}},
		{"wrong field type", check("    severity: LOW\n    frameworks: cis\n"), []string{"check ACME-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseChecks([]byte(tc.yaml), "acme.yaml")
			if err == nil {
				t.Fatal("ParseChecks succeeded, want error")
			}
			if !errors.Is(err, ErrInvalidCheck) {
				t.Errorf("error %v does not wrap ErrInvalidCheck", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func userCheck(id, target, violation string) Check {
	return Check{ID: id, Title: "t", Severity: "LOW", Target: target, Violation: violation, Source: "user.yaml"}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		checks []Check
		want   []string
	}{
		{"syntax error", []Check{userCheck("U-1", "workload", "spec.hostPID ==")}, []string{"check U-1", "user.yaml", "field violation", "Syntax error"}},
		{"type error", []Check{userCheck("U-1", "workload", `spec.hostPID == 1 + "a"`)}, []string{"check U-1", "field violation", "no matching overload"}},
		{"undeclared variable", []Check{userCheck("U-1", "role", "pod.spec.hostPID")}, []string{"check U-1", "undeclared reference to 'pod'"}},
		{"wrong result type", []Check{userCheck("U-1", "namespace", "pods + 1")}, []string{"check U-1", "field violation", "type int, want bool or list(string)"}},
		{"wrong match type", []Check{func() Check { c := userCheck("U-1", "namespace", "true"); c.Match = `"yes"`; return c }()}, []string{"check U-1", "field match", "want bool"}},
		{"wrong evidence type", []Check{func() Check { c := userCheck("U-1", "namespace", "true"); c.Evidence = "pods"; return c }()}, []string{"check U-1", "field evidence", "want string or list(string)"}},
		{"duplicate id", []Check{userCheck("U-1", "namespace", "true"), userCheck("U-1", "role", "true")}, []string{"check U-1", "duplicate id"}},
		{"duplicate of a builtin", append(Builtin(), userCheck("CIS-5.2.2", "workload", "true")), []string{"check CIS-5.2.2", "duplicate id, also defined in builtin"}},
		{"unknown target", []Check{userCheck("U-1", "pods", "true")}, []string{"check U-1", `unknown target "pods"`}},
		{"huge expression", []Check{userCheck("U-1", "namespace", strings.Repeat("pods == 1 || ", 5000)+"true")}, []string{"check U-1", "size", "exceeds"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.checks)
			if err == nil {
				t.Fatal("Compile succeeded, want error")
			}
			if !errors.Is(err, ErrCompile) {
				t.Errorf("error %v does not wrap ErrCompile", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yml", strings.Replace(goodCheckYAML, "ACME-1", "ACME-2", 1))
	write("a.yaml", goodCheckYAML)
	write("notes.txt", "not a check")
	got, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	var ids, sources []string
	for _, c := range got {
		ids = append(ids, c.ID)
		sources = append(sources, filepath.Base(c.Source))
	}
	if diff := cmp.Diff([]string{"ACME-1", "ACME-2"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a.yaml", "b.yml"}, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}

	write("c.yaml", "checks:\n  - id: X\n    bogus: 1\n")
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "c.yaml") {
		t.Errorf("LoadDir with a bad file: error %v, want one naming c.yaml", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadDir of a missing directory succeeded")
	}
}

func TestUserCheckRunsBesideBuiltins(t *testing.T) {
	user, err := ParseChecks([]byte(goodCheckYAML), "acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(append(Builtin(), user...))
	if err != nil {
		t.Fatal(err)
	}
	in := cleanInput()
	webContainer(in).Image = "nginx:latest"
	got := evaluate(t, e, in)
	want := []Finding{{
		CheckID: "ACME-1", Title: "No latest tag", Severity: "LOW", Frameworks: []string{"acme"},
		Resource: web, Evidence: []string{"container app: image nginx:latest"}, Remediation: "Pin images by digest.",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestRuntimeErrorsDoNotHideOtherChecks: a user check that fails at runtime
// is reported, and the built-ins still produce their findings.
func TestRuntimeErrorsDoNotHideOtherChecks(t *testing.T) {
	broken := userCheck("USER-BROKEN", "workload", `spec.nodeSelector["disk"] == "ssd"`)
	e, err := Compile(append(Builtin(), broken))
	if err != nil {
		t.Fatal(err)
	}
	in := cleanInput()
	webSpec(in).HostPID = true
	got, err := e.Evaluate(context.Background(), in)
	var evalErr *EvalError
	if !errors.As(err, &evalErr) {
		t.Fatalf("Evaluate error %v, want an *EvalError", err)
	}
	if evalErr.CheckID != "USER-BROKEN" || !strings.Contains(err.Error(), "no such key") {
		t.Errorf("EvalError = %v, want one for USER-BROKEN about the missing key", err)
	}
	var ids []string
	for _, f := range got {
		ids = append(ids, f.CheckID)
	}
	if diff := cmp.Diff([]string{"CIS-5.2.3", "PSS-BASELINE-HOST-NAMESPACES"}, ids); diff != "" {
		t.Errorf("findings next to the broken check (-want +got):\n%s", diff)
	}
}

func TestHostileChecksTerminate(t *testing.T) {
	tests := []struct {
		name, target, expr string
	}{
		{"nested comprehensions", "workload", `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, a+b+c+d+e+f+g >= 0)))))))`},
		{"string blow-up", "namespace", `[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30].map(i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").map(s, s + s + s + s + s + s + s + s).map(s, s + s + s + s + s + s + s + s).map(s, s + s + s + s + s + s + s + s).map(s, s + s + s + s + s + s + s + s).map(s, s + s + s + s + s + s + s + s).size() > 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Compile([]Check{userCheck("HOSTILE", tc.target, tc.expr)})
			if err != nil {
				t.Fatal(err)
			}
			in := cleanInput()
			for i := 0; i < 50; i++ {
				in.Namespaces = append(in.Namespaces, namespace("ns"+string(rune('a'+i%26))+string(rune('a'+i/26)), nil))
			}
			start := time.Now()
			_, err = e.Evaluate(context.Background(), in)
			if time.Since(start) > 10*time.Second {
				t.Errorf("hostile check ran for %v", time.Since(start))
			}
			var evalErr *EvalError
			if !errors.As(err, &evalErr) || !strings.Contains(err.Error(), "cost") {
				t.Fatalf("Evaluate error %v, want a cost limit EvalError", err)
			}
			if tc.target == "namespace" && !evalErr.Abandoned {
				t.Errorf("check failing on every object was not abandoned: %v", evalErr)
			}
		})
	}
}

func TestEvaluateHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := builtinEngine(t).Evaluate(ctx, cleanInput())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Evaluate on a cancelled context: %v, want context.Canceled", err)
	}
}

func TestEvaluateEmptyInput(t *testing.T) {
	e := builtinEngine(t)
	for _, in := range []*Input{nil, {}} {
		if got := evaluate(t, e, in); len(got) != 0 {
			t.Errorf("findings on an empty input: %+v", got)
		}
	}
}

func TestBuiltinIsACopy(t *testing.T) {
	a := Builtin()
	a[0].ID = "changed"
	if Builtin()[0].ID == "changed" {
		t.Error("Builtin returned the shared slice")
	}
}

func FuzzParseChecks(f *testing.F) {
	f.Add([]byte(goodCheckYAML))
	f.Add([]byte("checks:\n  - id: A\n    title: t\n    severity: HIGH\n    target: subject\n    violation: grants(rules, \"get\", \"\", \"secrets\")\n"))
	f.Add([]byte("checks:\n  - id: B\n    title: t\n    severity: HIGH\n    target: controlplane\n    violation: flags[\"x\"].split(\",\")\n"))
	f.Add([]byte("checks: [{id: C, title: t, severity: LOW, target: node, violation: 'modeExceeds(1, \"7\")'}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checks, err := ParseChecks(data, "fuzz.yaml")
		if err != nil {
			return
		}
		e, err := Compile(checks)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = e.Evaluate(ctx, cleanInput())
	})
}
