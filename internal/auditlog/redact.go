package auditlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// RedactedAnnotation is set on an event Redact changed. Its value lists
// what lost content — requestObject, responseObject, annotations — so that a
// detector can tell "the policy did not log the body" from "the body held
// secrets and was removed".
const RedactedAnnotation = "auditlog.bulwark.dev/redacted"

// lastApplied holds a copy of an object as kubectl last applied it,
// secrets included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// maxDepth bounds the nesting Redact walks; deeper objects are dropped.
// Kubernetes objects, CRD schemas included, stay far below it.
const maxDepth = 200

var errTooDeep = errors.New("object nested too deeply")

// Redact removes secret material from e, in place, and reports whether it
// removed anything:
//
//   - request and response objects of Secrets and ConfigMaps keep only
//     apiVersion, kind, metadata, type and immutable — in lists, tables and
//     patches too (a JSON patch keeps its op and path, not its value);
//   - any object of kind Secret or ConfigMap, wherever it is nested, loses
//     data, stringData and binaryData;
//   - TokenReview spec.token and TokenRequest status.token;
//   - the kubectl.kubernetes.io/last-applied-configuration annotation of
//     any object is redacted by the same rules (dropped when unparseable);
//   - event annotations that hold credentials (Authorization-like names,
//     Bearer/Basic values, JWTs).
//
// Objects that cannot be inspected — not JSON, unparseable, nested deeper
// than maxDepth or larger than MaxObjectSize — are dropped entirely.
// Everything else, such as a Pod's environment values, is kept.
func Redact(e *Event) bool {
	if e == nil {
		return false
	}
	kind := classify(e.ObjectRef)
	var removed []string
	if redactObject(&e.RequestObject, kind) {
		removed = append(removed, "requestObject")
	}
	if redactObject(&e.ResponseObject, kind) {
		removed = append(removed, "responseObject")
	}
	if redactAnnotations(e.Annotations) {
		removed = append(removed, "annotations")
	}
	if len(removed) == 0 {
		return false
	}
	if e.Annotations == nil {
		e.Annotations = make(map[string]string, 1)
	}
	e.Annotations[RedactedAnnotation] = strings.Join(removed, ",")
	return true
}

// resourceKind is what an event's objectRef says about its objects.
type resourceKind int

const (
	plainResource        resourceKind = iota
	secretResource                    // secrets and configmaps: metadata only
	tokenReviewResource               // tokenreviews: spec.token
	tokenRequestResource              // serviceaccounts/token: status.token
)

func classify(ref *auditv1.ObjectReference) resourceKind {
	if ref == nil {
		return plainResource
	}
	switch {
	case ref.APIGroup == "" && (strings.EqualFold(ref.Resource, "secrets") || strings.EqualFold(ref.Resource, "configmaps")):
		return secretResource
	case ref.APIGroup == "authentication.k8s.io" && strings.EqualFold(ref.Resource, "tokenreviews"):
		return tokenReviewResource
	case ref.APIGroup == "" && strings.EqualFold(ref.Resource, "serviceaccounts") && strings.EqualFold(ref.Subresource, "token"):
		return tokenRequestResource
	}
	return plainResource
}

// triggers are the strings without which a plain object cannot hold
// anything Redact removes; "\u" because JSON escapes can spell any of them.
var triggers = [][]byte{
	[]byte("Secret"), []byte("ConfigMap"), []byte("TokenReview"), []byte("TokenRequest"),
	[]byte(lastApplied), []byte(`\u`),
}

func mayHoldSecrets(raw []byte) bool {
	for _, t := range triggers {
		if bytes.Contains(raw, t) {
			return true
		}
	}
	return false
}

// redactObject redacts *pu, setting it to nil when it has to be dropped,
// and reports whether it removed anything.
func redactObject(pu **runtime.Unknown, kind resourceKind) bool {
	u := *pu
	if u == nil {
		return false
	}
	if len(u.Raw) == 0 {
		// An empty Raw would marshal as nothing, which is not JSON.
		*pu = nil
		return false
	}
	if (u.ContentType != "" && u.ContentType != runtime.ContentTypeJSON) || u.ContentEncoding != "" || len(u.Raw) > MaxObjectSize {
		*pu = nil
		return true
	}
	if kind == plainResource && !mayHoldSecrets(u.Raw) {
		if json.Valid(u.Raw) {
			return false
		}
		*pu = nil
		return true
	}
	v, err := decodeJSON(u.Raw)
	if err != nil {
		*pu = nil
		return true
	}
	var w walker
	var changed bool
	switch kind {
	case secretResource:
		v, changed = w.secret(v, 0)
	case tokenReviewResource:
		changed = deleteField(v, "spec", "token")
	case tokenRequestResource:
		changed = deleteField(v, "status", "token")
	}
	if kind != secretResource {
		var c bool
		v, c = w.plain(v, 0)
		changed = changed || c
	}
	if w.err != nil {
		*pu = nil
		return true
	}
	if !changed {
		return false
	}
	if v == nil {
		*pu = nil
		return true
	}
	raw, err := encodeJSON(v)
	if err != nil {
		*pu = nil
		return true
	}
	*pu = &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}
	return true
}

// walker redacts decoded JSON (maps, slices, strings, json.Numbers, bools,
// nil). It stops at maxDepth, recording errTooDeep.
type walker struct{ err error }

func (w *walker) deep(depth int) bool {
	if depth > maxDepth {
		w.err = errTooDeep
		return true
	}
	return false
}

// plain walks a value of no particular resource and redacts the objects it
// recognises by kind, and last-applied annotations.
func (w *walker) plain(v any, depth int) (any, bool) {
	if w.deep(depth) {
		return nil, true
	}
	switch x := v.(type) {
	case []any:
		changed := false
		for i, e := range x {
			var c bool
			x[i], c = w.plain(e, depth+1)
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		switch kindOf(x) {
		case "Secret", "ConfigMap":
			if apiVersionOf(x) == "" || apiVersionOf(x) == "v1" {
				changed := deleteKeys(x, "data", "stringData", "binaryData")
				c := w.metadata(x, true, depth+1)
				return x, changed || c
			}
		case "SecretList", "ConfigMapList":
			if apiVersionOf(x) == "" || apiVersionOf(x) == "v1" {
				return w.secret(x, depth)
			}
		}
		changed := false
		switch kindOf(x) {
		case "TokenReview":
			if isAuthenticationAPI(apiVersionOf(x)) {
				changed = deleteField(x, "spec", "token")
			}
		case "TokenRequest":
			if isAuthenticationAPI(apiVersionOf(x)) {
				changed = deleteField(x, "status", "token")
			}
		}
		for k, e := range x {
			if k == "metadata" {
				if w.metadata(x, false, depth+1) {
					changed = true
				}
				continue
			}
			var c bool
			x[k], c = w.plain(e, depth+1)
			changed = changed || c
		}
		return x, changed
	}
	return v, false
}

// secret reduces a value of a secret-bearing resource to what is not
// secret. It returns nil when nothing can be kept.
func (w *walker) secret(v any, depth int) (any, bool) {
	if w.deep(depth) {
		return nil, true
	}
	switch x := v.(type) {
	case nil:
		return nil, false
	case []any:
		// A JSON patch: keep what each operation did and where, not the
		// value it wrote.
		out := make([]any, 0, len(x))
		changed := false
		for _, e := range x {
			op, ok := e.(map[string]any)
			if !ok {
				changed = true
				continue
			}
			kept := make(map[string]any, 3)
			for k, v := range op {
				s, ok := v.(string)
				if ok && (k == "op" || k == "path" || k == "from") {
					kept[k] = s
				} else {
					changed = true
				}
			}
			out = append(out, kept)
		}
		return out, changed
	case map[string]any:
		if kindOf(x) == "Status" {
			return x, false
		}
		changed := false
		for k := range x {
			switch k {
			case "apiVersion", "kind", "metadata", "type", "immutable":
			case "items":
				items, ok := x[k].([]any)
				if !ok {
					delete(x, k)
					changed = true
					continue
				}
				for i, it := range items {
					var c bool
					items[i], c = w.secret(it, depth+1)
					changed = changed || c
				}
			case "rows", "columnDefinitions":
				if kindOf(x) != "Table" {
					delete(x, k)
					changed = true
					continue
				}
				if k == "rows" && w.tableRows(x, depth+1) {
					changed = true
				}
			default:
				delete(x, k)
				changed = true
			}
		}
		if w.metadata(x, true, depth+1) {
			changed = true
		}
		return x, changed
	}
	return nil, true
}

// tableRows reduces the objects of a Table's rows (kubectl get prints
// secrets as a Table); the cells hold names, types and counts.
func (w *walker) tableRows(table map[string]any, depth int) bool {
	rows, ok := table["rows"].([]any)
	if !ok {
		delete(table, "rows")
		return true
	}
	changed := false
	for _, r := range rows {
		row, ok := r.(map[string]any)
		if !ok {
			continue
		}
		if obj, ok := row["object"]; ok {
			var c bool
			row["object"], c = w.secret(obj, depth+1)
			changed = changed || c
		}
	}
	return changed
}

// metadata redacts the last-applied annotation in obj's metadata, by the
// rules for a secret-bearing resource when secret is set.
func (w *walker) metadata(obj map[string]any, secret bool, depth int) bool {
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return false
	}
	ann, ok := meta["annotations"].(map[string]any)
	if !ok {
		return false
	}
	changed := false
	for k, v := range ann {
		if k != lastApplied && !strings.EqualFold(k, lastApplied) {
			continue
		}
		s, ok := v.(string)
		if !ok {
			continue
		}
		inner, err := decodeJSON([]byte(s))
		if err != nil {
			delete(ann, k)
			changed = true
			continue
		}
		var c bool
		if secret {
			inner, c = w.secret(inner, depth+1)
		} else {
			inner, c = w.plain(inner, depth+1)
		}
		if !c {
			continue
		}
		changed = true
		raw, err := encodeJSON(inner)
		if err != nil || inner == nil {
			delete(ann, k)
			continue
		}
		ann[k] = string(raw)
	}
	return changed
}

func isAuthenticationAPI(apiVersion string) bool {
	return apiVersion == "" || strings.HasPrefix(apiVersion, "authentication.k8s.io/")
}

func kindOf(m map[string]any) string       { s, _ := m["kind"].(string); return s }
func apiVersionOf(m map[string]any) string { s, _ := m["apiVersion"].(string); return s }

// deleteKeys deletes keys from m, matching names case-insensitively, and
// reports whether it deleted any.
func deleteKeys(m map[string]any, names ...string) bool {
	deleted := false
	for k := range m {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				delete(m, k)
				deleted = true
			}
		}
	}
	return deleted
}

// deleteField deletes v[parent][name] when v is an object and the field is
// not empty, matching names case-insensitively.
func deleteField(v any, parent, name string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	deleted := false
	for k, p := range m {
		if !strings.EqualFold(k, parent) {
			continue
		}
		pm, ok := p.(map[string]any)
		if !ok {
			continue
		}
		for k, v := range pm {
			// An empty token, as in a TokenRequest's request, is no secret.
			if strings.EqualFold(k, name) && v != "" {
				delete(pm, k)
				deleted = true
			}
		}
	}
	return deleted
}

// decodeJSON decodes exactly one JSON value, keeping numbers exact.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// credentialHeaders are header names whose values are credentials.
var credentialHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-api-key": true, "x-auth-token": true, "x-remote-extra-token": true,
}

var (
	authSchemeRE = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`)
	jwtRE        = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
)

// redactAnnotations replaces credentials in event annotations with
// "[REDACTED]". Authorization decisions and reasons are evidence and stay.
func redactAnnotations(ann map[string]string) bool {
	changed := false
	for k, v := range ann {
		if k == RedactedAnnotation {
			continue
		}
		name := strings.ToLower(k[strings.LastIndexByte(k, '/')+1:])
		if credentialHeaders[name] {
			if v != "[REDACTED]" {
				ann[k] = "[REDACTED]"
				changed = true
			}
			continue
		}
		r := v
		if strings.Contains(r, "eyJ") {
			r = jwtRE.ReplaceAllString(r, "[REDACTED]")
		}
		r = authSchemeRE.ReplaceAllStringFunc(r, func(m string) string {
			return strings.Fields(m)[0] + " [REDACTED]"
		})
		if r != v {
			ann[k] = r
			changed = true
		}
	}
	return changed
}
