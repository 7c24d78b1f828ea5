package posture

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The workload target converts every pod spec of the cluster, which makes
// conversion speed matter: this is a JSON-shaped converter from API structs
// straight to CEL values, with per-type field tables cached. It follows
// encoding/json's rules for the tags the Kubernetes API types use (name,
// omitempty, inline) and defers to MarshalJSON for types that have one
// (Quantity, IntOrString, Time).

type structField struct {
	index     int
	name      string
	omitEmpty bool
	inline    bool
}

var (
	fieldCache    sync.Map // reflect.Type -> []structField
	marshalerType = reflect.TypeFor[json.Marshaler]()
	// The two JSON-marshalled types found in every pod spec get a fast path.
	quantityType    = reflect.TypeFor[resource.Quantity]()
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
)

func fieldsOf(t reflect.Type) []structField {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]structField)
	}
	var fields []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		sf := structField{index: i, omitEmpty: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")}
		if strings.Contains(opts, "inline") || (name == "" && f.Anonymous) {
			sf.inline = true
		} else {
			if name == "" {
				name = f.Name
			}
			sf.name = name
		}
		fields = append(fields, sf)
	}
	// Sorted by name, so that structToVals fills a fieldMap in key order.
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].name < fields[j].name })
	fieldCache.Store(t, fields)
	return fields
}

// structVal converts a struct to a fieldMap, leaving out the fields named
// in skip (which the caller converts itself).
func structVal(v reflect.Value, skip ...string) *fieldMap {
	m := newFieldMap(8)
	structToVals(v, m, skip)
	return m
}

// structToVals converts a struct to its JSON object as CEL map entries.
func structToVals(v reflect.Value, out *fieldMap, skip []string) {
	for _, f := range fieldsOf(v.Type()) {
		if len(skip) > 0 && slices.Contains(skip, f.name) {
			continue
		}
		fv := v.Field(f.index)
		if f.inline {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				inner := newFieldMap(8)
				structToVals(fv, inner, nil)
				for i, k := range inner.keys {
					out.set(k, inner.vals[i])
				}
			}
			continue
		}
		if f.omitEmpty && isEmpty(fv) {
			continue
		}
		if n := len(out.keys); n == 0 || out.keys[n-1] < f.name {
			out.keys = append(out.keys, f.name)
			out.vals = append(out.vals, valueToVal(fv))
		} else {
			out.set(f.name, valueToVal(fv))
		}
	}
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		return v.Len() == 0
	case reflect.Struct:
		return v.IsZero()
	}
	return v.IsZero()
}

func valueToVal(v reflect.Value) ref.Val {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return types.NullValue
		}
		return valueToVal(v.Elem())
	case reflect.String:
		return types.String(v.String())
	case reflect.Bool:
		return types.Bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return types.Int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return types.Int(int64(v.Uint()))
	case reflect.Float32, reflect.Float64:
		return types.Double(v.Float())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return types.Bytes(v.Bytes())
		}
		l := make([]ref.Val, v.Len())
		for i := range l {
			l[i] = valueToVal(v.Index(i))
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	case reflect.Map:
		m := newFieldMap(v.Len())
		it := v.MapRange()
		for it.Next() {
			m.set(it.Key().String(), valueToVal(it.Value()))
		}
		return m
	case reflect.Struct:
		switch v.Type() {
		case quantityType:
			q := v.Interface().(resource.Quantity)
			return types.String(q.String())
		case intOrStringType:
			ios := v.Interface().(intstr.IntOrString)
			if ios.Type == intstr.Int {
				return types.Int(int64(ios.IntVal))
			}
			return types.String(ios.StrVal)
		}
		if v.Type().Implements(marshalerType) || reflect.PointerTo(v.Type()).Implements(marshalerType) {
			return viaJSON(v)
		}
		return structVal(v)
	}
	return types.NullValue
}

func viaJSON(v reflect.Value) ref.Val {
	var m json.Marshaler
	if v.CanAddr() {
		m, _ = v.Addr().Interface().(json.Marshaler)
	}
	if m == nil {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		m, _ = p.Interface().(json.Marshaler)
	}
	if m == nil {
		return types.NullValue
	}
	data, err := m.MarshalJSON()
	if err != nil {
		return types.NullValue
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return types.NullValue
	}
	if f, ok := out.(float64); ok && f == float64(int64(f)) {
		return types.Int(int64(f))
	}
	return toVal(out)
}
