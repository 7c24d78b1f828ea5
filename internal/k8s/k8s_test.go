package k8s

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// connectorRBAC reads deploy/rbac/connector-clusterrole.yaml: a
// ClusterRole, a ServiceAccount and a ClusterRoleBinding, in that order.
func connectorRBAC(t *testing.T) (*rbacv1.ClusterRole, *corev1.ServiceAccount, *rbacv1.ClusterRoleBinding) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "rbac", "connector-clusterrole.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role, sa, binding := &rbacv1.ClusterRole{}, &corev1.ServiceAccount{}, &rbacv1.ClusterRoleBinding{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for _, obj := range []any{role, sa, binding} {
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("decoding RBAC manifest: %v", err)
		}
	}
	var extra map[string]any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("RBAC manifest has more than three documents (%v)", err)
	}
	if role.Kind != "ClusterRole" || sa.Kind != "ServiceAccount" || binding.Kind != "ClusterRoleBinding" {
		t.Fatalf("manifest documents are %s, %s, %s; want ClusterRole, ServiceAccount, ClusterRoleBinding", role.Kind, sa.Kind, binding.Kind)
	}
	return role, sa, binding
}

func TestRBACManifest(t *testing.T) {
	role, sa, binding := connectorRBAC(t)
	if role.Name != "bulwark-connector" {
		t.Errorf("ClusterRole name = %q", role.Name)
	}
	got := map[string]bool{}
	for _, r := range role.Rules {
		if diff := cmp.Diff([]string{"get", "list", "watch"}, r.Verbs); diff != "" {
			t.Errorf("rule %v verbs (-want +got):\n%s", r.Resources, diff)
		}
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("rule %v has resourceNames or nonResourceURLs", r.Resources)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				got[g+"/"+res] = true
			}
		}
	}
	want := map[string]bool{}
	for _, gr := range []string{
		"/namespaces", "/nodes", "/pods", "/services", "/serviceaccounts", "/configmaps", "/secrets",
		"apps/deployments", "apps/replicasets", "apps/statefulsets", "apps/daemonsets",
		"batch/jobs", "batch/cronjobs",
		"networking.k8s.io/ingresses", "networking.k8s.io/networkpolicies",
		"rbac.authorization.k8s.io/roles", "rbac.authorization.k8s.io/rolebindings",
		"rbac.authorization.k8s.io/clusterroles", "rbac.authorization.k8s.io/clusterrolebindings",
	} {
		want[gr] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ClusterRole resources (-want +got):\n%s", diff)
	}
	if sa.Namespace != "bulwark" || sa.Name != "bulwark-connector" {
		t.Errorf("ServiceAccount = %s/%s", sa.Namespace, sa.Name)
	}
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: "bulwark"}}
	if diff := cmp.Diff(wantSubjects, binding.Subjects); diff != "" || binding.RoleRef.Name != role.Name || binding.RoleRef.Kind != "ClusterRole" {
		t.Errorf("ClusterRoleBinding roleRef %+v, subjects (-want +got):\n%s", binding.RoleRef, diff)
	}
}

// must returns v, panicking (which fails the test) on an error.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// connectorConfig applies the manifest's ClusterRole and, when bind is
// set, binds it to a fresh service account; it returns a client
// configuration for that account.
func connectorConfig(t *testing.T, ctx context.Context, kube *testenv.Kube, bind bool) *rest.Config {
	t.Helper()
	role, _, binding := connectorRBAC(t)
	c := kube.Client.RbacV1().ClusterRoles()
	if _, err := c.Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur := must(c.Get(ctx, role.Name, metav1.GetOptions{}))
		cur.Rules = role.Rules
		must(c.Update(ctx, cur, metav1.UpdateOptions{}))
	} else if err != nil {
		t.Fatalf("creating ClusterRole: %v", err)
	}
	saNS := kube.Namespace(t)
	saName := binding.Subjects[0].Name
	cfg := must(kube.ServiceAccountConfig(ctx, saNS, saName))
	if bind {
		binding.Name = "bulwark-connector-" + saNS
		binding.Subjects[0].Namespace = saNS
		must(kube.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}))
		t.Cleanup(func() {
			_ = kube.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		})
	}
	return cfg
}

func TestStartWithoutRBACFails(t *testing.T) {
	kube := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := connectorConfig(t, ctx, kube, false)
	c, err := start(ctx, cfg, 2*time.Second)
	if err == nil {
		c.Stop()
		t.Fatal("Start as a service account without the ClusterRole succeeded")
	}
	t.Logf("Start: %v", err)
}

const (
	webDigest    = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	setupDigest  = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	exportDigest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

func controllerRef(kind, apiVersion string, m metav1.ObjectMeta) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: m.Name, UID: m.UID, Controller: ptr(true)}}
}

func ptr[T any](v T) *T { return &v }

func webPod(ns, name string, rs *appsv1.ReplicaSet) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, Labels: map[string]string{"app": "web"},
			OwnerReferences: controllerRef("ReplicaSet", "apps/v1", rs.ObjectMeta),
		},
		Spec: *rs.Spec.Template.Spec.DeepCopy(),
	}
}

func TestSnapshot(t *testing.T) {
	kube := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := connectorConfig(t, ctx, kube, true)
	ns := kube.Namespace(t)
	cs := kube.Client

	must(cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "sa-pull"}, {Name: "shared"}}}, metav1.CreateOptions{}))
	labels := map[string]string{"app": "web"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			ServiceAccountName: "web",
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "pod-pull"}, {Name: "shared"}},
			NodeName:           "node-a",
			SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr(true)},
			InitContainers:     []corev1.Container{{Name: "setup", Image: "registry.example/setup:1"}},
			Containers: []corev1.Container{
				{
					Name: "web", Image: "registry.example/web:1.0",
					SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "SYS_TIME"}}},
				},
				{
					Name: "debug", Image: "registry.example/debug:latest",
					SecurityContext: &corev1.SecurityContext{Privileged: ptr(true), RunAsNonRoot: ptr(false)},
				},
			},
		},
	}
	dep := must(cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{}))
	rs := must(cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d4b9", OwnerReferences: controllerRef("Deployment", "apps/v1", dep.ObjectMeta)},
		Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{}))
	pod := must(cs.CoreV1().Pods(ns).Create(ctx, webPod(ns, "web-7d4b9-aaaaa", rs), metav1.CreateOptions{}))
	pod.Status.Phase = corev1.PodRunning
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: "setup", Image: "registry.example/setup:1", ImageID: "containerd://" + setupDigest},
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "web", Image: "registry.example/web:1.0", ImageID: "docker-pullable://registry.example/web@" + webDigest},
		{Name: "debug", Image: "registry.example/debug:latest", ImageID: "not-a-digest"},
	}
	must(cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}))

	port := []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web-np"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels, Ports: port}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web-internal"}, Spec: corev1.ServiceSpec{Selector: labels, Ports: port}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other-lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "other"}, Ports: port}},
	} {
		must(cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}))
	}
	must(cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "web.example",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web-internal", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}, metav1.CreateOptions{}))

	// A bare pod on the host's network, PID namespace and a host port.
	must(cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "node-exporter"},
		Spec: corev1.PodSpec{
			NodeName: "node-a", HostNetwork: true, HostPID: true,
			Containers: []corev1.Container{{
				Name: "exporter", Image: "registry.example/exporter@" + exportDigest,
				Ports: []corev1.ContainerPort{{ContainerPort: 9100, HostPort: 9100}},
			}},
		},
	}, metav1.CreateOptions{}))

	// A CronJob, its Job and the Job's pod.
	jobTemplate := corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "backup", Image: "registry.example/backup:2"}},
	}}
	cj := must(cs.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "backup"},
		Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate}}},
	}, metav1.CreateOptions{}))
	job := must(cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-29000000", OwnerReferences: controllerRef("CronJob", "batch/v1", cj.ObjectMeta)},
		Spec:       batchv1.JobSpec{Template: jobTemplate},
	}, metav1.CreateOptions{}))
	must(cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-29000000-xyz", OwnerReferences: controllerRef("Job", "batch/v1", job.ObjectMeta)},
		Spec:       jobTemplate.Spec,
	}, metav1.CreateOptions{}))

	// A Secret applied with kubectl: its value is also in an annotation.
	must(cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Labels: map[string]string{"team": "web"}, Annotations: map[string]string{
			corev1.LastAppliedConfigAnnotation: `{"data":{"password":"aHVudGVyMg=="}}`,
			"owner":                            "web",
		}},
		Data: map[string][]byte{"password": []byte("hunter2")},
	}, metav1.CreateOptions{}))

	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start as the connector service account: %v", err)
	}
	defer c.Stop()

	inv := c.Snapshot()
	if !slices.ContainsFunc(inv.Namespaces, func(n Namespace) bool { return n.Name == ns }) {
		t.Errorf("snapshot namespaces lack %s", ns)
	}
	webContainers := []Container{
		{Name: "setup", Kind: ContainerInit, Image: "registry.example/setup:1", ImageDigest: setupDigest, RunAsNonRoot: ptr(true)},
		{Name: "web", Kind: ContainerRegular, Image: "registry.example/web:1.0", ImageDigest: webDigest,
			PullReference: "registry.example/web@" + webDigest, RunAsNonRoot: ptr(true), Capabilities: []string{"NET_ADMIN", "SYS_TIME"}},
		{Name: "debug", Kind: ContainerRegular, Image: "registry.example/debug:latest", Privileged: true, RunAsNonRoot: ptr(false)},
	}
	want := []Workload{
		{
			Kind: KindCronJob, Namespace: ns, Name: "backup", ServiceAccount: "default",
			Pods: []Pod{{Name: "backup-29000000-xyz", Phase: corev1.PodPending, Containers: []Container{
				{Name: "backup", Kind: ContainerRegular, Image: "registry.example/backup:2"},
			}}},
		},
		{
			Kind: KindDeployment, Namespace: ns, Name: "web", ServiceAccount: "web",
			Pods: []Pod{{Name: "web-7d4b9-aaaaa", Node: "node-a", Phase: corev1.PodRunning, Containers: webContainers,
				PullSecrets: []string{"pod-pull", "shared", "sa-pull"}}},
			Exposure: []string{ExposureIngress, ExposureNodePort},
		},
		{
			Kind: KindPod, Namespace: ns, Name: "node-exporter", ServiceAccount: "default", HostNetwork: true, HostPID: true,
			Pods: []Pod{{Name: "node-exporter", Node: "node-a", Phase: corev1.PodPending, Containers: []Container{{
				Name: "exporter", Kind: ContainerRegular, Image: "registry.example/exporter@" + exportDigest, HostPorts: []int32{9100},
			}}}},
			Exposure: []string{ExposureHostNetwork, ExposureHostPort},
		},
	}
	if diff := cmp.Diff(want, workloadsIn(inv, ns), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("snapshot workloads (-want +got):\n%s", diff)
	}

	// Secrets are cached as metadata only, without the last-applied copy.
	objs, err := c.secrets.ByNamespace(ns).List(k8slabels.Everything())
	if err != nil || len(objs) != 1 {
		t.Fatalf("cached secrets in %s: %d, %v", ns, len(objs), err)
	}
	secret, ok := objs[0].(*metav1.PartialObjectMetadata)
	if !ok {
		t.Fatalf("cached secret is a %T, want *metav1.PartialObjectMetadata", objs[0])
	}
	if diff := cmp.Diff(map[string]string{"owner": "web"}, secret.Annotations); diff != "" || len(secret.ManagedFields) > 0 {
		t.Errorf("cached secret annotations (-want +got):\n%s\nmanagedFields: %d", diff, len(secret.ManagedFields))
	}
	pods := must(c.pods.Pods(ns).List(k8slabels.Everything()))
	for _, p := range pods {
		if len(p.ManagedFields) > 0 {
			t.Errorf("cached pod %s keeps managedFields", p.Name)
		}
	}

	// A new pod shows up in the snapshot within seconds.
	must(cs.CoreV1().Pods(ns).Create(ctx, webPod(ns, "web-7d4b9-bbbbb", rs), metav1.CreateOptions{}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		var names []string
		for _, w := range workloadsIn(c.Snapshot(), ns) {
			if w.Kind == KindDeployment && w.Name == "web" {
				for _, p := range w.Pods {
					names = append(names, p.Name)
				}
			}
		}
		if slices.Equal(names, []string{"web-7d4b9-aaaaa", "web-7d4b9-bbbbb"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment pods = %v after 10s, want the new pod too", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func workloadsIn(inv Inventory, ns string) []Workload {
	var out []Workload
	for _, w := range inv.Workloads {
		if w.Namespace == ns {
			out = append(out, w)
		}
	}
	return out
}
