package detect

import (
	"encoding/json"
	"reflect"
	"slices"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Field names of the CEL view. They are checked at compile time, so a rule
// that misspells one does not compile.
var (
	eventFields = []string{
		"annotations", "auditID", "impersonatedUser", "level", "objectRef",
		"requestObject", "requestURI", "responseObject", "responseStatus",
		"sourceIPs", "stage", "user", "userAgent", "verb",
	}
	userFields           = []string{"extra", "groups", "uid", "username"}
	objectRefFields      = []string{"apiGroup", "apiVersion", "name", "namespace", "resource", "subresource", "uid"}
	responseStatusFields = []string{"code", "message", "reason", "status"}
)

// maxObjectBytes bounds the JSON of requestObject and responseObject that
// is parsed; larger objects are seen as empty maps.
const maxObjectBytes = 4 << 20

// eventView is the CEL variable "event": a read-only map over one audit
// event that converts fields only when a rule reads them. The engine reuses
// one eventView for every event (it serialises Process calls), so reading
// an event allocates only for the fields read.
type eventView struct {
	ev           *auditv1.Event
	user         userView
	impersonated userView
	objectRef    structView
	status       structView
	request      ref.Val // parsed requestObject, nil until read
	response     ref.Val
}

func (v *eventView) reset(ev *auditv1.Event) {
	v.ev = ev
	v.user = userView{u: &ev.User}
	v.impersonated = userView{u: ev.ImpersonatedUser}
	v.objectRef = structView{ev: v, fields: objectRefFields}
	v.status = structView{ev: v, fields: responseStatusFields}
	v.request, v.response = nil, nil
}

// ResolveName makes the view its own activation.
func (v *eventView) ResolveName(name string) (any, bool) {
	if name == "event" {
		return v, true
	}
	return nil, false
}

func (v *eventView) Parent() interpreter.Activation { return nil }

func (v *eventView) field(k string) (ref.Val, bool) {
	e := v.ev
	switch k {
	case "verb":
		return types.String(e.Verb), true
	case "stage":
		return types.String(e.Stage), true
	case "level":
		return types.String(e.Level), true
	case "auditID":
		return types.String(e.AuditID), true
	case "requestURI":
		return types.String(e.RequestURI), true
	case "userAgent":
		return types.String(e.UserAgent), true
	case "sourceIPs":
		return types.NewStringList(types.DefaultTypeAdapter, nonNil(e.SourceIPs)), true
	case "user":
		return &v.user, true
	case "impersonatedUser":
		if e.ImpersonatedUser == nil {
			return nil, false
		}
		return &v.impersonated, true
	case "objectRef":
		return &v.objectRef, true
	case "responseStatus":
		return &v.status, true
	case "annotations":
		return types.NewStringStringMap(types.DefaultTypeAdapter, e.Annotations), true
	case "requestObject":
		if v.request == nil {
			v.request = parseObject(e.RequestObject)
		}
		return v.request, true
	case "responseObject":
		if v.response == nil {
			v.response = parseObject(e.ResponseObject)
		}
		return v.response, true
	}
	return nil, false
}

func (v *eventView) objectRefField(k string) (ref.Val, bool) {
	o := v.ev.ObjectRef
	if o == nil {
		if slices.Contains(objectRefFields, k) {
			return types.String(""), true
		}
		return nil, false
	}
	switch k {
	case "resource":
		return types.String(o.Resource), true
	case "subresource":
		return types.String(o.Subresource), true
	case "namespace":
		return types.String(o.Namespace), true
	case "name":
		return types.String(o.Name), true
	case "apiGroup":
		return types.String(o.APIGroup), true
	case "apiVersion":
		return types.String(o.APIVersion), true
	case "uid":
		return types.String(o.UID), true
	}
	return nil, false
}

func (v *eventView) statusField(k string) (ref.Val, bool) {
	s := v.ev.ResponseStatus
	switch k {
	case "code":
		if s == nil {
			return types.IntZero, true
		}
		return types.Int(s.Code), true
	case "status", "reason", "message":
		if s == nil {
			return types.String(""), true
		}
		switch k {
		case "status":
			return types.String(s.Status), true
		case "reason":
			return types.String(s.Reason), true
		}
		return types.String(s.Message), true
	}
	return nil, false
}

var emptyMap = types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})

// parseObject turns an embedded object into a CEL map; anything that is not
// a JSON object becomes an empty map so that rules need no presence tests
// on requestObject itself.
func parseObject(u *runtime.Unknown) ref.Val {
	if u == nil || len(u.Raw) == 0 || len(u.Raw) > maxObjectBytes {
		return emptyMap
	}
	var m map[string]any
	if err := json.Unmarshal(u.Raw, &m); err != nil || m == nil {
		return emptyMap
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (v *eventView) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return maybeErr(key)
	}
	return v.field(string(k))
}

func (v *eventView) Get(key ref.Val) ref.Val          { return get(v, key) }
func (v *eventView) Contains(key ref.Val) ref.Val     { return contains(v, key) }
func (v *eventView) Size() ref.Val                    { return types.Int(len(v.keys())) }
func (v *eventView) Iterator() traits.Iterator        { return keyIterator(v.keys()) }
func (v *eventView) Type() ref.Type                   { return types.MapType }
func (v *eventView) Value() any                       { return v.ev }
func (v *eventView) ConvertToType(t ref.Type) ref.Val { return convertMap(v, t) }
func (v *eventView) Equal(other ref.Val) ref.Val      { return types.Bool(other == ref.Val(v)) }
func (v *eventView) ConvertToNative(t reflect.Type) (any, error) {
	return convertMapToNative(v, v.keys(), t)
}

func (v *eventView) keys() []string {
	if v.ev.ImpersonatedUser != nil {
		return eventFields
	}
	return eventFieldsWithoutImpersonated
}

var eventFieldsWithoutImpersonated = slices.DeleteFunc(slices.Clone(eventFields), func(s string) bool { return s == "impersonatedUser" })

// userView is user or impersonatedUser.
type userView struct {
	u *authnv1.UserInfo
}

func (v *userView) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return maybeErr(key)
	}
	switch k {
	case "username":
		return types.String(v.u.Username), true
	case "uid":
		return types.String(v.u.UID), true
	case "groups":
		return types.NewStringList(types.DefaultTypeAdapter, nonNil(v.u.Groups)), true
	case "extra":
		m := make(map[string][]string, len(v.u.Extra))
		for k, e := range v.u.Extra {
			m[k] = nonNil(e)
		}
		return types.DefaultTypeAdapter.NativeToValue(m), true
	}
	return nil, false
}

func (v *userView) Get(key ref.Val) ref.Val          { return get(v, key) }
func (v *userView) Contains(key ref.Val) ref.Val     { return contains(v, key) }
func (v *userView) Size() ref.Val                    { return types.Int(len(userFields)) }
func (v *userView) Iterator() traits.Iterator        { return keyIterator(userFields) }
func (v *userView) Type() ref.Type                   { return types.MapType }
func (v *userView) Value() any                       { return v.u }
func (v *userView) ConvertToType(t ref.Type) ref.Val { return convertMap(v, t) }
func (v *userView) Equal(other ref.Val) ref.Val      { return types.Bool(other == ref.Val(v)) }
func (v *userView) ConvertToNative(t reflect.Type) (any, error) {
	return convertMapToNative(v, userFields, t)
}

// structView is objectRef or responseStatus, told apart by fields.
type structView struct {
	ev     *eventView
	fields []string
}

func (v *structView) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return maybeErr(key)
	}
	if &v.fields[0] == &objectRefFields[0] {
		return v.ev.objectRefField(string(k))
	}
	return v.ev.statusField(string(k))
}

func (v *structView) Get(key ref.Val) ref.Val          { return get(v, key) }
func (v *structView) Contains(key ref.Val) ref.Val     { return contains(v, key) }
func (v *structView) Size() ref.Val                    { return types.Int(len(v.fields)) }
func (v *structView) Iterator() traits.Iterator        { return keyIterator(v.fields) }
func (v *structView) Type() ref.Type                   { return types.MapType }
func (v *structView) Value() any                       { return v.fields }
func (v *structView) ConvertToType(t ref.Type) ref.Val { return convertMap(v, t) }
func (v *structView) Equal(other ref.Val) ref.Val      { return types.Bool(other == ref.Val(v)) }
func (v *structView) ConvertToNative(t reflect.Type) (any, error) {
	return convertMapToNative(v, v.fields, t)
}

var (
	_ traits.Mapper          = (*eventView)(nil)
	_ traits.Mapper          = (*userView)(nil)
	_ traits.Mapper          = (*structView)(nil)
	_ interpreter.Activation = (*eventView)(nil)
)

func maybeErr(key ref.Val) (ref.Val, bool) {
	if types.IsUnknownOrError(key) {
		return key, false
	}
	return nil, false
}

func get(m traits.Mapper, key ref.Val) ref.Val {
	v, found := m.Find(key)
	if found {
		return v
	}
	if v != nil {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func contains(m traits.Mapper, key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

func keyIterator(keys []string) traits.Iterator {
	return types.NewStringList(types.DefaultTypeAdapter, keys).Iterator()
}

func convertMap(m ref.Val, t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to %s", t)
}

// convertMapToNative materialises a view, for the rare rule that hands the
// whole map to a function expecting a native map.
func convertMapToNative(m traits.Mapper, keys []string, t reflect.Type) (any, error) {
	native := make(map[string]any, len(keys))
	for _, k := range keys {
		v, found := m.Find(types.String(k))
		if !found {
			continue
		}
		n, err := v.ConvertToNative(reflect.TypeFor[any]())
		if err != nil {
			return nil, err
		}
		native[k] = n
	}
	if reflect.TypeOf(native).AssignableTo(t) {
		return native, nil
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, native).ConvertToNative(t)
}
