package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

// fullKube is the control plane most smoke tests share: controllers, kwok
// and an audit log.
var fullKube = KubeOptions{Controllers: true, Kwok: true, AuditLog: true}

func whoami(t *testing.T, cfg *rest.Config) authenticationv1.UserInfo {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	return r.Status.UserInfo
}

func TestKubePodRunsOnKwokNode(t *testing.T) {
	k := SharedKube(t, fullKube)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := k.Namespace(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1.0"}},
		},
	}
	if _, err := k.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	// The scheduler places the pod on the kwok node and kwok runs it.
	err := waitFor(ctx, "pod Running", nil, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		got, err := k.Client.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.Phase == corev1.PodRunning && got.Spec.NodeName == KwokNode, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Client.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Containers[0].Image != "registry.example/web:1.0" || got.Labels["app"] != "web" {
		t.Errorf("pod read back = %+v", got.Spec)
	}
}

func TestKubeKubeconfigFile(t *testing.T) {
	k := SharedKube(t, fullKube)
	cfg, err := clientcmd.BuildConfigFromFlags("", k.KubeconfigPath)
	if err != nil {
		t.Fatalf("loading %s: %v", k.KubeconfigPath, err)
	}
	u := whoami(t, cfg)
	if u.Username != "admin" {
		t.Errorf("kubeconfig user = %q, want admin", u.Username)
	}
}

func TestKubeUserCertificateAndRBAC(t *testing.T) {
	k := SharedKube(t, fullKube)
	ctx := context.Background()
	ns := k.Namespace(t)
	cfg, err := k.UserConfig("mallory", "developers")
	if err != nil {
		t.Fatal(err)
	}
	u := whoami(t, cfg)
	if u.Username != "mallory" || !slices.Contains(u.Groups, "developers") {
		t.Fatalf("user = %+v, want mallory in developers", u)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing secrets without a role: err = %v, want Forbidden", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "developers-edit", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "developers"}},
	}
	if _, err := k.Client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = waitFor(ctx, "RBAC to allow", nil, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKubeServiceAccountToken(t *testing.T) {
	k := SharedKube(t, fullKube)
	ns := k.Namespace(t)
	cfg, err := k.ServiceAccountConfig(context.Background(), ns, "scanner")
	if err != nil {
		t.Fatal(err)
	}
	u := whoami(t, cfg)
	if want := "system:serviceaccount:" + ns + ":scanner"; u.Username != want {
		t.Errorf("token user = %q, want %q", u.Username, want)
	}
	if !slices.Contains(u.Groups, "system:serviceaccounts:"+ns) {
		t.Errorf("token groups = %v", u.Groups)
	}
}

func TestKubeAuditLog(t *testing.T) {
	k := SharedKube(t, fullKube)
	ctx := context.Background()
	ns := k.Namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "audited"}, Data: map[string]string{"k": "v"}}
	if _, err := k.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := waitFor(ctx, "configmap create in the audit log", nil, 200*time.Millisecond, func(context.Context) (bool, error) {
		f, err := os.Open(k.AuditLogPath)
		if err != nil {
			return false, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var ev auditEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.matches("create", ns, "configmaps", "audited") {
				return true, nil
			}
		}
		return false, sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKubeAuditWebhook starts its own API server whose audit backend posts
// to an HTTPS receiver signed by a test CA.
func TestKubeAuditWebhook(t *testing.T) {
	ca, err := NewCA("audit-sink-ca")
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ca.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []auditEvent
	sink := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/audit") {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var list struct {
			Kind  string       `json:"kind"`
			Items []auditEvent `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil || list.Kind != "EventList" {
			http.Error(w, "want an EventList", http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, list.Items...)
		mu.Unlock()
	}))
	sink.TLS = tlsCfg
	sink.StartTLS()
	t.Cleanup(sink.Close)

	k := StartKube(t, KubeOptions{AuditWebhook: &AuditWebhook{URL: sink.URL + "/audit", CAPEM: ca.CertPEM}})
	ctx := context.Background()
	ns := k.Namespace(t)
	rb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-mallory-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "mallory"}},
	}
	if _, err := k.Client.RbacV1().ClusterRoleBindings().Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Client.RbacV1().ClusterRoleBindings().Delete(ctx, rb.Name, metav1.DeleteOptions{}) })
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = waitFor(wctx, "the binding in an audit batch", nil, 200*time.Millisecond, func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range events {
			if ev.matches("create", "", "clusterrolebindings", rb.Name) && ev.User.Username == "admin" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// auditEvent is the part of an audit.k8s.io/v1 Event the smoke tests read.
type auditEvent struct {
	Verb      string `json:"verb"`
	Stage     string `json:"stage"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
}

func (e auditEvent) matches(verb, ns, resource, name string) bool {
	return e.Verb == verb && e.Stage == "ResponseComplete" && e.ObjectRef != nil &&
		e.ObjectRef.Namespace == ns && e.ObjectRef.Resource == resource && e.ObjectRef.Name == name
}

func TestNamespacePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"TestFoo":               "testfoo-",
		"TestFoo/sub_case#01":   "testfoo-sub-case-01-",
		"///":                   "test-",
		strings.Repeat("A", 60): strings.Repeat("a", 40) + "-",
	} {
		if got := namespacePrefix(in); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
