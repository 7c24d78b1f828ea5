package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/bulwarkhq/bulwark/internal/cluster"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/scheduler"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// connectorKubeconfig binds deploy/rbac's ClusterRole — and nothing else —
// to a new service account and writes a kubeconfig for it.
func connectorKubeconfig(t *testing.T, ctx context.Context, kube *testenv.Kube) string {
	t.Helper()
	data := must(os.ReadFile(filepath.Join("..", "..", "deploy", "rbac", "connector-clusterrole.yaml")))
	role, binding := &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for _, obj := range []any{role, &corev1.ServiceAccount{}, binding} {
		if err := dec.Decode(obj); err != nil {
			t.Fatalf("decoding RBAC manifest: %v", err)
		}
	}
	roles := kube.Client.RbacV1().ClusterRoles()
	if _, err := roles.Create(ctx, role, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		cur := must(roles.Get(ctx, role.Name, metav1.GetOptions{}))
		cur.Rules = role.Rules
		must(roles.Update(ctx, cur, metav1.UpdateOptions{}))
	} else if err != nil {
		t.Fatal(err)
	}
	ns := kube.Namespace(t)
	cfg := must(kube.ServiceAccountConfig(ctx, ns, binding.Subjects[0].Name))
	binding.Name = "bulwark-connector-" + ns
	binding.Subjects[0].Namespace = ns
	must(kube.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}))
	t.Cleanup(func() {
		_ = kube.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	return must(testenv.WriteKubeconfig(t.TempDir(), "connector", cfg))
}

func newVulnDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w := must(vulndb.Create(dir))
	if err := vulndb.Import(context.Background(), w, "../../testdata/osv"); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

// restricted is a container that passes Pod Security "restricted".
func restricted(name, image string) corev1.Container {
	return corev1.Container{
		Name: name, Image: image,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false), RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(10001)),
			ReadOnlyRootFilesystem: ptr(true),
			Capabilities:           &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:         &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Resources: corev1.ResourceRequirements{},
	}
}

// TestConnectorEndToEnd registers a real kube-apiserver as a cluster, the
// connector authenticating as a service account bound only to the shipped
// ClusterRole; it seeds deliberate problems and a clean namespace, and
// checks the stored inventory, each posture finding, the absence of
// findings on clean objects, and that a vulnerable image running behind a
// NodePort is scanned from a password-protected registry with the pod's
// image pull secret and reported as a running vulnerable workload.
func TestConnectorEndToEnd(t *testing.T) {
	kube := testenv.SharedKube(t, testenv.KubeOptions{})
	reg := testenv.StartDistribution(t)
	digest := reg.PushTarball(t, "team/slim:1.0", filepath.Join("..", "..", "testdata", "images", "slim.tar"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs := kube.Client

	kcPath := connectorKubeconfig(t, ctx, kube)
	kc := must(cluster.Flatten(kcPath, ""))
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box := must(secretbox.New(key))
	db := must(store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "bulwark.db"), nil))
	t.Cleanup(func() { db.Close() })
	c := &store.Cluster{Name: "test", Source: store.ClusterSourceKubeconfig, Context: kc.Context, Server: kc.Server}
	if err := db.CreateCluster(ctx, c, must(box.Seal(kc.Data, cluster.SealContext(c.Name)))); err != nil {
		t.Fatal(err)
	}

	// The problems.
	bad := kube.Namespace(t)
	podOf := func(name string, spec corev1.PodSpec) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bad, Labels: map[string]string{"app": name}}, Spec: spec}
	}
	for _, p := range []*corev1.Pod{
		podOf("privileged", corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}}),
		podOf("hostpath-root", corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}},
			Volumes: []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}}),
		podOf("hostpid", corev1.PodSpec{HostPID: true, Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}),
	} {
		must(cs.CoreV1().Pods(bad).Create(ctx, p, metav1.CreateOptions{}))
	}
	// A service account bound to cluster-admin, a role with "*" on
	// secrets bound to another.
	for _, sa := range []string{"admin-sa", "reader"} {
		must(cs.CoreV1().ServiceAccounts(bad).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}))
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "admin-sa-" + bad},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "admin-sa", Namespace: bad}}}
	must(cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}))
	t.Cleanup(func() {
		_ = cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	must(cs.RbacV1().Roles(bad).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secrets-star"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}}}, metav1.CreateOptions{}))
	must(cs.RbacV1().RoleBindings(bad).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets-star"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: bad}}}, metav1.CreateOptions{}))

	// The vulnerable image, running behind a NodePort, pulled with a
	// secret the pod names.
	dockerConfig := must(json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))}}}))
	must(cs.CoreV1().Secrets(bad).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig}}, metav1.CreateOptions{}))
	web := podOf("web", corev1.PodSpec{AutomountServiceAccountToken: ptr(false), ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		Containers: []corev1.Container{restricted("app", reg.Host+"/team/slim:1.0")},
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}})
	web = must(cs.CoreV1().Pods(bad).Create(ctx, web, metav1.CreateOptions{}))
	web.Status.Phase = corev1.PodRunning
	web.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: reg.Host + "/team/slim:1.0",
		ImageID: reg.Host + "/team/slim@" + digest.DigestStr(), Ready: true}}
	must(cs.CoreV1().Pods(bad).UpdateStatus(ctx, web, metav1.UpdateOptions{}))
	must(cs.CoreV1().Services(bad).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}))

	// The clean namespace: enforced Pod Security, a default-deny
	// NetworkPolicy, a default service account that mounts no token, and
	// a restricted Deployment with its own service account.
	good := kube.Namespace(t)
	goodNS := must(cs.CoreV1().Namespaces().Get(ctx, good, metav1.GetOptions{}))
	goodNS.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	must(cs.CoreV1().Namespaces().Update(ctx, goodNS, metav1.UpdateOptions{}))
	must(cs.NetworkingV1().NetworkPolicies(good).Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}},
		metav1.CreateOptions{}))
	def := must(cs.CoreV1().ServiceAccounts(good).Get(ctx, "default", metav1.GetOptions{}))
	def.AutomountServiceAccountToken = ptr(false)
	must(cs.CoreV1().ServiceAccounts(good).Update(ctx, def, metav1.UpdateOptions{}))
	must(cs.CoreV1().ServiceAccounts(good).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "api"},
		AutomountServiceAccountToken: ptr(false)}, metav1.CreateOptions{}))
	labels := map[string]string{"app": "api"}
	must(cs.AppsV1().Deployments(good).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{ServiceAccountName: "api", AutomountServiceAccountToken: ptr(false),
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr(true),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{restricted("api", "registry.example/api@sha256:"+strings.Repeat("a", 64))}},
		}}}, metav1.CreateOptions{}))

	// Run the server's parts: the scheduler scans what the cluster sync
	// queues, with the pull secrets the manager reads.
	engine := must(posture.Compile(posture.Builtin()))
	var sched *scheduler.Scheduler
	mgr := must(cluster.New(cluster.Options{Store: db, Box: box, Engine: engine, Tick: 200 * time.Millisecond,
		Debounce: 300 * time.Millisecond, Lease: 3 * time.Second, Notify: func() { sched.Wake() }}))
	sched = must(scheduler.New(scheduler.Options{Store: db, Box: box, DBDir: newVulnDB(t), Tick: 100 * time.Millisecond,
		Keychain: mgr.Keychain, WorkDir: t.TempDir()}))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = mgr.Run(runCtx); done <- struct{}{} }()
	go func() { _ = sched.Run(runCtx); done <- struct{}{} }()
	t.Cleanup(func() {
		stop()
		<-done
		<-done
		sched.Close()
	})

	// Inventory.
	waitFor(t, "the cluster to be synced", time.Minute, func() (bool, error) {
		cl, err := db.Cluster(ctx, c.ID)
		return err == nil && cl.Status == store.ClusterConnected && !cl.SyncedAt.IsZero(), err
	})
	cl := must(db.Cluster(ctx, c.ID))
	if !strings.HasPrefix(cl.Version, "v1.") {
		t.Errorf("cluster version = %q", cl.Version)
	}
	ws, _ := must2(db.Workloads(ctx, store.WorkloadFilter{ClusterID: c.ID, Namespace: bad}, store.Page{Limit: 100}))
	var names []string
	for _, w := range ws {
		names = append(names, w.Kind+"/"+w.Name)
	}
	slices.Sort(names)
	want := []string{"Pod/hostpath-root", "Pod/hostpid", "Pod/privileged", "Pod/web"}
	if !slices.Equal(names, want) {
		t.Errorf("workloads in %s = %v, want %v", bad, names, want)
	}

	// Posture: each deliberate problem, and nothing on the clean objects.
	findings := func() []store.PostureFinding {
		var out []store.PostureFinding
		cursor := ""
		for {
			page, next, err := db.PostureFindings(ctx, store.PostureFilter{ClusterID: c.ID}, store.Page{Limit: 500, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page...)
			if next == "" {
				return out
			}
			cursor = next
		}
	}
	type hit struct{ check, kind, ns, name string }
	has := func(fs []store.PostureFinding, h hit) bool {
		return slices.ContainsFunc(fs, func(f store.PostureFinding) bool {
			return f.CheckID == h.check && f.ResourceKind == h.kind && f.ResourceNamespace == h.ns && f.ResourceName == h.name
		})
	}
	wantHits := []hit{
		{"CIS-5.2.2", "Pod", bad, "privileged"},
		{"PSS-BASELINE-PRIVILEGED", "Pod", bad, "privileged"},
		{"CIS-5.2.11", "Pod", bad, "hostpath-root"},
		{"PSS-BASELINE-HOST-PATH", "Pod", bad, "hostpath-root"},
		{"CIS-5.2.3", "Pod", bad, "hostpid"},
		{"PSS-BASELINE-HOST-NAMESPACES", "Pod", bad, "hostpid"},
		{"CIS-5.1.1", "ClusterRoleBinding", "", crb.Name},
		{"RBAC-CLUSTER-ADMIN-SERVICE-ACCOUNT", "ServiceAccount", bad, "admin-sa"},
		{"CIS-5.1.3", "Role", bad, "secrets-star"},
		{"CIS-5.1.2", "ServiceAccount", bad, "reader"},
		{"RBAC-WILDCARD", "ServiceAccount", bad, "reader"},
		{"CIS-5.3.2", "Namespace", "", bad},
	}
	var fs []store.PostureFinding
	waitFor(t, "every deliberate problem to be found", time.Minute, func() (bool, error) {
		fs = findings()
		for _, h := range wantHits {
			if !has(fs, h) {
				var got []string
				for _, f := range fs {
					if f.ResourceNamespace == bad || f.ResourceName == bad || f.ResourceName == crb.Name {
						got = append(got, f.CheckID+" "+f.ResourceKind+"/"+f.ResourceName)
					}
				}
				return false, fmt.Errorf("no %v; found %v", h, got)
			}
		}
		return true, nil
	})
	for _, f := range fs {
		if f.ResourceNamespace == good || (f.ResourceKind == "Namespace" && f.ResourceName == good) {
			t.Errorf("clean object flagged: %s %s %s/%s: %v", f.CheckID, f.ResourceKind, f.ResourceNamespace, f.ResourceName, f.Evidence)
		}
		if f.ResourceNamespace == bad && f.ResourceName == "web" && f.ResourceKind == "Pod" {
			t.Errorf("restricted pod flagged: %s: %v", f.CheckID, f.Evidence)
		}
	}

	// Runtime: the image is scanned from the password-protected registry
	// with the pod's pull secret, and the workload is reported.
	var vw []store.VulnerableWorkload
	waitFor(t, "the running image to be scanned and reported", 2*time.Minute, func() (bool, error) {
		var err error
		vw, _, err = db.VulnerableWorkloads(ctx, store.VulnerableWorkloadFilter{ClusterID: c.ID, MinSeverity: model.SeverityCritical, Fixable: true}, store.Page{Limit: 100})
		return len(vw) > 0, err
	})
	if len(vw) != 1 || vw[0].Workload.Name != "web" || vw[0].Workload.Namespace != bad || !slices.Contains(vw[0].Workload.Exposure, "NodePort") {
		t.Fatalf("vulnerable workloads = %+v, want only %s/web exposed by NodePort", vw, bad)
	}
	if img := vw[0].Images; len(img) != 1 || img[0].Digest != digest.DigestStr() || img[0].Critical == 0 {
		t.Errorf("vulnerable images = %+v", img)
	}
	scans, _ := must2(db.Scans(ctx, store.ScanFilter{}, store.Page{Limit: 100}))
	for _, s := range scans {
		if s.ClusterID == c.ID && !slices.Contains(s.PullSecrets, bad+"/regcred") {
			t.Errorf("scan %d pull secrets = %v", s.ID, s.PullSecrets)
		}
		if strings.Contains(s.Error, reg.Password) {
			t.Errorf("scan %d error holds the password", s.ID)
		}
	}

	// A change shows within seconds: the privileged pod goes, its
	// findings resolve.
	if err := cs.CoreV1().Pods(bad).Delete(ctx, "privileged", metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted pod's findings to resolve", 30*time.Second, func() (bool, error) {
		return !has(findings(), hit{"CIS-5.2.2", "Pod", bad, "privileged"}), nil
	})
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}
