package k8s

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Inventory is what a cluster runs at one moment, in a deterministic order.
type Inventory struct {
	Namespaces []Namespace // by name
	Workloads  []Workload  // by namespace, kind, name
}

// Namespace is one namespace of the cluster.
type Namespace struct {
	Name   string
	Labels map[string]string
}

// Workload kinds.
const (
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindCronJob     = "CronJob"
	KindJob         = "Job"
	KindPod         = "Pod"
)

// Exposure values.
const (
	ExposureLoadBalancer = "LoadBalancer"
	ExposureNodePort     = "NodePort"
	ExposureIngress      = "Ingress"
	ExposureHostNetwork  = "hostNetwork"
	ExposureHostPort     = "hostPort"
)

// Workload is the top owner of a set of pods: a Deployment (through its
// ReplicaSets), StatefulSet, DaemonSet, CronJob (through its Jobs), Job, a
// ReplicaSet no Deployment owns, a controller of another kind (named by its
// owner reference), or a bare Pod. Workloads the informers know of are
// listed even with no pods.
type Workload struct {
	Kind           string
	Namespace      string
	Name           string
	ServiceAccount string
	Pods           []Pod    // by name
	Exposure       []string // sorted, no duplicates
	HostNetwork    bool
	HostPID        bool
	HostIPC        bool
}

// Pod is one pod of a workload.
type Pod struct {
	Name       string
	Node       string
	Phase      corev1.PodPhase
	Containers []Container // init, then regular, then ephemeral; each in spec order
	// PullSecrets names the secrets (in the pod's namespace) the kubelet may
	// pull its images with: the pod's imagePullSecrets, then its service
	// account's. Names only; the connector never reads their values here.
	PullSecrets []string
}

// Container kinds.
const (
	ContainerInit      = "init"
	ContainerRegular   = "regular"
	ContainerEphemeral = "ephemeral"
)

// Container is one container of a pod.
type Container struct {
	Name        string
	Kind        string // ContainerInit, ContainerRegular or ContainerEphemeral
	Image       string
	ImageDigest string // "sha256:…" from the status imageID, or "" when unknown
	// PullReference is "registry/repository@digest" the running image can
	// be pulled by, or "" when the digest is unknown.
	PullReference string
	Privileged    bool
	RunAsNonRoot  *bool // the container's setting, else the pod's; nil when neither sets it
	Capabilities  []string
	HostPorts     []int32
}

type workloadKey struct{ kind, namespace, name string }

// Snapshot builds the inventory from the informers' caches.
func (c *Connector) Snapshot() Inventory {
	var inv Inventory
	nss, _ := c.namespaces.List(labels.Everything())
	for _, ns := range nss {
		inv.Namespaces = append(inv.Namespaces, Namespace{Name: ns.Name, Labels: maps.Clone(ns.Labels)})
	}
	slices.SortFunc(inv.Namespaces, func(a, b Namespace) int { return cmp.Compare(a.Name, b.Name) })

	workloads := map[workloadKey]*Workload{}
	add := func(kind string, m metav1.ObjectMeta, spec *corev1.PodSpec) {
		w := &Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name}
		if spec != nil {
			w.ServiceAccount = spec.ServiceAccountName
			w.HostNetwork, w.HostPID, w.HostIPC = spec.HostNetwork, spec.HostPID, spec.HostIPC
		}
		workloads[workloadKey{kind, m.Namespace, m.Name}] = w
	}
	deps, _ := c.deployments.List(labels.Everything())
	for _, d := range deps {
		add(KindDeployment, d.ObjectMeta, &d.Spec.Template.Spec)
	}
	rss, _ := c.replicaSets.List(labels.Everything())
	for _, rs := range rss {
		if metav1.GetControllerOf(rs) == nil {
			add(KindReplicaSet, rs.ObjectMeta, &rs.Spec.Template.Spec)
		}
	}
	sss, _ := c.statefulSets.List(labels.Everything())
	for _, s := range sss {
		add(KindStatefulSet, s.ObjectMeta, &s.Spec.Template.Spec)
	}
	dss, _ := c.daemonSets.List(labels.Everything())
	for _, d := range dss {
		add(KindDaemonSet, d.ObjectMeta, &d.Spec.Template.Spec)
	}
	cjs, _ := c.cronJobs.List(labels.Everything())
	for _, cj := range cjs {
		add(KindCronJob, cj.ObjectMeta, &cj.Spec.JobTemplate.Spec.Template.Spec)
	}
	jobs, _ := c.jobs.List(labels.Everything())
	for _, j := range jobs {
		if metav1.GetControllerOf(j) == nil {
			add(KindJob, j.ObjectMeta, &j.Spec.Template.Spec)
		}
	}

	exp := c.exposureIndex()
	// Pods of one workload run the same images: parse each reference once.
	pullRefs := map[[2]string]string{}
	pullRef := func(spec, imageID string) string {
		k := [2]string{spec, imageID}
		if r, ok := pullRefs[k]; ok {
			return r
		}
		r := PullReference(spec, imageID)
		pullRefs[k] = r
		return r
	}
	pods, _ := c.pods.List(labels.Everything())
	for _, p := range pods {
		key := c.topOwner(p)
		w := workloads[key]
		if w == nil {
			w = &Workload{Kind: key.kind, Namespace: key.namespace, Name: key.name}
			workloads[key] = w
		}
		if w.ServiceAccount == "" {
			w.ServiceAccount = p.Spec.ServiceAccountName
		}
		w.HostNetwork = w.HostNetwork || p.Spec.HostNetwork
		w.HostPID = w.HostPID || p.Spec.HostPID
		w.HostIPC = w.HostIPC || p.Spec.HostIPC
		pod := podOf(p, c.serviceAccountPullSecrets(p), pullRef)
		w.Pods = append(w.Pods, pod)
		w.Exposure = append(w.Exposure, exp.of(p, pod)...)
	}

	for _, w := range workloads {
		slices.SortFunc(w.Pods, func(a, b Pod) int { return cmp.Compare(a.Name, b.Name) })
		slices.Sort(w.Exposure)
		w.Exposure = slices.Compact(w.Exposure)
		inv.Workloads = append(inv.Workloads, *w)
	}
	slices.SortFunc(inv.Workloads, func(a, b Workload) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return inv
}

// topOwner follows a pod's controller references up to its workload.
func (c *Connector) topOwner(p *corev1.Pod) workloadKey {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return workloadKey{KindPod, p.Namespace, p.Name}
	}
	key := workloadKey{ref.Kind, p.Namespace, ref.Name}
	switch {
	case ref.Kind == KindReplicaSet && isGroup(ref, appsv1.GroupName):
		if rs, err := c.replicaSets.ReplicaSets(p.Namespace).Get(ref.Name); err == nil {
			if up := metav1.GetControllerOf(rs); up != nil {
				return workloadKey{up.Kind, p.Namespace, up.Name}
			}
		}
	case ref.Kind == KindJob && isGroup(ref, "batch"):
		if j, err := c.jobs.Jobs(p.Namespace).Get(ref.Name); err == nil {
			if up := metav1.GetControllerOf(j); up != nil {
				return workloadKey{up.Kind, p.Namespace, up.Name}
			}
		}
	}
	return key
}

func isGroup(ref *metav1.OwnerReference, group string) bool {
	g, _, _ := strings.Cut(ref.APIVersion, "/")
	return strings.Contains(ref.APIVersion, "/") && g == group
}

// serviceAccountPullSecrets returns the imagePullSecrets of the pod's
// service account.
func (c *Connector) serviceAccountPullSecrets(p *corev1.Pod) []corev1.LocalObjectReference {
	name := p.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	sa, err := c.serviceAccounts.ServiceAccounts(p.Namespace).Get(name)
	if err != nil {
		return nil
	}
	return sa.ImagePullSecrets
}

func podOf(p *corev1.Pod, saPullSecrets []corev1.LocalObjectReference, pullRef func(spec, imageID string) string) Pod {
	pod := Pod{Name: p.Name, Node: p.Spec.NodeName, Phase: p.Status.Phase}
	for _, refs := range [][]corev1.LocalObjectReference{p.Spec.ImagePullSecrets, saPullSecrets} {
		for _, r := range refs {
			if r.Name != "" && !slices.Contains(pod.PullSecrets, r.Name) {
				pod.PullSecrets = append(pod.PullSecrets, r.Name)
			}
		}
	}
	var podNonRoot *bool
	if p.Spec.SecurityContext != nil {
		podNonRoot = p.Spec.SecurityContext.RunAsNonRoot
	}
	imageIDs := map[string]string{}
	for _, statuses := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for _, s := range statuses {
			imageIDs[s.Name] = s.ImageID
		}
	}
	addContainer := func(kind string, ctr *corev1.Container) {
		out := Container{
			Name: ctr.Name, Kind: kind, Image: ctr.Image,
			ImageDigest:  ImageDigest(imageIDs[ctr.Name]),
			RunAsNonRoot: podNonRoot,
		}
		out.PullReference = pullRef(ctr.Image, imageIDs[ctr.Name])
		if sc := ctr.SecurityContext; sc != nil {
			out.Privileged = sc.Privileged != nil && *sc.Privileged
			if sc.RunAsNonRoot != nil {
				out.RunAsNonRoot = sc.RunAsNonRoot
			}
			if sc.Capabilities != nil {
				for _, cp := range sc.Capabilities.Add {
					out.Capabilities = append(out.Capabilities, string(cp))
				}
			}
		}
		if out.RunAsNonRoot != nil {
			v := *out.RunAsNonRoot
			out.RunAsNonRoot = &v // never alias the cache
		}
		for _, port := range ctr.Ports {
			if port.HostPort != 0 {
				out.HostPorts = append(out.HostPorts, port.HostPort)
			}
		}
		pod.Containers = append(pod.Containers, out)
	}
	for i := range p.Spec.InitContainers {
		addContainer(ContainerInit, &p.Spec.InitContainers[i])
	}
	for i := range p.Spec.Containers {
		addContainer(ContainerRegular, &p.Spec.Containers[i])
	}
	for i := range p.Spec.EphemeralContainers {
		ec := corev1.Container(p.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		addContainer(ContainerEphemeral, &ec)
	}
	return pod
}

// exposureIndex holds, per namespace, the services and the services that
// ingresses route to.
type exposureIndex struct {
	services  map[string][]*corev1.Service
	ingressed map[string]map[string]bool // namespace → service name
}

func (c *Connector) exposureIndex() exposureIndex {
	x := exposureIndex{services: map[string][]*corev1.Service{}, ingressed: map[string]map[string]bool{}}
	svcs, _ := c.services.List(labels.Everything())
	for _, s := range svcs {
		if len(s.Spec.Selector) > 0 {
			x.services[s.Namespace] = append(x.services[s.Namespace], s)
		}
	}
	ings, _ := c.ingresses.List(labels.Everything())
	for _, ing := range ings {
		mark := func(b *networkingv1.IngressBackend) {
			if b != nil && b.Service != nil && b.Service.Name != "" {
				if x.ingressed[ing.Namespace] == nil {
					x.ingressed[ing.Namespace] = map[string]bool{}
				}
				x.ingressed[ing.Namespace][b.Service.Name] = true
			}
		}
		mark(ing.Spec.DefaultBackend)
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for i := range r.HTTP.Paths {
				mark(&r.HTTP.Paths[i].Backend)
			}
		}
	}
	return x
}

// of is how pod p (pod being its inventory entry) is reachable from outside
// the cluster: through LoadBalancer or NodePort services selecting it, an
// ingress routing to any service selecting it, the host's network or host
// ports.
func (x exposureIndex) of(p *corev1.Pod, pod Pod) []string {
	var out []string
	podLabels := labels.Set(p.Labels)
	for _, s := range x.services[p.Namespace] {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			continue
		}
		switch s.Spec.Type {
		case corev1.ServiceTypeLoadBalancer:
			out = append(out, ExposureLoadBalancer)
		case corev1.ServiceTypeNodePort:
			out = append(out, ExposureNodePort)
		}
		if x.ingressed[p.Namespace][s.Name] {
			out = append(out, ExposureIngress)
		}
	}
	if p.Spec.HostNetwork {
		out = append(out, ExposureHostNetwork)
	}
	for _, ctr := range pod.Containers {
		if len(ctr.HostPorts) > 0 {
			out = append(out, ExposureHostPort)
			break
		}
	}
	return out
}

// ImageDigest extracts the content digest from a container status imageID,
// such as "docker-pullable://registry/app@sha256:…", "registry/app@sha256:…",
// "docker://sha256:…" or "sha256:…". It returns "" unless the result is a
// well-formed sha256 or sha512 digest (lowercase hex of the right length).
func ImageDigest(imageID string) string {
	s := imageID
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+len("://"):]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	alg, hex, ok := strings.Cut(s, ":")
	if !ok {
		return ""
	}
	var n int
	switch alg {
	case "sha256":
		n = 64
	case "sha512":
		n = 128
	default:
		return ""
	}
	if len(hex) != n {
		return ""
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return s
}

// PullReference returns the "registry/repository@digest" a container's
// running image can be pulled by: the repository the runtime reported in
// imageID when it names one ("registry/app@sha256:…"), else the repository
// of the image the spec asked for. It returns "" when imageID holds no
// digest, or when it holds only an image ID ("docker://sha256:…", bare
// "sha256:…") — the digest of a local image configuration, which no
// registry serves.
func PullReference(specImage, imageID string) string {
	digest := ImageDigest(imageID)
	if digest == "" {
		return ""
	}
	s := imageID
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+len("://"):]
	}
	repo, _, ok := strings.Cut(s, "@")
	if !ok {
		return ""
	}
	if repo == "" {
		repo = imageRepository(specImage)
	}
	ref, err := name.NewDigest(repo + "@" + digest)
	if err != nil {
		return ""
	}
	return ref.Context().Name() + "@" + digest
}

// imageRepository strips the tag and digest from an image reference.
func imageRepository(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	// A colon after the last slash starts a tag; one before it is a port.
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	return image
}
