package detect

import (
	"context"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// Program compiles expr in env to a program whose result has type want
// (or dyn, checked when it runs). check, when set, vets the checked
// expression further, e.g. for names the environment cannot declare.
// Limited programs, those of rules that are not the reviewed built-in
// ones, run with a CEL cost limit; see Eval for their deadline. Both rule
// engines compile through here, so user rules are bounded alike.
func Program(env *cel.Env, expr string, want *cel.Type, limited bool, check func(*cel.Ast) error) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if out := ast.OutputType(); !out.IsExactType(want) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("expression has type %s, want %s", out, want)
	}
	if check != nil {
		if err := check(ast); err != nil {
			return nil, err
		}
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if limited {
		opts = append(opts, cel.CostLimit(costLimit), cel.InterruptCheckFrequency(100))
	}
	return env.Program(ast, opts...)
}

// Eval runs p, made by Program, over vars (a CEL activation). A limited
// program also stops at a deadline, since CEL's cost model undercounts
// some comprehensions; an unlimited one skips the context's overhead.
func Eval(ctx context.Context, p cel.Program, vars any, limited bool) (ref.Val, error) {
	if limited {
		ctx, cancel := context.WithTimeout(ctx, evalTimeout)
		defer cancel()
		val, _, err := p.ContextEval(ctx, vars)
		return val, err
	}
	val, _, err := p.Eval(vars)
	return val, err
}

// EvalBool is Eval of a bool expression.
func EvalBool(ctx context.Context, p cel.Program, vars any, limited bool) (bool, error) {
	val, err := Eval(ctx, p, vars, limited)
	if err != nil {
		return false, err
	}
	b, ok := val.(types.Bool)
	if !ok {
		return false, fmt.Errorf("got %s, want bool", val.Type().TypeName())
	}
	return bool(b), nil
}

// EvalString is Eval of a string expression.
func EvalString(ctx context.Context, p cel.Program, vars any, limited bool) (string, error) {
	val, err := Eval(ctx, p, vars, limited)
	if err != nil {
		return "", err
	}
	s, ok := val.(types.String)
	if !ok {
		return "", fmt.Errorf("got %s, want string", val.Type().TypeName())
	}
	return string(s), nil
}
