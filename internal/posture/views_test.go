package posture

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestViewsCarryNoSecretValues: no check, even one written to leak, can see
// a literal env value or the last-applied-configuration annotation.
func TestViewsCarryNoSecretValues(t *testing.T) {
	in := cleanInput()
	webContainer(in).Env = []corev1.EnvVar{{Name: "API_TOKEN", Value: "hunter2"}}
	in.Deployments[0].Annotations = map[string]string{lastApplied: `{"env":"hunter2"}`, "team": "a"}
	in.Secrets = []*metav1.PartialObjectMetadata{{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "db", Annotations: map[string]string{lastApplied: "hunter2"}}}}
	leak := userCheck("LEAK", "workload", `containers.map(c, c.?env.orValue([]).map(e, e.name + "=" + e.?value.orValue("<none>") + " hasValue=" + string(e.hasValue))).flatten() + workload.annotations.map(k, k)`)
	e, err := Compile([]Check{leak})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := []Finding{{CheckID: "LEAK", Title: "t", Severity: "LOW", Resource: web, Evidence: []string{"API_TOKEN=<none> hasValue=true", "team"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestWorkloadTopLevel: pods and ReplicaSets under a controller present in
// the Input are judged through it; orphans and pods of absent controllers
// are judged themselves.
func TestWorkloadTopLevel(t *testing.T) {
	in := cleanInput()
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "orphan"}, Spec: *webSpec(in)}
	custom := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "rollout-x", OwnerReferences: controllerRef("Rollout", "x")}, Spec: *webSpec(in)}
	missingRS := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "gone-1", OwnerReferences: controllerRef("ReplicaSet", "gone")}, Spec: *webSpec(in)}
	in.Pods = append(in.Pods, orphan, custom, missingRS)
	e, err := Compile([]Check{userCheck("ALL", "workload", `true`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var res []Resource
	for _, f := range got {
		res = append(res, f.Resource)
	}
	pod := func(ns, name string) Resource { return Resource{Kind: "Pod", Namespace: ns, Name: name} }
	want := []Resource{
		web,
		pod("app", "gone-1"),
		pod("app", "orphan"),
		pod("app", "rollout-x"),
		pod("kube-system", "etcd-cp1"),
		pod("kube-system", "kube-apiserver-cp1"),
		pod("kube-system", "kube-controller-manager-cp1"),
		pod("kube-system", "kube-scheduler-cp1"),
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
}

func TestControlPlaneByLabel(t *testing.T) {
	in := &Input{Pods: []*corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "apiserver-wrapped", Labels: map[string]string{"component": "kube-apiserver"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "proxy", Command: []string{"envoy"}},
			{Name: "kube-apiserver", Command: []string{"/bin/launcher"}, Args: []string{"--profiling=false", "--anonymous-auth", "false"}},
		}},
	}}}
	e, err := Compile([]Check{userCheck("CP", "controlplane", `[component, pod.container, flags["profiling"], flags["anonymous-auth"]]`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.Evaluate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	if diff := cmp.Diff([]string{"kube-apiserver", "kube-apiserver", "false", "false"}, got[0].Evidence); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
