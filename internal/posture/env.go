package posture

import (
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
)

// Target names.
const (
	TargetWorkload       = "workload"
	TargetNamespace      = "namespace"
	TargetRole           = "role"
	TargetBinding        = "binding"
	TargetSubject        = "subject"
	TargetServiceAccount = "serviceaccount"
	TargetControlPlane   = "controlplane"
	TargetNode           = "node"
)

// Limits that keep one user check from stalling a run. costLimit is in CEL
// cost units (roughly one per operation) per evaluation; it applies to every
// check that is not an unmodified built-in one.
const (
	costLimit         = 1_000_000
	maxExpressionSize = 20_000
	maxErrorsPerCheck = 10
	maxEvidenceItems  = 25
	maxEvidenceLength = 300
)

var (
	mapType  = cel.MapType(cel.StringType, cel.DynType)
	listMaps = cel.ListType(mapType)
)

type targetSpec struct {
	vars map[string]*cel.Type
	env  func() (*cel.Env, error)
}

var targets = map[string]*targetSpec{
	TargetWorkload: {vars: map[string]*cel.Type{
		"workload": mapType, "template": mapType, "spec": mapType,
		"containers": listMaps, "ns": mapType, "serviceAccount": mapType,
	}},
	TargetNamespace: {vars: map[string]*cel.Type{
		"ns": mapType, "networkPolicies": listMaps, "pods": cel.IntType,
		"workloads": cel.IntType, "serviceAccounts": cel.ListType(cel.StringType),
		"services": cel.IntType, "secrets": cel.IntType, "configMaps": cel.IntType,
	}},
	TargetRole: {vars: map[string]*cel.Type{"role": mapType, "rules": listMaps}},
	TargetBinding: {vars: map[string]*cel.Type{
		"binding": mapType, "roleRef": mapType, "subjects": listMaps,
		"roleExists": cel.BoolType, "roleRules": listMaps,
	}},
	TargetSubject: {vars: map[string]*cel.Type{
		"subject": mapType, "rules": listMaps, "nonDefaultRules": listMaps, "bindings": listMaps,
	}},
	TargetServiceAccount: {vars: map[string]*cel.Type{
		"serviceAccount": mapType, "rules": listMaps, "nonDefaultRules": listMaps,
		"bindings": listMaps, "workloads": listMaps,
	}},
	TargetControlPlane: {vars: map[string]*cel.Type{
		"component": cel.StringType, "flags": cel.MapType(cel.StringType, cel.StringType), "pod": mapType,
	}},
	TargetNode: {vars: map[string]*cel.Type{"node": mapType, "kubelet": mapType, "files": listMaps}},
}

func init() {
	for name, t := range targets {
		t.env = sync.OnceValues(func() (*cel.Env, error) { return newEnv(name, t.vars) })
	}
}

func targetNames() []string {
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func newEnv(target string, vars map[string]*cel.Type) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
		ext.Bindings(),
		cel.ParserExpressionSizeLimit(maxExpressionSize),
		cel.CrossTypeNumericComparisons(true),
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range vars {
			if !yield(n) {
				return
			}
		}
	}) {
		opts = append(opts, cel.Variable(name, vars[name]))
	}
	opts = append(opts, functions()...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("building CEL environment for target %s: %w", target, err)
	}
	return env, nil
}

// functions are the Go helpers every check can call.
func functions() []cel.EnvOption {
	str := cel.StringType
	return []cel.EnvOption{
		cel.Function("allows",
			cel.Overload("allows_rules_verb_group_resource",
				[]*cel.Type{listMaps, str, str, str}, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return allowsVal(args, false) }))),
		cel.Function("allowsIn",
			cel.Overload("allowsIn_rules_verb_group_resource_namespace",
				[]*cel.Type{listMaps, str, str, str, str}, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return allowsVal(args, true) }))),
		cel.Function("grants",
			cel.Overload("grants_rules_verb_group_resource",
				[]*cel.Type{listMaps, str, str, str}, cel.ListType(str),
				cel.FunctionBinding(grantsVal))),
		cel.Function("grantsIn",
			cel.Overload("grantsIn_rules_verb_group_resource_namespace",
				[]*cel.Type{listMaps, str, str, str, str}, cel.ListType(str),
				cel.FunctionBinding(grantsVal))),
		cel.Function("octal",
			cel.Overload("octal_int", []*cel.Type{cel.IntType}, str,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					i, ok := v.Value().(int64)
					if !ok {
						return types.NewErr("octal: got %s, want int", v.Type().TypeName())
					}
					return types.String(strconv.FormatInt(i, 8))
				}))),
		cel.Function("modeExceeds",
			cel.Overload("modeExceeds_int_string",
				[]*cel.Type{cel.IntType, str}, cel.BoolType,
				cel.BinaryBinding(modeExceedsVal))),
	}
}

func stringArgs(args []ref.Val) ([]string, error) {
	out := make([]string, len(args))
	for i, a := range args {
		s, ok := a.Value().(string)
		if !ok {
			return nil, fmt.Errorf("argument %d is %s, want string", i+2, a.Type().TypeName())
		}
		out[i] = s
	}
	return out, nil
}

func allowsVal(args []ref.Val, scoped bool) ref.Val {
	rules, err := rulesOf(args[0])
	if err != nil {
		return types.NewErr("allows: %v", err)
	}
	s, err := stringArgs(args[1:])
	if err != nil {
		return types.NewErr("allows: %v", err)
	}
	for i := range rules {
		r := &rules[i]
		if scoped && !r.appliesIn(s[3]) {
			continue
		}
		if r.allows(s[0], s[1], s[2]) {
			return types.True
		}
	}
	return types.False
}

func grantsVal(args ...ref.Val) ref.Val {
	rules, err := rulesOf(args[0])
	if err != nil {
		return types.NewErr("grants: %v", err)
	}
	s, err := stringArgs(args[1:])
	if err != nil {
		return types.NewErr("grants: %v", err)
	}
	scoped := len(s) == 4
	out := []string{}
	for i := range rules {
		if scoped && !rules[i].appliesIn(s[3]) {
			continue
		}
		if rules[i].allows(s[0], s[1], s[2]) {
			d := rules[i].describe(s[0], s[2])
			if !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return types.NewStringList(types.DefaultTypeAdapter, out)
}

// modeExceeds reports whether file mode has any permission bit outside the
// octal mask, e.g. modeExceeds(0644, "600") is true. CEL has neither octal
// literals nor bitwise operators, hence the helper.
func modeExceedsVal(mode, mask ref.Val) ref.Val {
	m, ok := mode.Value().(int64)
	if !ok {
		return types.NewErr("modeExceeds: mode is %s, want int", mode.Type().TypeName())
	}
	ms, ok := mask.Value().(string)
	if !ok {
		return types.NewErr("modeExceeds: mask is %s, want string", mask.Type().TypeName())
	}
	allowed, err := strconv.ParseUint(ms, 8, 32)
	if err != nil {
		return types.NewErr("modeExceeds: mask %q is not an octal mode", ms)
	}
	return types.Bool(uint64(m)&0o7777&^allowed != 0)
}
