package posture

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// grantedRule is one PolicyRule as it reaches a subject: the rule itself,
// where it applies (Namespace "" = cluster-wide) and the binding and role it
// came through.
type grantedRule struct {
	Verbs, APIGroups, Resources, ResourceNames, NonResourceURLs []string

	Namespace                                  string
	BindingKind, BindingNamespace, BindingName string
	RoleKind, RoleName                         string
	Default                                    bool
}

// view is the CEL form of the rule; []string values keep the Go side of
// allows() free of conversions.
func (r *grantedRule) view() map[string]any {
	return map[string]any{
		"verbs":            r.Verbs,
		"apiGroups":        r.APIGroups,
		"resources":        r.Resources,
		"resourceNames":    r.ResourceNames,
		"nonResourceURLs":  r.NonResourceURLs,
		"namespace":        r.Namespace,
		"bindingKind":      r.BindingKind,
		"bindingNamespace": r.BindingNamespace,
		"bindingName":      r.BindingName,
		"roleKind":         r.RoleKind,
		"roleName":         r.RoleName,
		"default":          r.Default,
	}
}

// allows reports whether the rule grants verb on group/resource for every
// object name, with the RBAC authorizer's wildcard semantics: "*" in verbs,
// apiGroups and resources, "*/sub" for a subresource of any resource.
// A rule limited by resourceNames does not count: it grants access to named
// objects only, and never grants create, list or watch.
func (r *grantedRule) allows(verb, group, resource string) bool {
	if len(r.ResourceNames) > 0 {
		return false
	}
	return matchesWord(r.Verbs, verb) && matchesWord(r.APIGroups, group) && matchesResource(r.Resources, resource)
}

func matchesWord(ruleWords []string, want string) bool {
	for _, w := range ruleWords {
		if w == "*" || w == want {
			return true
		}
	}
	return false
}

func matchesResource(ruleResources []string, want string) bool {
	_, sub, hasSub := strings.Cut(want, "/")
	for _, r := range ruleResources {
		if r == "*" || r == want {
			return true
		}
		if hasSub && strings.HasPrefix(r, "*/") && r[2:] == sub {
			return true
		}
	}
	return false
}

// appliesIn reports whether the rule is in force in namespace ns; ns ""
// asks for cluster-wide rules only.
func (r *grantedRule) appliesIn(ns string) bool {
	return r.Namespace == "" || r.Namespace == ns
}

func (r *grantedRule) describe(verb, resource string) string {
	scope := "cluster-wide"
	if r.Namespace != "" {
		scope = "in namespace " + r.Namespace
	}
	if r.BindingKind == "" {
		// A rule a check built itself has no binding to name.
		return fmt.Sprintf("%s %s %s", verb, resource, scope)
	}
	binding := r.BindingKind + " " + r.BindingName
	if r.BindingNamespace != "" {
		binding = r.BindingKind + " " + r.BindingNamespace + "/" + r.BindingName
	}
	return fmt.Sprintf("%s %s %s via %s -> %s %s", verb, resource, scope, binding, r.RoleKind, r.RoleName)
}

// rulesOf turns the rules argument of allows() and friends back into Go
// rules. Lists straight from a view carry the maps built by view(); lists
// a check built itself (filter, literals) go through the slow path.
func rulesOf(v ref.Val) ([]grantedRule, error) {
	if native, ok := v.Value().([]any); ok {
		out := make([]grantedRule, 0, len(native))
		for _, e := range native {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("rule is %T, want a map", e)
			}
			out = append(out, ruleFromMap(m))
		}
		return out, nil
	}
	lister, ok := v.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("rules is %s, want a list", v.Type().TypeName())
	}
	var out []grantedRule
	for it := lister.Iterator(); it.HasNext() == types.True; {
		e := it.Next()
		if m, ok := e.Value().(map[string]any); ok {
			out = append(out, ruleFromMap(m))
			continue
		}
		mapper, ok := e.(traits.Mapper)
		if !ok {
			return nil, fmt.Errorf("rule is %s, want a map", e.Type().TypeName())
		}
		m := map[string]any{}
		for mit := mapper.Iterator(); mit.HasNext() == types.True; {
			k := mit.Next()
			ks, ok := k.Value().(string)
			if !ok {
				continue
			}
			m[ks] = mapper.Get(k)
		}
		out = append(out, ruleFromMap(m))
	}
	return out, nil
}

func ruleFromMap(m map[string]any) grantedRule {
	str := func(k string) string {
		switch s := m[k].(type) {
		case string:
			return s
		case ref.Val:
			if v, ok := s.Value().(string); ok {
				return v
			}
		}
		return ""
	}
	b, _ := m["default"].(bool)
	if v, ok := m["default"].(ref.Val); ok {
		b = v == types.True
	}
	return grantedRule{
		Verbs:            stringsOf(m["verbs"]),
		APIGroups:        stringsOf(m["apiGroups"]),
		Resources:        stringsOf(m["resources"]),
		ResourceNames:    stringsOf(m["resourceNames"]),
		NonResourceURLs:  stringsOf(m["nonResourceURLs"]),
		Namespace:        str("namespace"),
		BindingKind:      str("bindingKind"),
		BindingNamespace: str("bindingNamespace"),
		BindingName:      str("bindingName"),
		RoleKind:         str("roleKind"),
		RoleName:         str("roleName"),
		Default:          b,
	}
}

func stringsOf(v any) []string {
	switch s := v.(type) {
	case []string:
		return s
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			if str, ok := e.(string); ok {
				out = append(out, str)
			}
		}
		return out
	case ref.Val:
		if native, ok := s.Value().([]string); ok {
			return native
		}
		lister, ok := s.(traits.Lister)
		if !ok {
			return nil
		}
		var out []string
		for it := lister.Iterator(); it.HasNext() == types.True; {
			if str, ok := it.Next().Value().(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}
