package posture

import (
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// workload is one pod-template owner at its top level.
type workload struct {
	kind     string
	meta     *metav1.ObjectMeta
	template *metav1.ObjectMeta
	spec     *corev1.PodSpec
}

func (w *workload) resource() Resource {
	return Resource{Kind: w.kind, Namespace: w.meta.Namespace, Name: w.meta.Name}
}

// topLevelWorkloads finds every pod-template owner that no other object of
// the Input controls. Pods, ReplicaSets and Jobs under a controller that is
// present are judged through it; under a controller that is absent (a
// custom resource, a Node for mirror pods) they are judged themselves, as
// nothing else would judge them.
func topLevelWorkloads(in *Input) []workload {
	present := map[string]bool{}
	mark := func(kind string, m *metav1.ObjectMeta) { present[kind+"/"+m.Namespace+"/"+m.Name] = true }
	for _, o := range in.Deployments {
		if o != nil {
			mark("Deployment", &o.ObjectMeta)
		}
	}
	for _, o := range in.ReplicaSets {
		if o != nil {
			mark("ReplicaSet", &o.ObjectMeta)
		}
	}
	for _, o := range in.StatefulSets {
		if o != nil {
			mark("StatefulSet", &o.ObjectMeta)
		}
	}
	for _, o := range in.DaemonSets {
		if o != nil {
			mark("DaemonSet", &o.ObjectMeta)
		}
	}
	for _, o := range in.Jobs {
		if o != nil {
			mark("Job", &o.ObjectMeta)
		}
	}
	for _, o := range in.CronJobs {
		if o != nil {
			mark("CronJob", &o.ObjectMeta)
		}
	}
	controlled := func(m *metav1.ObjectMeta) bool {
		ref := metav1.GetControllerOfNoCopy(m)
		return ref != nil && present[ref.Kind+"/"+m.Namespace+"/"+ref.Name]
	}

	var out []workload
	add := func(kind string, m, tmpl *metav1.ObjectMeta, spec *corev1.PodSpec) {
		if !controlled(m) {
			out = append(out, workload{kind: kind, meta: m, template: tmpl, spec: spec})
		}
	}
	for _, o := range in.Deployments {
		if o != nil {
			add("Deployment", &o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec)
		}
	}
	for _, o := range in.StatefulSets {
		if o != nil {
			add("StatefulSet", &o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec)
		}
	}
	for _, o := range in.DaemonSets {
		if o != nil {
			add("DaemonSet", &o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec)
		}
	}
	for _, o := range in.CronJobs {
		if o != nil {
			t := &o.Spec.JobTemplate.Spec.Template
			add("CronJob", &o.ObjectMeta, &t.ObjectMeta, &t.Spec)
		}
	}
	for _, o := range in.Jobs {
		if o != nil {
			add("Job", &o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec)
		}
	}
	for _, o := range in.ReplicaSets {
		if o != nil {
			add("ReplicaSet", &o.ObjectMeta, &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec)
		}
	}
	for _, o := range in.Pods {
		if o != nil {
			add("Pod", &o.ObjectMeta, &o.ObjectMeta, &o.Spec)
		}
	}
	return out
}

// isMirror reports whether the workload is the API's copy of a static pod,
// which the kubelet runs without a service account token.
func (w *workload) isMirror() bool {
	if w.kind != "Pod" {
		return false
	}
	ref := metav1.GetControllerOfNoCopy(w.meta)
	return ref != nil && ref.Kind == "Node"
}

// mountsToken reports whether the workload's pods get a service account
// token: the pod spec decides, then the service account, then the default
// (yes).
func (w *workload) mountsToken(sa *corev1.ServiceAccount) bool {
	switch {
	case w.isMirror():
		return false
	case w.spec.AutomountServiceAccountToken != nil:
		return *w.spec.AutomountServiceAccountToken
	case sa != nil && sa.AutomountServiceAccountToken != nil:
		return *sa.AutomountServiceAccountToken
	}
	return true
}

func serviceAccountName(spec *corev1.PodSpec) string {
	switch {
	case spec.ServiceAccountName != "":
		return spec.ServiceAccountName
	case spec.DeprecatedServiceAccount != "":
		return spec.DeprecatedServiceAccount
	}
	return "default"
}

func workloadObjects(wls []workload, ix *index) []object {
	saViews := map[string]map[string]any{}
	saView := func(ns, name string) map[string]any {
		key := ns + "/" + name
		if v, ok := saViews[key]; ok {
			return v
		}
		var v map[string]any
		if sa := ix.serviceAccounts[key]; sa != nil {
			v = serviceAccountView(sa)
		} else {
			v = map[string]any{"kind": "ServiceAccount", "namespace": ns, "name": name, "labels": map[string]string{}, "annotations": map[string]string{}, "exists": false}
		}
		saViews[key] = v
		return v
	}
	objs := make([]object, 0, len(wls))
	for i := range wls {
		w := &wls[i]
		spec, containers := podSpecView(w.spec)
		wv := metaView(w.meta, w.kind)
		wv["mirror"] = w.isMirror()
		wv["mountsToken"] = w.mountsToken(ix.serviceAccounts[w.meta.Namespace+"/"+serviceAccountName(w.spec)])
		objs = append(objs, newObject(w.resource(), map[string]any{
			"workload": toVal(wv),
			"template": toVal(map[string]any{
				"labels":      nonNilMap(w.template.Labels),
				"annotations": annotations(w.template.Annotations),
			}),
			"spec":           spec,
			"containers":     containers,
			"ns":             ix.namespace(w.meta.Namespace),
			"serviceAccount": saView(w.meta.Namespace, serviceAccountName(w.spec)),
		}))
	}
	sortObjects(objs)
	return objs
}

func serviceAccountView(sa *corev1.ServiceAccount) map[string]any {
	v := metaView(&sa.ObjectMeta, "ServiceAccount")
	if sa.AutomountServiceAccountToken != nil {
		v["automountServiceAccountToken"] = *sa.AutomountServiceAccountToken
	}
	return v
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// podSpecView converts a PodSpec to its JSON form, with env values removed,
// and lists all its containers with their kind ("initContainer",
// "container", "ephemeralContainer").
func podSpecView(ps *corev1.PodSpec) (spec ref.Val, containers ref.Val) {
	// The containers are converted once, below, with their kind.
	m := structVal(reflect.ValueOf(ps).Elem(), "initContainers", "containers", "ephemeralContainers")
	var all []ref.Val
	convert := func(kind string, c reflect.Value) ref.Val {
		cm := structVal(c)
		cm.set("kind", types.String(kind))
		scrubEnv(cm)
		all = append(all, cm)
		return cm
	}
	list := func(field, kind string, n int, at func(int) reflect.Value) {
		if n == 0 {
			return
		}
		l := make([]ref.Val, n)
		for i := range l {
			l[i] = convert(kind, at(i))
		}
		m.set(field, types.NewRefValList(types.DefaultTypeAdapter, l))
	}
	list("initContainers", "initContainer", len(ps.InitContainers), func(i int) reflect.Value { return reflect.ValueOf(&ps.InitContainers[i]).Elem() })
	list("containers", "container", len(ps.Containers), func(i int) reflect.Value { return reflect.ValueOf(&ps.Containers[i]).Elem() })
	list("ephemeralContainers", "ephemeralContainer", len(ps.EphemeralContainers), func(i int) reflect.Value { return reflect.ValueOf(&ps.EphemeralContainers[i]).Elem() })
	if all == nil {
		all = []ref.Val{}
	}
	return m, types.NewRefValList(types.DefaultTypeAdapter, all)
}

// scrubEnv replaces literal env values by hasValue, so that no check, built
// in or not, can copy a credential into evidence.
func scrubEnv(c *fieldMap) {
	v, ok := c.lookup("env")
	if !ok {
		return
	}
	env, ok := v.(traits.Lister)
	if !ok {
		return
	}
	for it := env.Iterator(); it.HasNext() == types.True; {
		if em, ok := it.Next().(*fieldMap); ok {
			if _, has := em.lookup("value"); has {
				em.remove("value")
				em.set("hasValue", types.True)
			}
		}
	}
}

func namespaceObjects(in *Input, ix *index, wls []workload) []object {
	type counts struct {
		pods, workloads, services, secrets, configMaps int64
		serviceAccounts                                []string
		policies                                       []any
	}
	byNS := map[string]*counts{}
	get := func(ns string) *counts {
		c := byNS[ns]
		if c == nil {
			c = &counts{}
			byNS[ns] = c
		}
		return c
	}
	for _, p := range in.Pods {
		if p != nil {
			get(p.Namespace).pods++
		}
	}
	for i := range wls {
		get(wls[i].meta.Namespace).workloads++
	}
	for _, s := range in.Services {
		if s != nil {
			get(s.Namespace).services++
		}
	}
	for _, s := range in.Secrets {
		if s != nil {
			get(s.Namespace).secrets++
		}
	}
	for _, s := range in.ConfigMaps {
		if s != nil {
			get(s.Namespace).configMaps++
		}
	}
	for _, sa := range in.ServiceAccounts {
		if sa != nil {
			c := get(sa.Namespace)
			c.serviceAccounts = append(c.serviceAccounts, sa.Name)
		}
	}
	for _, np := range in.NetworkPolicies {
		if np == nil {
			continue
		}
		types := make([]string, 0, len(np.Spec.PolicyTypes))
		for _, t := range np.Spec.PolicyTypes {
			types = append(types, string(t))
		}
		c := get(np.Namespace)
		c.policies = append(c.policies, map[string]any{
			"name":        np.Name,
			"policyTypes": types,
			"podSelector": valueToVal(reflect.ValueOf(&np.Spec.PodSelector)),
		})
	}
	var objs []object
	for _, ns := range in.Namespaces {
		if ns == nil {
			continue
		}
		c := get(ns.Name)
		policies := c.policies
		if policies == nil {
			policies = []any{}
		}
		objs = append(objs, newObject(Resource{Kind: "Namespace", Name: ns.Name}, map[string]any{
			"ns":              ix.namespace(ns.Name),
			"networkPolicies": policies,
			"pods":            c.pods,
			"workloads":       c.workloads,
			"serviceAccounts": nonNil(c.serviceAccounts),
			"services":        c.services,
			"secrets":         c.secrets,
			"configMaps":      c.configMaps,
		}))
	}
	sortObjects(objs)
	return objs
}
