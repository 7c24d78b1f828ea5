package admission

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
)

// ErrCompile is wrapped by every error about a rule expression.
var ErrCompile = errors.New("rule does not compile")

// Limits that keep a rule from stalling a review. costLimit is in CEL cost
// units (roughly one per operation) per evaluation: enough to walk a few
// thousand vulnerabilities a few times.
const (
	costLimit         = 1_000_000
	maxExpressionSize = 20_000
)

var mapType = cel.MapType(cel.StringType, cel.DynType)

// Match sees the request; Violation sees only the image's scan, because its
// result is cached per digest and shared by every request and namespace.
var (
	matchVars = []cel.EnvOption{
		cel.Variable("ns", mapType),
		cel.Variable("workload", mapType),
		cel.Variable("operation", cel.StringType),
		cel.Variable("user", mapType),
		cel.Variable("image", mapType),
	}
	violationVars = []cel.EnvOption{
		cel.Variable("image", mapType),
		cel.Variable("summary", cel.MapType(cel.StringType, cel.IntType)),
		cel.Variable("vulnerabilities", cel.ListType(mapType)),
	}
)

var (
	matchEnv     = sync.OnceValues(func() (*cel.Env, error) { return newEnv("match", matchVars) })
	violationEnv = sync.OnceValues(func() (*cel.Env, error) { return newEnv("violation", violationVars) })
)

func newEnv(name string, vars []cel.EnvOption) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
		ext.Bindings(),
		cel.ParserExpressionSizeLimit(maxExpressionSize),
		cel.CrossTypeNumericComparisons(true),
		cel.Function("describe",
			cel.Overload("describe_vulnerability", []*cel.Type{mapType}, cel.StringType,
				cel.UnaryBinding(describeVal))),
	}
	opts = append(opts, vars...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("building CEL environment for %s: %w", name, err)
	}
	return env, nil
}

type compiledRule struct {
	Rule
	match, violation cel.Program
}

func compileRule(r Rule) (*compiledRule, error) {
	fail := func(field string, err error) error {
		return fmt.Errorf("rule %q: field %s: %w: %w", r.ID, field, ErrCompile, err)
	}
	cr := &compiledRule{Rule: r}
	if r.Violation == "" {
		return nil, fail("violation", errors.New("required"))
	}
	env, err := violationEnv()
	if err != nil {
		return nil, err
	}
	if cr.violation, err = program(env, r.Violation, true); err != nil {
		return nil, fail("violation", err)
	}
	if r.Match != "" {
		if env, err = matchEnv(); err != nil {
			return nil, err
		}
		if cr.match, err = program(env, r.Match, false); err != nil {
			return nil, fail("match", err)
		}
	}
	return cr, nil
}

func program(env *cel.Env, expr string, violation bool) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	out := ast.OutputType()
	ok := out.IsExactType(cel.DynType) || out.IsExactType(cel.BoolType)
	want := "bool"
	if violation {
		ok = ok || isStringList(out)
		want = "bool or list(string)"
	}
	if !ok {
		return nil, fmt.Errorf("expression has type %s, want %s", out, want)
	}
	return env.Program(ast,
		cel.InterruptCheckFrequency(100),
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(costLimit))
}

func isStringList(t *cel.Type) bool {
	if t.Kind() != cel.ListKind {
		return false
	}
	p := t.Parameters()
	return len(p) == 1 && (p[0].IsExactType(cel.StringType) || p[0].IsExactType(cel.DynType))
}

// describeVal renders a vulnerability the way messages name it:
// "CVE-2025-4802 (CRITICAL, fixed in 2.36-9+deb12u11) in libc6".
func describeVal(v ref.Val) ref.Val {
	m, ok := v.(traits.Mapper)
	if !ok {
		return types.NewErr("describe: got %s, want a vulnerability", v.Type().TypeName())
	}
	field := func(k string) string {
		if f, found := m.Find(types.String(k)); found {
			if s, ok := f.Value().(string); ok {
				return s
			}
		}
		return ""
	}
	return types.String(describeVulnerability(field("id"), field("severity"), field("fixedVersion"), field("package")))
}

func describeVulnerability(id, severity, fixed, pkg string) string {
	var b strings.Builder
	b.WriteString(id)
	b.WriteString(" (")
	b.WriteString(severity)
	if fixed != "" {
		b.WriteString(", fixed in ")
		b.WriteString(fixed)
	}
	b.WriteString(")")
	if pkg != "" {
		b.WriteString(" in ")
		b.WriteString(pkg)
	}
	return b.String()
}
