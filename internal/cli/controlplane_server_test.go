package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bulwarkhq/bulwark/internal/admission/webhook"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// TestControlPlaneThroughServer is control-plane detection as a user sets
// it up: `bulwark server` over HTTPS with an alert webhook output, an
// ingest token made with `bulwark token create`, and a real kube-apiserver
// whose audit webhook posts to the server with that token. A user binds
// themself to cluster-admin and creates a privileged pod; the alerts show
// in `bulwark alerts`, the evidence in `bulwark events`, and the output
// receives them. (internal/controlplane's tests run every attack.)
func TestControlPlaneThroughServer(t *testing.T) {
	testenv.Integration(t)
	certDir := t.TempDir()
	certs, _, err := webhook.EnsureCerts(certDir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(certDir, webhook.CAFile)

	var (
		mu       sync.Mutex
		received []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, string(body))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	outputs := filepath.Join(t.TempDir(), "outputs.yaml")
	if err := os.WriteFile(outputs, []byte("outputs:\n  - name: siem\n    type: webhook\n    url: "+receiver.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startServer(t, "https", "--data-dir", t.TempDir(), "--tls-cert", filepath.Join(certDir, webhook.CertFile),
		"--tls-key", filepath.Join(certDir, webhook.KeyFile), "--alert-outputs", outputs)
	env, waitUntil := srv.env, srv.waitUntil
	cli := func(args ...string) (int, string) {
		code, out, errOut := runCLI(t, env, append(args, "--ca-file", caFile)...)
		return code, out + errOut
	}
	waitUntil("the server", time.Minute, func() (bool, string) { code, out := cli("token", "list"); return code == ExitOK, out })
	code, out := cli("token", "create", "lab-audit", "--role", "ingest")
	if code != ExitOK {
		t.Fatalf("token create: %s", out)
	}
	ingest := strings.TrimSpace(out)

	kube := testenv.StartKube(t, testenv.KubeOptions{AuditWebhook: &testenv.AuditWebhook{
		URL: "https://" + srv.addr + "/api/v1/ingest/k8s-audit/lab", CAPEM: certs.CAPEM, Token: ingest}})
	ns := kube.Namespace(t)
	bg := context.Background()
	// mallory may create pods and bindings, and does worse with it.
	if _, err := kube.Client.RbacV1().ClusterRoles().Create(bg, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "mallory"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}},
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterrolebindings"}, Verbs: []string{"create"}},
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.Client.RbacV1().ClusterRoleBindings().Create(bg, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mallory"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "mallory"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "mallory", APIGroup: rbacv1.GroupName}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := kube.UserConfig("mallory")
	if err != nil {
		t.Fatal(err)
	}
	cfg.UserAgent = "mallory-tool/1.0"
	mallory, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.RbacV1().ClusterRoleBindings().Create(bg, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mallory-admin"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "mallory", APIGroup: rbacv1.GroupName}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.CoreV1().Pods(ns).Create(bg, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "root-shell"},
		Spec: corev1.PodSpec{HostPID: true, Containers: []corev1.Container{{Name: "sh", Image: "busybox:1.36",
			SecurityContext: &corev1.SecurityContext{Privileged: new(true)}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	type alert struct {
		Rule, Actor, SourceIP, UserAgent, Namespace, Name string
		Technique                                         struct{ ID string }
		Events                                            []string
	}
	var alerts []alert
	waitUntil("the alerts", time.Minute, func() (bool, string) {
		code, out := cli("alerts", "--cluster", "lab", "--actor", "mallory", "-f", "json")
		if code != ExitOK || json.Unmarshal([]byte(out), &alerts) != nil {
			return false, out
		}
		var binding, privileged bool
		for _, a := range alerts {
			binding = binding || a.Rule == "cluster-admin-binding"
			privileged = privileged || (a.Rule == "privileged-container" && a.Namespace == ns && a.Name == "root-shell")
		}
		return binding && privileged, out
	})
	for _, a := range alerts {
		if a.SourceIP != "127.0.0.1" || a.UserAgent != "mallory-tool/1.0" || a.Technique.ID == "" || len(a.Events) == 0 {
			t.Errorf("alert %+v lacks its source, user agent, technique or evidence", a)
		}
	}
	// The evidence is there to hunt through, and the output got the alerts.
	if code, out := cli("events", "--cluster", "lab", "--user", "mallory", "--resource", "pods"); code != ExitOK || !strings.Contains(out, "root-shell") {
		t.Errorf("events: %s", out)
	}
	waitUntil("the alert output", 30*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		all := strings.Join(received, "\n")
		return strings.Contains(all, "cluster-admin-binding") && strings.Contains(all, "privileged-container"), all
	})
	// A token that may only send events cannot read alerts.
	env2 := map[string]string{"BULWARK_SERVER": env["BULWARK_SERVER"], "BULWARK_TOKEN": ingest}
	if code, _, _ := runCLI(t, env2, "alerts", "--ca-file", caFile); code == ExitOK {
		t.Error("an ingest token listed alerts")
	}
}
