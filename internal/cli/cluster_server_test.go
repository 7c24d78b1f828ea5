package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// docsCheck returns the example check of docs/KUBERNETES.md, so the
// documented example is the one tested.
func docsCheck(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "KUBERNETES.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\nchecks:")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/KUBERNETES.md has no example check")
	}
	return []byte("checks:" + block)
}

// TestClusterThroughServer is what a user does after reading
// docs/KUBERNETES.md: start the server with a check of their own, add a
// real cluster with `bulwark cluster add` from a kubeconfig whose
// certificates are files, and read the inventory and posture back with
// the CLI; then remove the cluster.
func TestClusterThroughServer(t *testing.T) {
	kube := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	ns := kube.Namespace(t)
	_, err := kube.Client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "debug"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "shell", Image: "docker.io/library/busybox:1.36",
			SecurityContext: &corev1.SecurityContext{Privileged: new(true)}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	checksDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(checksDir, "acme.yaml"), docsCheck(t), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "http", "--data-dir", t.TempDir(), "--posture-checks", checksDir)
	env, waitUntil := srv.env, srv.waitUntil
	waitUntil("the server", time.Minute, func() (bool, string) {
		code, out, errOut := runCLI(t, env, "cluster", "list")
		return code == ExitOK, out + errOut
	})

	// kube.KubeconfigPath names its CA, certificate and key as files.
	if code, out, errOut := runCLI(t, env, "cluster", "add", "lab", "--kubeconfig", kube.KubeconfigPath); code != ExitOK {
		t.Fatalf("cluster add: exit %d: %s%s", code, out, errOut)
	}
	waitUntil("the cluster to connect", time.Minute, func() (bool, string) {
		_, out, _ := runCLI(t, env, "cluster", "list")
		return strings.Contains(out, "lab") && strings.Contains(out, "connected"), out
	})
	waitUntil("the debug pod in the inventory", 30*time.Second, func() (bool, string) {
		_, out, _ := runCLI(t, env, "workloads", "--cluster", "lab", "--namespace", ns)
		return strings.Contains(out, "debug"), out
	})

	type finding struct {
		CheckID           string   `json:"checkID"`
		ResourceNamespace string   `json:"resourceNamespace"`
		ResourceName      string   `json:"resourceName"`
		Evidence          []string `json:"evidence"`
		Remediation       string   `json:"remediation"`
	}
	found := func(check string) (bool, string) {
		code, out, errOut := runCLI(t, env, "posture", "--cluster", "lab", "--namespace", ns, "--check", check, "-f", "json")
		if code != ExitOK {
			return false, out + errOut
		}
		var fs []finding
		if err := json.Unmarshal([]byte(out), &fs); err != nil {
			var page struct{ Items []finding }
			if json.Unmarshal([]byte(out), &page) != nil {
				return false, out
			}
			fs = page.Items
		}
		for _, f := range fs {
			if f.ResourceName == "debug" && len(f.Evidence) > 0 && f.Remediation != "" {
				return true, out
			}
		}
		return false, out
	}
	waitUntil("the user's check to flag the pod", 30*time.Second, func() (bool, string) { return found("ACME-001") })
	out := waitUntil("CIS 5.2.2 on the privileged pod", 30*time.Second, func() (bool, string) { return found("CIS-5.2.2") })
	if !strings.Contains(out, "privileged") {
		t.Errorf("CIS-5.2.2 evidence does not say privileged:\n%s", out)
	}
	if code, out, _ := runCLI(t, env, "posture", "checks"); code != ExitOK || !strings.Contains(out, "ACME-001") || !strings.Contains(out, "CIS-5.1.1") {
		t.Errorf("posture checks: exit %d:\n%.2000s", code, out)
	}

	if code, out, errOut := runCLI(t, env, "cluster", "remove", "lab"); code != ExitOK {
		t.Fatalf("cluster remove: exit %d: %s%s", code, out, errOut)
	}
	if _, out, _ := runCLI(t, env, "cluster", "list"); strings.Contains(out, "lab") {
		t.Errorf("cluster list after remove:\n%s", out)
	}
}
