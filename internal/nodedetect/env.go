package nodedetect

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
)

// maxExpressionSize bounds a rule expression's source. The cost limit
// and deadline of an evaluation are internal/detect's; see
// detect.Program and detect.Eval.
const maxExpressionSize = 20_000

// objType is one object type of the CEL view: process, container, dns,
// remote, event. Declaring them as types, rather than maps, makes a
// misspelt field or a wrong comparison a compile error and lets CEL read
// fields through an index instead of a map lookup.
type objType struct {
	typ    *types.Type
	fields []string
	ftypes map[string]*types.FieldType
}

func newObjType(name string, fields []string, ftypes []*types.Type) *objType {
	o := &objType{typ: types.NewObjectType(name), fields: fields, ftypes: map[string]*types.FieldType{}}
	for i, f := range fields {
		o.ftypes[f] = &types.FieldType{
			Type:  ftypes[i],
			IsSet: func(any) bool { return true },
			GetFrom: func(target any) (any, error) {
				if obj, ok := target.(*object); ok && obj.typ == o {
					return obj.field(i), nil
				}
				return nil, fmt.Errorf("field %s: got %T, want %s", f, target, name)
			},
		}
	}
	return o
}

// Field indexes of the object types; the order is the one of the names
// passed to newObjType.
const (
	pPID = iota
	pPPID
	pUID
	pComm
	pExe
	pName
	pArgs
	pArgsTruncated
	pCmdline
	pDrift
	pStdin
	pStdout
	pStderr
	pRemote
	pDownloaded
	pDownloadSource
	nProcessFields
)

const (
	cID = iota
	cName
	cPod
	cNamespace
	cImage
	cDigest
	nContainerFields
)

const (
	dName = iota
	dType
	dServer
	dTLD
	dDomain
	dSubdomain
	nDNSFields
)

const (
	rIP = iota
	rPort
	rPublic
	nRemoteFields
)

const (
	eKind = iota
	eTime
	nEventFields
)

var (
	str, integer, boolean = types.StringType, types.IntType, types.BoolType
	processType           = newObjType("nodedetect.Process",
		[]string{"pid", "ppid", "uid", "comm", "exe", "name", "args", "argsTruncated", "cmdline", "drift", "stdin", "stdout", "stderr", "remote", "downloaded", "downloadSource"},
		[]*types.Type{integer, integer, integer, str, str, str, types.NewListType(str), boolean, str, boolean, str, str, str, str, boolean, str})
	containerType = newObjType("nodedetect.Container",
		[]string{"id", "name", "pod", "namespace", "image", "digest"},
		[]*types.Type{str, str, str, str, str, str})
	dnsType = newObjType("nodedetect.DNS",
		[]string{"name", "type", "server", "tld", "domain", "subdomain"},
		[]*types.Type{str, str, str, str, str, str})
	remoteType = newObjType("nodedetect.Remote",
		[]string{"ip", "port", "public"},
		[]*types.Type{str, integer, boolean})
	eventType = newObjType("nodedetect.Event",
		[]string{"kind", "time"},
		[]*types.Type{str, types.TimestampType})
	objTypes = []*objType{processType, containerType, dnsType, remoteType, eventType}
)

// provider adds the view's object types to CEL's own.
type provider struct {
	types.Provider
	types.Adapter
	byName map[string]*objType
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if o := p.byName[name]; o != nil {
		return types.NewTypeTypeWithParam(o.typ), true
	}
	return p.Provider.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if o := p.byName[name]; o != nil {
		return slices.Clone(o.fields), true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if o := p.byName[name]; o != nil {
		ft, ok := o.ftypes[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p *provider) NativeToValue(v any) ref.Val {
	if rv, ok := v.(ref.Val); ok {
		return rv
	}
	return p.Adapter.NativeToValue(v)
}

// Variables of the view.
var variables = []struct {
	name string
	typ  *types.Type
}{
	{"event", eventType.typ},
	{"process", processType.typ},
	{"parent", processType.typ},
	{"ancestors", types.NewListType(processType.typ)},
	{"container", containerType.typ},
	{"inContainer", types.BoolType},
	{"dns", dnsType.typ},
	{"remote", remoteType.typ},
	{"node", types.StringType},
	{"cluster", types.StringType},
}

// newEnv builds the CEL environment of an engine; domainIn is bound to the
// engine's lists.
func newEnv(lists map[string]domainSet) (*cel.Env, error) {
	base, err := cel.NewEnv()
	if err != nil {
		return nil, fmt.Errorf("building CEL environment: %w", err)
	}
	p := &provider{Provider: base.CELTypeProvider(), Adapter: base.CELTypeAdapter(), byName: map[string]*objType{}}
	for _, o := range objTypes {
		p.byName[o.typ.TypeName()] = o
	}
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(p),
		cel.CustomTypeAdapter(p),
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
		ext.Bindings(),
		cel.ParserExpressionSizeLimit(maxExpressionSize),
		cel.CrossTypeNumericComparisons(true),
	}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.name, v.typ))
	}
	opts = append(opts, functions(lists)...)
	env, err := base.Extend(opts...)
	if err != nil {
		return nil, fmt.Errorf("building CEL environment: %w", err)
	}
	return env, nil
}

// functions are the Go helpers every rule can call.
func functions(lists map[string]domainSet) []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("entropy",
			cel.Overload("entropy_string", []*cel.Type{cel.StringType}, cel.DoubleType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Double(entropy(string(v.(types.String)))) }))),
		cel.Function("baseName",
			cel.Overload("baseName_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(baseName(string(v.(types.String)))) }))),
		cel.Function("labels",
			cel.Overload("labels_string", []*cel.Type{cel.StringType}, cel.ListType(cel.StringType),
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					return types.NewStringList(types.DefaultTypeAdapter, labels(string(v.(types.String))))
				}))),
		cel.Function("domainIn",
			cel.Overload("domainIn_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(name, list ref.Val) ref.Val {
					s, ok := lists[string(list.(types.String))]
					if !ok {
						return types.NewErr("domainIn: no domain list %q", list)
					}
					return types.Bool(s.contains(string(name.(types.String))))
				}))),
	}
}

// entropy is the Shannon entropy of s in bits per byte: about 3.0-3.5 for
// words and names, 4 and more for random letters and digits of some length.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// baseName is the last element of a slash-separated path ("" for "").
func baseName(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// labels splits a domain name into its labels, leftmost first, dropping
// empty ones.
func labels(name string) []string {
	out := strings.Split(strings.Trim(name, "."), ".")
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// checkLists rejects a domainIn call naming, as a literal, a list the
// engine does not have: without this the rule would fail on every event.
func checkLists(a *cel.Ast, lists map[string]domainSet) error {
	var errs []string
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != "domainIn" || len(e.AsCall().Args()) != 2 {
			return
		}
		arg := e.AsCall().Args()[1]
		if arg.Kind() != celast.LiteralKind {
			return
		}
		if name, ok := arg.AsLiteral().Value().(string); ok {
			if _, known := lists[name]; !known {
				errs = append(errs, fmt.Sprintf("domainIn: no domain list %q (lists: %s)", name, strings.Join(sortedKeys(lists), ", ")))
			}
		}
	}))
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
