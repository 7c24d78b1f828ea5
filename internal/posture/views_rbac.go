package posture

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// grants is the RBAC graph: which subject gets which rules through which
// binding.
type grants struct {
	roles    map[string][]rbacv1.PolicyRule // "ClusterRole//name", "Role/ns/name"
	subjects map[string]*subjectGrants      // "Kind/ns/name"
	order    []string                       // subject keys in first-seen order
}

type subjectGrants struct {
	res      Resource
	rules    []*grantedRule
	bindings []any
}

func roleKey(kind, ns, name string) string {
	if kind == "ClusterRole" {
		ns = ""
	}
	return kind + "/" + ns + "/" + name
}

func subjectKey(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

// collectGrants resolves every binding. ClusterRoles are taken with the
// rules the API reports, which already include aggregated ones; a binding to
// a missing role grants nothing.
func collectGrants(in *Input) *grants {
	g := &grants{roles: map[string][]rbacv1.PolicyRule{}, subjects: map[string]*subjectGrants{}}
	for _, r := range in.Roles {
		if r != nil {
			g.roles[roleKey("Role", r.Namespace, r.Name)] = r.Rules
		}
	}
	for _, r := range in.ClusterRoles {
		if r != nil {
			g.roles[roleKey("ClusterRole", "", r.Name)] = r.Rules
		}
	}
	for _, b := range in.ClusterRoleBindings {
		if b != nil {
			g.bind("ClusterRoleBinding", &b.ObjectMeta, b.RoleRef, b.Subjects)
		}
	}
	for _, b := range in.RoleBindings {
		if b != nil {
			g.bind("RoleBinding", &b.ObjectMeta, b.RoleRef, b.Subjects)
		}
	}
	return g
}

func (g *grants) bind(kind string, m *metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
	scope := ""
	if kind == "RoleBinding" {
		scope = m.Namespace
	}
	rules, exists := g.roles[roleKey(ref.Kind, m.Namespace, ref.Name)]
	def := isDefaultRBAC(m)
	bindingView := map[string]any{
		"kind":       kind,
		"namespace":  m.Namespace,
		"name":       m.Name,
		"roleKind":   ref.Kind,
		"roleName":   ref.Name,
		"roleExists": exists,
		"default":    def,
	}
	granted := make([]*grantedRule, 0, len(rules))
	for _, r := range rules {
		granted = append(granted, &grantedRule{
			Verbs: nonNil(r.Verbs), APIGroups: nonNil(r.APIGroups), Resources: nonNil(r.Resources),
			ResourceNames: nonNil(r.ResourceNames), NonResourceURLs: nonNil(r.NonResourceURLs),
			Namespace:   scope,
			BindingKind: kind, BindingNamespace: m.Namespace, BindingName: m.Name,
			RoleKind: ref.Kind, RoleName: ref.Name,
			Default: def,
		})
	}
	for _, s := range subjects {
		ns := ""
		if s.Kind == rbacv1.ServiceAccountKind {
			ns = s.Namespace
			if ns == "" {
				ns = m.Namespace
			}
		}
		key := subjectKey(s.Kind, ns, s.Name)
		sg := g.subjects[key]
		if sg == nil {
			sg = &subjectGrants{res: Resource{Kind: s.Kind, Namespace: ns, Name: s.Name}}
			g.subjects[key] = sg
			g.order = append(g.order, key)
		}
		sg.rules = append(sg.rules, granted...)
		sg.bindings = append(sg.bindings, bindingView)
	}
}

// ruleViews returns all rules and the ones not granted through a default
// (bootstrap) binding.
func ruleViews(sg *subjectGrants) (all, nonDefault []any) {
	all, nonDefault = []any{}, []any{}
	if sg == nil {
		return all, nonDefault
	}
	views := map[*grantedRule]map[string]any{}
	for _, r := range sg.rules {
		v, ok := views[r]
		if !ok {
			v = r.view()
			views[r] = v
		}
		all = append(all, v)
		if !r.Default {
			nonDefault = append(nonDefault, v)
		}
	}
	return all, nonDefault
}

func subjectObjects(g *grants) []object {
	objs := make([]object, 0, len(g.order))
	for _, key := range g.order {
		sg := g.subjects[key]
		all, nonDefault := ruleViews(sg)
		objs = append(objs, newObject(sg.res, map[string]any{
			"subject":         map[string]any{"kind": sg.res.Kind, "namespace": sg.res.Namespace, "name": sg.res.Name},
			"rules":           all,
			"nonDefaultRules": nonDefault,
			"bindings":        sg.bindings,
		}))
	}
	sortObjects(objs)
	return objs
}

func serviceAccountObjects(in *Input, g *grants, wls []workload) []object {
	saByKey := make(map[string]*corev1.ServiceAccount, len(in.ServiceAccounts))
	for _, sa := range in.ServiceAccounts {
		if sa != nil {
			saByKey[sa.Namespace+"/"+sa.Name] = sa
		}
	}
	users := map[string][]any{}
	for i := range wls {
		w := &wls[i]
		key := w.meta.Namespace + "/" + serviceAccountName(w.spec)
		users[key] = append(users[key], map[string]any{
			"kind": w.kind, "namespace": w.meta.Namespace, "name": w.meta.Name,
			"mountsToken": w.mountsToken(saByKey[key]),
		})
	}
	var objs []object
	for _, sa := range in.ServiceAccounts {
		if sa == nil {
			continue
		}
		sg := g.subjects[subjectKey(rbacv1.ServiceAccountKind, sa.Namespace, sa.Name)]
		all, nonDefault := ruleViews(sg)
		bindings := []any{}
		if sg != nil {
			bindings = sg.bindings
		}
		wl := users[sa.Namespace+"/"+sa.Name]
		if wl == nil {
			wl = []any{}
		}
		objs = append(objs, newObject(Resource{Kind: "ServiceAccount", Namespace: sa.Namespace, Name: sa.Name}, map[string]any{
			"serviceAccount":  serviceAccountView(sa),
			"rules":           all,
			"nonDefaultRules": nonDefault,
			"bindings":        bindings,
			"workloads":       wl,
		}))
	}
	sortObjects(objs)
	return objs
}

func roleObjects(in *Input) []object {
	var objs []object
	add := func(kind string, m *metav1.ObjectMeta, rules []rbacv1.PolicyRule, aggregated bool) {
		v := metaView(m, kind)
		v["default"] = isDefaultRBAC(m)
		v["aggregated"] = aggregated
		objs = append(objs, newObject(Resource{Kind: kind, Namespace: m.Namespace, Name: m.Name}, map[string]any{
			"role":  v,
			"rules": roleRulesView(rules),
		}))
	}
	for _, r := range in.Roles {
		if r != nil {
			add("Role", &r.ObjectMeta, r.Rules, false)
		}
	}
	for _, r := range in.ClusterRoles {
		if r != nil {
			add("ClusterRole", &r.ObjectMeta, r.Rules, r.AggregationRule != nil)
		}
	}
	sortObjects(objs)
	return objs
}

func bindingObjects(in *Input, g *grants) []object {
	var objs []object
	add := func(kind string, m *metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		v := metaView(m, kind)
		v["default"] = isDefaultRBAC(m)
		rules, exists := g.roles[roleKey(ref.Kind, m.Namespace, ref.Name)]
		subs := make([]any, 0, len(subjects))
		for _, s := range subjects {
			subs = append(subs, map[string]any{"kind": s.Kind, "name": s.Name, "namespace": s.Namespace, "apiGroup": s.APIGroup})
		}
		objs = append(objs, newObject(Resource{Kind: kind, Namespace: m.Namespace, Name: m.Name}, map[string]any{
			"binding":    v,
			"roleRef":    map[string]any{"kind": ref.Kind, "name": ref.Name, "apiGroup": ref.APIGroup},
			"subjects":   subs,
			"roleExists": exists,
			"roleRules":  roleRulesView(rules),
		}))
	}
	for _, b := range in.ClusterRoleBindings {
		if b != nil {
			add("ClusterRoleBinding", &b.ObjectMeta, b.RoleRef, b.Subjects)
		}
	}
	for _, b := range in.RoleBindings {
		if b != nil {
			add("RoleBinding", &b.ObjectMeta, b.RoleRef, b.Subjects)
		}
	}
	sortObjects(objs)
	return objs
}
