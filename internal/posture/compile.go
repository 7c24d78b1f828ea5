package posture

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/google/cel-go/cel"
)

// ErrCompile is wrapped by every error about a check expression.
var ErrCompile = errors.New("check does not compile")

// Engine evaluates a fixed set of compiled checks. It is safe for
// concurrent use.
type Engine struct {
	checks []*compiledCheck
}

type compiledCheck struct {
	Check
	match, violation, evidence cel.Program
	// limited checks (all but the embedded ones) run with a cost limit and
	// a context that interrupts long comprehensions.
	limited bool
}

// Compile parses and type-checks every expression of every check. The error
// names the check, the field and the CEL message; all problems are reported
// at once. Duplicate ids are an error, so a user check cannot silently
// replace a built-in one.
func Compile(checks []Check) (*Engine, error) {
	e := &Engine{}
	seen := map[string]string{}
	var errs []error
	for _, c := range checks {
		if prev, dup := seen[c.ID]; dup {
			errs = append(errs, fmt.Errorf("check %s (%s): %w: duplicate id, also defined in %s", c.ID, c.Source, ErrCompile, prev))
			continue
		}
		seen[c.ID] = c.Source
		cc, err := compileCheck(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e.checks = append(e.checks, cc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(e.checks, func(i, j int) bool { return e.checks[i].ID < e.checks[j].ID })
	return e, nil
}

type resultKind int

const (
	resultBool resultKind = iota
	resultViolation
	resultEvidence
)

func compileCheck(c Check) (*compiledCheck, error) {
	fail := func(field string, err error) error {
		return fmt.Errorf("check %s (%s): field %s: %w: %w", c.ID, c.Source, field, ErrCompile, err)
	}
	t := targets[c.Target]
	if t == nil {
		return nil, fail("target", fmt.Errorf("unknown target %q", c.Target))
	}
	env, err := t.env()
	if err != nil {
		return nil, err
	}
	cc := &compiledCheck{Check: c}
	if c.Violation == "" {
		return nil, fail("violation", errors.New("required"))
	}
	// The embedded checks are reviewed code; cost tracking would only slow
	// them down. Everything else gets the limit.
	limited := !isBuiltin(c)
	cc.limited = limited
	if cc.violation, err = program(env, c.Violation, resultViolation, limited); err != nil {
		return nil, fail("violation", err)
	}
	if c.Match != "" {
		if cc.match, err = program(env, c.Match, resultBool, limited); err != nil {
			return nil, fail("match", err)
		}
	}
	if c.Evidence != "" {
		if cc.evidence, err = program(env, c.Evidence, resultEvidence, limited); err != nil {
			return nil, fail("evidence", err)
		}
	}
	return cc, nil
}

// isBuiltin reports whether c is exactly one of the embedded checks.
func isBuiltin(c Check) bool {
	b, ok := builtinByID()[c.ID]
	return ok && b.Target == c.Target && b.Match == c.Match && b.Violation == c.Violation && b.Evidence == c.Evidence
}

var builtinByID = sync.OnceValue(func() map[string]Check {
	m := map[string]Check{}
	for _, c := range Builtin() {
		m[c.ID] = c
	}
	return m
})

func program(env *cel.Env, expr string, want resultKind, limited bool) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	out := ast.OutputType()
	ok := out.IsExactType(cel.DynType)
	switch want {
	case resultBool:
		ok = ok || out.IsExactType(cel.BoolType)
	case resultViolation:
		ok = ok || out.IsExactType(cel.BoolType) || isStringList(out)
	case resultEvidence:
		ok = ok || out.IsExactType(cel.StringType) || isStringList(out)
	}
	if !ok {
		wants := map[resultKind]string{resultBool: "bool", resultViolation: "bool or list(string)", resultEvidence: "string or list(string)"}
		return nil, fmt.Errorf("expression has type %s, want %s", out, wants[want])
	}
	opts := []cel.ProgramOption{cel.InterruptCheckFrequency(100), cel.EvalOptions(cel.OptOptimize)}
	if limited {
		opts = append(opts, cel.CostLimit(costLimit))
	}
	return env.Program(ast, opts...)
}

func isStringList(t *cel.Type) bool {
	if t.Kind() != cel.ListKind {
		return false
	}
	p := t.Parameters()
	return len(p) == 1 && (p[0].IsExactType(cel.StringType) || p[0].IsExactType(cel.DynType))
}

// Checks returns the compiled checks, sorted by id.
func (e *Engine) Checks() []Check {
	out := make([]Check, len(e.checks))
	for i, c := range e.checks {
		out[i] = c.Check
	}
	return out
}
