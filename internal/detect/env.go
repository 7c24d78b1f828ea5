package detect

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
)

// Limits that keep one user rule from stalling the stream. costLimit is in
// CEL cost units (roughly one per operation) per evaluation: far more than
// any sensible rule over one event needs. CEL's cost model undercounts
// comprehensions that build large lists, so evalTimeout bounds the wall
// time of an evaluation as well.
const (
	costLimit         = 100_000
	evalTimeout       = 25 * time.Millisecond
	maxExpressionSize = 20_000
)

// podTokenExtra is set by kube-apiserver on requests authenticated with a
// bound service account token, i.e. one a kubelet mounted into a pod.
const podTokenExtra = "authentication.kubernetes.io/pod-name"

var (
	mapType  = cel.MapType(cel.StringType, cel.DynType)
	listMaps = cel.ListType(mapType)
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
		ext.Bindings(),
		cel.ParserExpressionSizeLimit(maxExpressionSize),
		cel.CrossTypeNumericComparisons(true),
		cel.Variable("event", mapType),
	}
	opts = append(opts, functions()...)
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("building CEL environment: %w", err)
	}
	return env, nil
})

func userPredicate(name string, f func(username string, groups []string, m traits.Mapper) bool) cel.EnvOption {
	return cel.Function(name,
		cel.Overload(name+"_user", []*cel.Type{cel.DynType}, cel.BoolType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				if u, ok := v.(*userView); ok {
					return types.Bool(f(u.u.Username, u.u.Groups, u))
				}
				m, ok := v.(traits.Mapper)
				if !ok {
					return types.NewErr("%s: got %s, want a user map", name, v.Type().TypeName())
				}
				return types.Bool(f(stringField(m, "username"), stringsField(m, "groups"), m))
			})))
}

// functions are the Go helpers every rule can call. Their parameters are
// dyn, not map: for a map parameter CEL checks at runtime that every entry
// of the argument has the declared type, which walks (and converts) the
// whole user or object on every call.
func functions() []cel.EnvOption {
	return []cel.EnvOption{
		userPredicate("isServiceAccount", func(name string, _ []string, _ traits.Mapper) bool {
			return strings.HasPrefix(name, "system:serviceaccount:")
		}),
		userPredicate("inPod", func(_ string, _ []string, m traits.Mapper) bool { return hasPodToken(m) }),
		userPredicate("isNode", func(name string, _ []string, _ traits.Mapper) bool { return isNode(name) }),
		userPredicate("isSystem", func(name string, _ []string, m traits.Mapper) bool { return isSystem(name, m) }),
		userPredicate("isAnonymous", func(name string, groups []string, _ traits.Mapper) bool {
			return name == "system:anonymous" || slices.Contains(groups, "system:unauthenticated")
		}),
		cel.Function("queryParam",
			cel.Overload("queryParam_uri_name", []*cel.Type{cel.StringType, cel.StringType}, cel.ListType(cel.StringType),
				cel.BinaryBinding(queryParamVal))),
		cel.Function("podSpec",
			cel.Overload("podSpec_object", []*cel.Type{cel.DynType}, mapType, cel.UnaryBinding(podSpecVal))),
		cel.Function("containers",
			cel.Overload("containers_spec", []*cel.Type{cel.DynType}, listMaps, cel.UnaryBinding(containersVal))),
		cel.Function("hostPaths",
			cel.Overload("hostPaths_spec", []*cel.Type{cel.DynType}, cel.ListType(cel.StringType), cel.UnaryBinding(hostPathsVal))),
	}
}

// controlPlaneUsers are the identities kube-apiserver and the control-plane
// components use for their own work.
var controlPlaneUsers = []string{
	"system:apiserver",
	"system:kube-controller-manager",
	"system:kube-scheduler",
	"system:kube-proxy",
	"system:volume-scheduler",
}

func isNode(name string) bool { return strings.HasPrefix(name, "system:node:") }

// isSystem reports whether a user is the control plane or a node: the
// identities whose routine work would drown the alerts. kube-system service
// accounts are included because the controller manager runs its
// controllers as them (--use-service-account-credentials); a pod-bound
// token of one is not, so abuse of an addon's token stays visible.
func isSystem(name string, m traits.Mapper) bool {
	return slices.Contains(controlPlaneUsers, name) || isNode(name) ||
		strings.HasPrefix(name, "system:serviceaccount:kube-system:") && !hasPodToken(m)
}

func hasPodToken(m traits.Mapper) bool {
	if u, ok := m.(*userView); ok {
		return len(u.u.Extra[podTokenExtra]) > 0
	}
	extra, found := m.Find(types.String("extra"))
	if !found {
		return false
	}
	em, ok := extra.(traits.Mapper)
	if !ok {
		return false
	}
	_, found = em.Find(types.String(podTokenExtra))
	return found
}

func stringField(m traits.Mapper, k string) string {
	if v, found := m.Find(types.String(k)); found {
		if s, ok := v.Value().(string); ok {
			return s
		}
	}
	return ""
}

func stringsField(m traits.Mapper, k string) []string {
	v, found := m.Find(types.String(k))
	if !found {
		return nil
	}
	l, ok := v.(traits.Lister)
	if !ok {
		return nil
	}
	var out []string
	for it := l.Iterator(); it.HasNext() == types.True; {
		if s, ok := it.Next().Value().(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func mapField(m traits.Mapper, k string) traits.Mapper {
	if v, found := m.Find(types.String(k)); found {
		if mm, ok := v.(traits.Mapper); ok {
			return mm
		}
	}
	return nil
}

// podSpecVal finds the pod spec in a Pod, a workload with a pod template,
// a CronJob or a patch of any of them, judging by shape rather than kind
// because patches have none.
func podSpecVal(v ref.Val) ref.Val {
	m, ok := v.(traits.Mapper)
	if !ok {
		return emptyMap
	}
	spec := mapField(m, "spec")
	if spec == nil {
		return emptyMap
	}
	if jt := mapField(spec, "jobTemplate"); jt != nil {
		if spec = mapField(jt, "spec"); spec == nil {
			return emptyMap
		}
	}
	if tpl := mapField(spec, "template"); tpl != nil {
		if spec = mapField(tpl, "spec"); spec == nil {
			return emptyMap
		}
	}
	return spec
}

var containerLists = []string{"initContainers", "containers", "ephemeralContainers"}

// containersVal lists init, regular and ephemeral containers of a spec.
func containersVal(v ref.Val) ref.Val {
	spec, ok := v.(traits.Mapper)
	if !ok {
		return types.NewRefValList(types.DefaultTypeAdapter, nil)
	}
	var out []ref.Val
	for _, k := range containerLists {
		l, found := spec.Find(types.String(k))
		if !found {
			continue
		}
		lister, ok := l.(traits.Lister)
		if !ok {
			continue
		}
		for it := lister.Iterator(); it.HasNext() == types.True; {
			if c, ok := it.Next().(traits.Mapper); ok {
				out = append(out, c)
			}
		}
	}
	return types.NewRefValList(types.DefaultTypeAdapter, out)
}

// hostPathsVal lists the hostPath volume paths of a spec, cleaned ("/etc/"
// and "/etc/." become "/etc") so that rules can compare them exactly.
func hostPathsVal(v ref.Val) ref.Val {
	out := []string{}
	spec, ok := v.(traits.Mapper)
	if !ok {
		return types.NewStringList(types.DefaultTypeAdapter, out)
	}
	vols, found := spec.Find(types.String("volumes"))
	if !found {
		return types.NewStringList(types.DefaultTypeAdapter, out)
	}
	lister, ok := vols.(traits.Lister)
	if !ok {
		return types.NewStringList(types.DefaultTypeAdapter, out)
	}
	for it := lister.Iterator(); it.HasNext() == types.True; {
		vol, ok := it.Next().(traits.Mapper)
		if !ok {
			continue
		}
		hp := mapField(vol, "hostPath")
		if hp == nil {
			continue
		}
		if p := stringField(hp, "path"); p != "" {
			out = append(out, path.Clean("/"+p))
		}
	}
	return types.NewStringList(types.DefaultTypeAdapter, out)
}

// checkFields rejects selections of fields the event view does not have,
// e.g. event.usr or event.objectRef.kind, which CEL's map type would
// otherwise accept and fail on at runtime, for every event.
func checkFields(a *cel.Ast) error {
	var errs []string
	known := func(operand celast.Expr, field string) {
		fields, what := fieldsOf(operand)
		if fields != nil && !slices.Contains(fields, field) {
			errs = append(errs, fmt.Sprintf("%s has no field %q (fields: %s)", what, field, strings.Join(fields, ", ")))
		}
	}
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			s := e.AsSelect()
			known(s.Operand(), s.FieldName())
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() == operators.OptSelect && len(c.Args()) == 2 && c.Args()[1].Kind() == celast.LiteralKind {
				if f, ok := c.Args()[1].AsLiteral().Value().(string); ok {
					known(c.Args()[0], f)
				}
			}
		}
	}))
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// fieldsOf returns the known fields of event and its fixed sub-maps, or nil
// for anything else.
func fieldsOf(e celast.Expr) ([]string, string) {
	if e.Kind() == celast.IdentKind && e.AsIdent() == "event" {
		return eventFields, "event"
	}
	var operand celast.Expr
	var field string
	switch e.Kind() {
	case celast.SelectKind:
		operand, field = e.AsSelect().Operand(), e.AsSelect().FieldName()
	case celast.CallKind:
		c := e.AsCall()
		if c.FunctionName() != operators.OptSelect || len(c.Args()) != 2 || c.Args()[1].Kind() != celast.LiteralKind {
			return nil, ""
		}
		f, ok := c.Args()[1].AsLiteral().Value().(string)
		if !ok {
			return nil, ""
		}
		operand, field = c.Args()[0], f
	default:
		return nil, ""
	}
	if operand.Kind() != celast.IdentKind || operand.AsIdent() != "event" {
		return nil, ""
	}
	switch field {
	case "user", "impersonatedUser":
		return userFields, "event." + field
	case "objectRef":
		return objectRefFields, "event.objectRef"
	case "responseStatus":
		return responseStatusFields, "event.responseStatus"
	}
	return nil, ""
}

// queryParamVal returns the values of a query parameter of a request URI,
// e.g. the command of an exec: queryParam(event.requestURI, "command").
func queryParamVal(uri, name ref.Val) ref.Val {
	u, ok := uri.Value().(string)
	if !ok {
		return types.NewErr("queryParam: uri is %s, want string", uri.Type().TypeName())
	}
	n, ok := name.Value().(string)
	if !ok {
		return types.NewErr("queryParam: name is %s, want string", name.Type().TypeName())
	}
	_, query, found := strings.Cut(u, "?")
	if !found {
		return types.NewStringList(types.DefaultTypeAdapter, []string{})
	}
	// A malformed query still yields the parameters before the flaw.
	values, _ := url.ParseQuery(query)
	return types.NewStringList(types.DefaultTypeAdapter, nonNil(values[n]))
}
