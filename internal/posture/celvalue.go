package posture

import (
	"reflect"
	"slices"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// toVal converts a JSON-shaped view to CEL values once, up front. Handing
// CEL plain Go maps would make it wrap every nested map and list again on
// each access, by each check; for workloads, with ~50 checks over each pod
// spec, converting once is several times faster.
func toVal(v any) ref.Val {
	switch x := v.(type) {
	case nil:
		return types.NullValue
	case ref.Val:
		return x
	case string:
		return types.String(x)
	case bool:
		return types.Bool(x)
	case int64:
		return types.Int(x)
	case int:
		return types.Int(int64(x))
	case float64:
		return types.Double(x)
	case map[string]any:
		m := newFieldMap(len(x))
		for k, e := range x {
			m.set(k, toVal(e))
		}
		return m
	case []any:
		l := make([]ref.Val, len(x))
		for i, e := range x {
			l[i] = toVal(e)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	case []string:
		return types.NewStringList(types.DefaultTypeAdapter, x)
	case map[string]string:
		return types.NewStringStringMap(types.DefaultTypeAdapter, x)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// fieldMap is a CEL map with string keys backed by two slices. API objects
// have a handful of fields each, so a linear scan beats hashing, and
// building one costs two allocations instead of a Go map's buckets: this is
// what makes converting every pod spec of a large cluster affordable.
type fieldMap struct {
	keys []string
	vals []ref.Val
}

var (
	_ traits.Mapper = (*fieldMap)(nil)
	_ ref.Val       = (*fieldMap)(nil)
)

func newFieldMap(n int) *fieldMap {
	return &fieldMap{keys: make([]string, 0, n), vals: make([]ref.Val, 0, n)}
}

// index returns where k is or would be inserted; keys are kept sorted so
// that lookups, most of which are misses in optional chains, are a binary
// search.
func (m *fieldMap) index(k string) (int, bool) {
	lo, hi := 0, len(m.keys)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.keys[mid] < k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(m.keys) && m.keys[lo] == k
}

// set adds or replaces a field.
func (m *fieldMap) set(k string, v ref.Val) {
	i, found := m.index(k)
	if found {
		m.vals[i] = v
		return
	}
	m.keys = slices.Insert(m.keys, i, k)
	m.vals = slices.Insert(m.vals, i, v)
}

func (m *fieldMap) remove(k string) {
	if i, found := m.index(k); found {
		m.keys = slices.Delete(m.keys, i, i+1)
		m.vals = slices.Delete(m.vals, i, i+1)
	}
}

func (m *fieldMap) lookup(k string) (ref.Val, bool) {
	if i, found := m.index(k); found {
		return m.vals[i], true
	}
	return nil, false
}

func (m *fieldMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		if types.IsUnknownOrError(key) {
			return key, false
		}
		return nil, false
	}
	return m.lookup(string(k))
}

func (m *fieldMap) Get(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if found {
		return v
	}
	if v != nil {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func (m *fieldMap) Contains(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

func (m *fieldMap) Size() ref.Val { return types.Int(len(m.keys)) }

func (m *fieldMap) Iterator() traits.Iterator {
	return types.NewStringList(types.DefaultTypeAdapter, m.keys).Iterator()
}

func (m *fieldMap) Type() ref.Type { return types.MapType }

// Value returns the map as map[string]any of CEL values.
func (m *fieldMap) Value() any {
	out := make(map[string]any, len(m.keys))
	for i, k := range m.keys {
		out[k] = m.vals[i]
	}
	return out
}

func (m *fieldMap) ConvertToNative(t reflect.Type) (any, error) {
	native := make(map[string]any, len(m.keys))
	for i, k := range m.keys {
		v, err := m.vals[i].ConvertToNative(reflect.TypeFor[any]())
		if err != nil {
			return nil, err
		}
		native[k] = v
	}
	if reflect.TypeOf(native).AssignableTo(t) {
		return native, nil
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, native).ConvertToNative(t)
}

func (m *fieldMap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to %s", t)
}

func (m *fieldMap) Equal(other ref.Val) ref.Val {
	o, ok := other.(traits.Mapper)
	if !ok {
		return types.False
	}
	if o.Size() != m.Size() {
		return types.False
	}
	for i, k := range m.keys {
		ov, found := o.Find(types.String(k))
		if !found {
			return types.False
		}
		if eq := m.vals[i].Equal(ov); eq != types.True {
			return eq
		}
	}
	return types.True
}
