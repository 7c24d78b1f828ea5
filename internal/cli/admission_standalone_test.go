package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// admissionKubeconfig binds deploy/admission's ClusterRole — and nothing
// else — to a new service account and writes a kubeconfig for it.
func admissionKubeconfig(t *testing.T, kube *testenv.Kube) string {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "admission", "admission.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			t.Fatalf("no ClusterRole in deploy/admission/admission.yaml (%v)", err)
		}
		if obj["kind"] == "ClusterRole" {
			raw, _ := json.Marshal(obj)
			if err := json.Unmarshal(raw, &role); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	ns := kube.Namespace(t)
	role.Name = "bulwark-admission-" + ns
	if _, err := kube.Client.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "bulwark-admission", Namespace: ns}}}
	if _, err := kube.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kube.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
		_ = kube.Client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
	})
	cfg, err := kube.ServiceAccountConfig(ctx, ns, "bulwark-admission")
	if err != nil {
		t.Fatal(err)
	}
	path, err := testenv.WriteKubeconfig(t.TempDir(), "admission", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAdmissionStandalone runs `bulwark admission` as the in-cluster
// deployment would — as a service account bound only to the shipped
// ClusterRole, over a store the server filled: it watches namespace
// labels itself, registers its own webhook with the CA it created, denies
// a known-vulnerable image in an enforced namespace, and `bulwark
// admission unregister` removes it.
func TestAdmissionStandalone(t *testing.T) {
	kube := testenv.SharedKube(t, testenv.KubeOptions{})
	kubeconfig := admissionKubeconfig(t, kube)
	dataDir := t.TempDir()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, filepath.Join(dataDir, store.SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	const digest = "sha256:5555555555555555555555555555555555555555555555555555555555555555"
	id, err := db.SeeImage(ctx, digest, store.ImageRef{Host: "registry.example", Repository: "team/api", Tag: "2.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SaveResult(ctx, id, store.Result{At: time.Now(), DBBuilt: time.Now(),
		Packages: []model.Package{{Name: "openssl", Version: "3.0.1", Ecosystem: "Debian:12"}},
		Findings: []model.Finding{{VulnerabilityID: "CVE-2099-0001", Severity: model.SeverityCritical, FixedVersion: "3.0.9",
			Package: model.Package{Name: "openssl", Version: "3.0.1", Ecosystem: "Debian:12"}}}}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	runCtx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- runContext(runCtx, []string{"admission", "--data-dir", dataDir, "--kubeconfig", kubeconfig, "--cluster", "lab",
			"--admission-listen", addr, "--register", "--url", "https://" + addr + "/validate", "--webhook-name", "bulwark-standalone-test"},
			&logs, &logs, func(string) (string, bool) { return "", false })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != ExitOK {
				t.Errorf("bulwark admission exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("bulwark admission did not stop within 30s")
		}
		if code, out, errOut := runCLI(t, nil, "admission", "unregister", "--kubeconfig", kubeconfig,
			"--webhook-name", "bulwark-standalone-test"); code != ExitOK {
			t.Errorf("admission unregister: %s%s", out, errOut)
		}
		if t.Failed() {
			t.Logf("bulwark admission log:\n%s", logs.String())
		}
	})

	ns := kube.Namespace(t)
	n, err := kube.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels["bulwark.io/enforce"] = "true"
	if _, err := kube.Client.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last error
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		_, last = kube.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("api-%d", i)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "registry.example/team/api:2.1"}}}}, metav1.CreateOptions{})
		if last != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the standalone webhook never denied the vulnerable image")
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(last.Error(), "CVE-2099-0001") || !strings.Contains(last.Error(), "deny-critical-fixable") {
		t.Errorf("denial = %v", last)
	}
	cancel()
	code := <-exited
	exited <- code // for the cleanup
	// Stopped: the cluster admits again (failurePolicy Ignore).
	if _, err := kube.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "after"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "registry.example/team/api:2.1"}}}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("with the webhook stopped, a pod was refused: %v", err)
	}
}
