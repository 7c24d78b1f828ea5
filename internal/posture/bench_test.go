package posture

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// realisticContainer is a container as typical manifests write it: env,
// mounts, probes-free but with resources and ports.
func realisticContainer(name string, i int) corev1.Container {
	c := hardenedContainer(name)
	if i%7 == 0 {
		c.SecurityContext = nil // one in seven without any hardening
	}
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	c.Env = []corev1.EnvVar{
		{Name: "MODE", Value: "production"},
		{Name: "LOG_LEVEL", Value: "info"},
		{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
	}
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}}
	return c
}

func realisticPodSpec(i int) corev1.PodSpec {
	spec := hardenedPodSpec(fmt.Sprintf("sa-%d", i%5), realisticContainer("app", i), realisticContainer("sidecar", i+1))
	if i%11 == 0 {
		spec.HostNetwork = true
		spec.Volumes = append(spec.Volumes, hostPathVolume)
	}
	return spec
}

// benchInput builds a cluster of pods spread over 100 namespaces. With
// bare, every pod is its own workload (the worst case); otherwise pods
// belong to ReplicaSets of Deployments with 10 replicas each.
func benchInput(pods int, bare bool) *Input {
	in := &Input{}
	const namespaces = 100
	for n := 0; n < namespaces; n++ {
		ns := fmt.Sprintf("team-%d", n)
		in.Namespaces = append(in.Namespaces, namespace(ns, map[string]string{"team": ns}))
		for s := 0; s < 5; s++ {
			in.ServiceAccounts = append(in.ServiceAccounts, sa(ns, fmt.Sprintf("sa-%d", s), nil))
		}
		in.ServiceAccounts = append(in.ServiceAccounts, sa(ns, "default", nil))
	}
	if bare {
		for i := 0; i < pods; i++ {
			ns := fmt.Sprintf("team-%d", i%namespaces)
			in.Pods = append(in.Pods, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("pod-%d", i), Labels: map[string]string{"app": "x"}},
				Spec:       realisticPodSpec(i),
			})
		}
	} else {
		const replicas = 10
		for d := 0; d < pods/replicas; d++ {
			ns := fmt.Sprintf("team-%d", d%namespaces)
			dep := deployment(ns, fmt.Sprintf("app-%d", d), realisticPodSpec(d))
			rs := &appsv1.ReplicaSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: dep.Name + "-abc", OwnerReferences: controllerRef("Deployment", dep.Name)},
				Spec:       appsv1.ReplicaSetSpec{Template: dep.Spec.Template},
			}
			in.Deployments = append(in.Deployments, dep)
			in.ReplicaSets = append(in.ReplicaSets, rs)
			for r := 0; r < replicas; r++ {
				in.Pods = append(in.Pods, &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", rs.Name, r), OwnerReferences: controllerRef("ReplicaSet", rs.Name)},
					Spec:       dep.Spec.Template.Spec,
				})
			}
		}
	}
	// 300 roles: 100 ClusterRoles, 200 Roles, and 2,000 bindings.
	verbs := [][]string{{"get", "list", "watch"}, {"create", "update", "patch", "delete"}, {"*"}}
	resources := [][]string{{"pods", "services"}, {"secrets"}, {"deployments", "statefulsets"}, {"pods/exec"}, {"configmaps"}}
	for r := 0; r < 100; r++ {
		in.ClusterRoles = append(in.ClusterRoles, clusterRole(fmt.Sprintf("cr-%d", r), nil,
			rule(verbs[r%3], []string{"", "apps"}, resources[r%5]),
			rule([]string{"get"}, []string{""}, []string{"namespaces"})))
	}
	for r := 0; r < 200; r++ {
		in.Roles = append(in.Roles, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%d", r%namespaces), Name: fmt.Sprintf("role-%d", r)},
			Rules:      []rbacv1.PolicyRule{rule(verbs[r%3], []string{""}, resources[r%5])},
		})
	}
	for b := 0; b < 2000; b++ {
		ns := fmt.Sprintf("team-%d", b%namespaces)
		subj := serviceAccount(ns, fmt.Sprintf("sa-%d", b%5))
		if b%4 == 0 {
			subj = user(fmt.Sprintf("user-%d", b%150))
		}
		switch {
		case b%20 == 0:
			in.ClusterRoleBindings = append(in.ClusterRoleBindings, clusterRoleBinding(fmt.Sprintf("crb-%d", b), fmt.Sprintf("cr-%d", b%100), subj))
		case b%2 == 0:
			in.RoleBindings = append(in.RoleBindings, roleBinding(ns, fmt.Sprintf("rb-%d", b), "ClusterRole", fmt.Sprintf("cr-%d", b%100), subj))
		default:
			in.RoleBindings = append(in.RoleBindings, roleBinding(ns, fmt.Sprintf("rb-%d", b), "Role", fmt.Sprintf("role-%d", b%200), subj))
		}
	}
	return in
}

func BenchmarkEvaluate(b *testing.B) {
	e := builtinEngine(b)
	for _, bc := range []struct {
		name string
		in   *Input
	}{
		{"deployments", benchInput(10_000, false)},
		{"bare-pods", benchInput(10_000, true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var findings int
			for b.Loop() {
				got, err := e.Evaluate(context.Background(), bc.in)
				if err != nil {
					b.Fatal(err)
				}
				findings = len(got)
			}
			b.ReportMetric(float64(findings), "findings")
		})
	}
}
