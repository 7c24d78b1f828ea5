package posture

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lastApplied can hold a whole manifest, Secret data included, so no view
// carries it.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// buildObjects builds the CEL activations of every target in need.
func buildObjects(in *Input, need map[string]bool) map[string][]object {
	out := map[string][]object{}
	ix := newIndex(in)
	var wls []workload
	if need[TargetWorkload] || need[TargetNamespace] || need[TargetServiceAccount] {
		wls = topLevelWorkloads(in)
	}
	if need[TargetWorkload] {
		out[TargetWorkload] = workloadObjects(wls, ix)
	}
	if need[TargetNamespace] {
		out[TargetNamespace] = namespaceObjects(in, ix, wls)
	}
	var g *grants
	if need[TargetRole] || need[TargetBinding] || need[TargetSubject] || need[TargetServiceAccount] {
		g = collectGrants(in)
	}
	if need[TargetRole] {
		out[TargetRole] = roleObjects(in)
	}
	if need[TargetBinding] {
		out[TargetBinding] = bindingObjects(in, g)
	}
	if need[TargetSubject] {
		out[TargetSubject] = subjectObjects(g)
	}
	if need[TargetServiceAccount] {
		out[TargetServiceAccount] = serviceAccountObjects(in, g, wls)
	}
	if need[TargetControlPlane] {
		out[TargetControlPlane] = controlPlaneObjects(in)
	}
	if need[TargetNode] {
		out[TargetNode] = nodeObjects(in)
	}
	return out
}

// index holds lookups shared by several targets.
type index struct {
	namespaces      map[string]map[string]any
	serviceAccounts map[string]*corev1.ServiceAccount // namespace/name
}

func newIndex(in *Input) *index {
	ix := &index{
		namespaces:      make(map[string]map[string]any, len(in.Namespaces)),
		serviceAccounts: make(map[string]*corev1.ServiceAccount, len(in.ServiceAccounts)),
	}
	for _, ns := range in.Namespaces {
		if ns == nil {
			continue
		}
		ix.namespaces[ns.Name] = metaView(&ns.ObjectMeta, "Namespace")
	}
	for _, sa := range in.ServiceAccounts {
		if sa == nil {
			continue
		}
		ix.serviceAccounts[sa.Namespace+"/"+sa.Name] = sa
	}
	return ix
}

func (ix *index) namespace(name string) map[string]any {
	if v, ok := ix.namespaces[name]; ok {
		return v
	}
	return map[string]any{"kind": "Namespace", "name": name, "namespace": "", "labels": map[string]string{}, "annotations": map[string]string{}, "exists": false}
}

// metaView is the identity part of every view.
func metaView(m *metav1.ObjectMeta, kind string) map[string]any {
	labels := m.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return map[string]any{
		"kind":        kind,
		"namespace":   m.Namespace,
		"name":        m.Name,
		"labels":      labels,
		"annotations": annotations(m.Annotations),
		"exists":      true,
	}
}

func annotations(a map[string]string) map[string]string {
	if _, ok := a[lastApplied]; !ok {
		if a == nil {
			return map[string]string{}
		}
		return a
	}
	out := make(map[string]string, len(a))
	for k, v := range a {
		if k != lastApplied {
			out[k] = v
		}
	}
	return out
}

// isDefaultRBAC reports whether an RBAC object is part of Kubernetes' own
// bootstrap policy, which the API server reconciles on every start: its name
// starts with "system:" or it carries the kubernetes.io/bootstrapping label.
func isDefaultRBAC(m *metav1.ObjectMeta) bool {
	return strings.HasPrefix(m.Name, "system:") || m.Labels["kubernetes.io/bootstrapping"] == "rbac-defaults"
}

func sortObjects(objs []object) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i].res, objs[j].res
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

func nodeObjects(in *Input) []object {
	var objs []object
	for _, nf := range in.NodeFacts {
		kubelet := nf.Kubelet
		if kubelet == nil {
			kubelet = map[string]any{}
		}
		files := make([]any, 0, len(nf.Files))
		for _, f := range nf.Files {
			files = append(files, map[string]any{"path": f.Path, "mode": int64(f.Mode), "owner": f.Owner, "group": f.Group})
		}
		objs = append(objs, newObject(Resource{Kind: "Node", Name: nf.Node}, map[string]any{
			"node":    map[string]any{"name": nf.Node},
			"kubelet": kubelet,
			"files":   files,
		}))
	}
	sortObjects(objs)
	return objs
}

func controlPlaneObjects(in *Input) []object {
	var objs []object
	for _, p := range in.Pods {
		if p == nil || p.Namespace != metav1.NamespaceSystem {
			continue
		}
		found := false
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			comp := componentOf(c.Command, c.Args)
			if comp == "" {
				continue
			}
			found = true
			objs = append(objs, controlPlaneObject(p, c, comp))
		}
		if found {
			continue
		}
		// Some distributions wrap the binary in a shell or a different
		// path; kubeadm's component label still says what runs.
		comp := p.Labels["component"]
		if componentOf([]string{comp}, nil) == "" || len(p.Spec.Containers) == 0 {
			continue
		}
		c := &p.Spec.Containers[0]
		for i := range p.Spec.Containers {
			if p.Spec.Containers[i].Name == comp {
				c = &p.Spec.Containers[i]
			}
		}
		objs = append(objs, controlPlaneObject(p, c, comp))
	}
	sortObjects(objs)
	return objs
}

func controlPlaneObject(p *corev1.Pod, c *corev1.Container, comp string) object {
	pod := metaView(&p.ObjectMeta, "Pod")
	pod["node"] = p.Spec.NodeName
	pod["container"] = c.Name
	return newObject(Resource{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}, map[string]any{
		"component": comp,
		"flags":     componentFlags(c.Command, c.Args),
		"pod":       pod,
	})
}

// roleRulesView converts PolicyRules to their CEL form.
func roleRulesView(rules []rbacv1.PolicyRule) []any {
	out := make([]any, 0, len(rules))
	for _, r := range rules {
		out = append(out, map[string]any{
			"verbs":           nonNil(r.Verbs),
			"apiGroups":       nonNil(r.APIGroups),
			"resources":       nonNil(r.Resources),
			"resourceNames":   nonNil(r.ResourceNames),
			"nonResourceURLs": nonNil(r.NonResourceURLs),
		})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
