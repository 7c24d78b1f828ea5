package k8s

import (
	"fmt"
	"runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// benchPod is a pod as a Deployment's ReplicaSet makes it, with what the
// API returns for it: labels, annotations, owner, two containers with
// resources, env and probes, volumes and a full status.
func benchPod(ns string, i int) *corev1.Pod {
	rs := fmt.Sprintf("app-%d-5d9f8c7b6", i/10)
	ctr := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: fmt.Sprintf("registry.example/team/%s:1.%d", name, i%7),
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			Env:   []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG_LEVEL", Value: "info"}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%05d", rs, i), Namespace: ns, UID: types.UID(fmt.Sprintf("uid-%d", i)),
			Labels:          map[string]string{"app": fmt.Sprintf("app-%d", i/10), "pod-template-hash": "5d9f8c7b6"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, Controller: ptr(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName: fmt.Sprintf("node-%d", i%50), ServiceAccountName: "default",
			Containers: []corev1.Container{ctr("app"), ctr("sidecar")},
			Volumes:    []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "192.168.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Ready: true, ImageID: "registry.example/team/app@sha256:" + fmt.Sprintf("%064x", i%7)},
				{Name: "sidecar", Ready: true, ImageID: "registry.example/team/sidecar@sha256:" + fmt.Sprintf("%064x", i%7)},
			},
		},
	}
}

// benchConnector is a Connector over plain indexers holding n pods in
// n/10 Deployments (through their ReplicaSets), as the informers would.
func benchConnector(n int) *Connector {
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	pods, rss, deps, empty := idx(), idx(), idx(), idx()
	for i := range n {
		ns := fmt.Sprintf("team-%d", (i/10)%20)
		p, _ := stripObject(benchPod(ns, i))
		_ = pods.Add(p)
		if i%10 == 0 {
			dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i/10), Namespace: ns}}
			_ = deps.Add(dep)
			_ = rss.Add(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d-5d9f8c7b6", i/10), Namespace: ns,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, Controller: ptr(true)}}}})
		}
	}
	return &Connector{
		namespaces: corelisters.NewNamespaceLister(empty), pods: corelisters.NewPodLister(pods),
		services: corelisters.NewServiceLister(empty), deployments: appslisters.NewDeploymentLister(deps),
		replicaSets: appslisters.NewReplicaSetLister(rss), statefulSets: appslisters.NewStatefulSetLister(empty),
		daemonSets: appslisters.NewDaemonSetLister(empty), jobs: batchlisters.NewJobLister(empty),
		cronJobs: batchlisters.NewCronJobLister(empty), ingresses: networkinglisters.NewIngressLister(empty),
		serviceAccounts: corelisters.NewServiceAccountLister(empty),
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkInventoryMemory reports the heap the cached objects of 1,000
// pods (and their owners) take, and what a snapshot of them takes.
func BenchmarkInventoryMemory(b *testing.B) {
	for b.Loop() {
		before := heapInUse()
		c := benchConnector(1000)
		cached := heapInUse()
		inv := c.Snapshot()
		after := heapInUse()
		b.ReportMetric(float64(cached-before), "cache-bytes/1000pods")
		b.ReportMetric(float64(after-cached), "snapshot-bytes/1000pods")
		runtime.KeepAlive(c)
		runtime.KeepAlive(inv)
	}
}

// BenchmarkSnapshot times an inventory snapshot of 10,000 pods.
func BenchmarkSnapshot(b *testing.B) {
	c := benchConnector(10000)
	b.ReportAllocs()
	for b.Loop() {
		if inv := c.Snapshot(); len(inv.Workloads) != 1000 {
			b.Fatalf("%d workloads", len(inv.Workloads))
		}
	}
}
