package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

// testCA is a valid caBundle for tests that never reach a server.
func testCA(t *testing.T) []byte {
	t.Helper()
	certs, _, _ := ensure(t, t.TempDir(), []string{"localhost"}, nil, time.Now())
	return certs.CAPEM
}

func TestConfigRejects(t *testing.T) {
	ca := testCA(t)
	valid := Config{URL: "https://127.0.0.1:8443/validate", CABundle: ca}
	with := func(f func(*Config)) Config {
		c := valid
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"http URL", with(func(c *Config) { c.URL = "http://127.0.0.1:8443/validate" }), `scheme must be https, not "http"`},
		{"URL without scheme", with(func(c *Config) { c.URL = "127.0.0.1:8443" }), "is not of the form https://host[:port]/path"},
		{"URL without host", with(func(c *Config) { c.URL = "https:///validate" }), "has no host"},
		{"URL with user", with(func(c *Config) { c.URL = "https://u:p@127.0.0.1/validate" }), "user information"},
		{"URL with query", with(func(c *Config) { c.URL = "https://127.0.0.1/validate?x=1" }), "query"},
		{"URL with fragment", with(func(c *Config) { c.URL = "https://127.0.0.1/validate#x" }), "fragment"},
		{"URL unparsable", with(func(c *Config) { c.URL = "https://127.0.0.1:port/" }), "invalid port"},
		{"URL and Service", with(func(c *Config) {
			c.Service = &admissionregistrationv1.ServiceReference{Namespace: "bulwark", Name: "bulwark"}
		}), "both URL and Service are set"},
		{"neither URL nor Service", with(func(c *Config) { c.URL = "" }), "neither URL nor Service"},
		{"service without name", with(func(c *Config) {
			c.URL, c.Service = "", &admissionregistrationv1.ServiceReference{Namespace: "bulwark"}
		}), `service name ""`},
		{"service port out of range", with(func(c *Config) {
			c.URL, c.Service = "", &admissionregistrationv1.ServiceReference{Namespace: "bulwark", Name: "bulwark", Port: ptr[int32](70000)}
		}), "port 70000"},
		{"service path relative", with(func(c *Config) {
			c.URL, c.Service = "", &admissionregistrationv1.ServiceReference{Namespace: "bulwark", Name: "bulwark", Path: ptr("validate")}
		}), "must start with /"},
		{"empty CABundle", with(func(c *Config) { c.CABundle = nil }), "CABundle is empty"},
		{"CABundle not PEM", with(func(c *Config) { c.CABundle = []byte("hello") }), "not PEM"},
		{"CABundle holds a key", with(func(c *Config) {
			c.CABundle = []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}), "PRIVATE KEY block"},
		{"CABundle bad certificate", with(func(c *Config) {
			c.CABundle = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
		}), "CABundle certificate 1"},
		{"timeout too long", with(func(c *Config) { c.TimeoutSeconds = 31 }), "timeoutSeconds 31 is outside 1 to 30"},
		{"timeout negative", with(func(c *Config) { c.TimeoutSeconds = -1 }), "timeoutSeconds -1"},
		{"failure policy", with(func(c *Config) { c.FailurePolicy = "ignore" }), `failurePolicy "ignore": want Ignore or Fail`},
		{"bad name", with(func(c *Config) { c.Name = "Bulwark Webhook" }), `name "Bulwark Webhook"`},
		{"bad excluded namespace", with(func(c *Config) { c.ExcludeNamespaces = []string{"ok", "Not_OK"} }), `excluded namespace "Not_OK"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A nil client: the Config must be refused before any call.
			err := Register(context.Background(), nil, tc.c)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Register error = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Register error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// wantWebhook is the webhook Register writes for c, as the API server
// returns it.
func wantWebhook(c Config, excluded ...string) admissionregistrationv1.ValidatingWebhook {
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources,
			Scope: ptr(admissionregistrationv1.NamespacedScope),
		}}
	}
	failurePolicy := admissionregistrationv1.FailurePolicyType(c.FailurePolicy)
	if failurePolicy == "" {
		failurePolicy = admissionregistrationv1.Ignore
	}
	timeout := c.TimeoutSeconds
	if timeout == 0 {
		timeout = DefaultTimeoutSeconds
	}
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: c.CABundle, Service: c.Service}
	if c.URL != "" {
		cc.URL = ptr(c.URL)
	}
	return admissionregistrationv1.ValidatingWebhook{
		Name:         WebhookName,
		ClientConfig: cc,
		Rules: []admissionregistrationv1.RuleWithOperations{
			rule("", "pods", "pods/ephemeralcontainers"),
			rule("apps", "deployments", "replicasets", "statefulsets", "daemonsets"),
			rule("batch", "jobs", "cronjobs"),
		},
		FailurePolicy: &failurePolicy,
		MatchPolicy:   ptr(admissionregistrationv1.Equivalent),
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
		}}},
		ObjectSelector:          &metav1.LabelSelector{},
		SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
		TimeoutSeconds:          &timeout,
		AdmissionReviewVersions: []string{"v1"},
	}
}

const denyMessage = "bulwark test: pods named deny-me are not admitted"

// reviewHandler answers AdmissionReview v1 requests, denying pods named
// deny-me, after delay (or until the caller hangs up).
type reviewHandler struct {
	delay time.Duration
	calls atomic.Int64
}

func (h *reviewHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
		case <-r.Context().Done():
			return
		}
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("decoding AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	var obj metav1.PartialObjectMetadata
	if err := json.Unmarshal(review.Request.Object.Raw, &obj); err != nil {
		http.Error(w, fmt.Sprintf("decoding object: %v", err), http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if review.Request.Kind.Kind == "Pod" && obj.Name == "deny-me" {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusForbidden, Message: denyMessage}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
}

type webhookServer struct {
	url     string
	caPEM   []byte
	handler *reviewHandler
	stop    func()
}

// startWebhook serves a reviewHandler over HTTPS on 127.0.0.1 with a
// Rotator's certificate.
func startWebhook(t *testing.T, delay time.Duration) *webhookServer {
	t.Helper()
	r := newTestRotator(t, t.TempDir())
	h := &reviewHandler{delay: delay}
	addr, stop := serveTLS(t, r.TLSConfig(), h)
	return &webhookServer{url: "https://" + addr + "/validate", caPEM: r.CABundle(), handler: h, stop: stop}
}

func testPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
}

func createPod(ctx context.Context, client kubernetes.Interface, ns, name string, dryRun bool) error {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err := client.CoreV1().Pods(ns).Create(ctx, testPod(name), opts)
	return err
}

// eventually polls cond until it holds; kube-apiserver takes about a
// second to act on a changed webhook configuration.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
}

// waitDenying waits until the API server sends pods in ns to the webhook.
func waitDenying(t *testing.T, ctx context.Context, client kubernetes.Interface, ns string) {
	t.Helper()
	eventually(t, "the webhook to deny pod deny-me", func() (bool, error) {
		err := createPod(ctx, client, ns, "deny-me", true)
		return err != nil && strings.Contains(err.Error(), denyMessage), err
	})
}

// register registers c and unregisters it when the test ends.
func register(t *testing.T, ctx context.Context, client kubernetes.Interface, c Config) {
	t.Helper()
	if err := Register(ctx, client, c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	t.Cleanup(func() {
		if err := Unregister(context.Background(), client, c.Name); err != nil {
			t.Errorf("Unregister: %v", err)
		}
	})
}

func getConfig(t *testing.T, ctx context.Context, client kubernetes.Interface, name string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	got, err := client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading ValidatingWebhookConfiguration %s: %v", name, err)
	}
	return got
}

func TestRegisterDeniesThroughWebhook(t *testing.T) {
	k := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	ns, excluded := k.Namespace(t), k.Namespace(t)
	srv := startWebhook(t, 0)
	c := Config{Name: "bulwark-deny-test", URL: srv.url, CABundle: srv.caPEM, ExcludeNamespaces: []string{excluded, excluded}}
	register(t, ctx, k.Client, c)

	got := getConfig(t, ctx, k.Client, c.Name)
	if diff := cmp.Diff(map[string]string{ManagedByLabel: ManagedBy}, got.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	want := []admissionregistrationv1.ValidatingWebhook{wantWebhook(c, excluded, "kube-system")}
	if excluded > "kube-system" {
		want = []admissionregistrationv1.ValidatingWebhook{wantWebhook(c, "kube-system", excluded)}
	}
	if diff := cmp.Diff(want, got.Webhooks); diff != "" {
		t.Errorf("webhooks (-want +got):\n%s", diff)
	}

	waitDenying(t, ctx, k.Client, ns)
	err := createPod(ctx, k.Client, ns, "deny-me", false)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), denyMessage) {
		t.Errorf("creating pod deny-me: %v; want denied with %q", err, denyMessage)
	}
	if err := createPod(ctx, k.Client, ns, "welcome", false); err != nil {
		t.Errorf("creating pod welcome: %v", err)
	}
	if err := createPod(ctx, k.Client, excluded, "deny-me", false); err != nil {
		t.Errorf("creating pod deny-me in excluded namespace %s: %v", excluded, err)
	}

	// Registering again with the same Config writes nothing.
	if err := Register(ctx, k.Client, c); err != nil {
		t.Fatalf("second Register: %v", err)
	}
	again := getConfig(t, ctx, k.Client, c.Name)
	if again.ResourceVersion != got.ResourceVersion {
		t.Errorf("second Register changed resourceVersion %s to %s", got.ResourceVersion, again.ResourceVersion)
	}
	if diff := cmp.Diff(got.Webhooks, again.Webhooks); diff != "" {
		t.Errorf("second Register changed webhooks (-first +second):\n%s", diff)
	}
}

func TestRegisterUpdates(t *testing.T) {
	k := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	c := Config{Name: "bulwark-update-test", URL: "https://127.0.0.1:1/validate", CABundle: testCA(t)}
	register(t, ctx, k.Client, c)

	// A new CA, policy and timeout, and a Service in place of the URL:
	// the fields Register no longer sets are gone.
	c2 := Config{
		Name:           c.Name,
		Service:        &admissionregistrationv1.ServiceReference{Namespace: "bulwark", Name: "bulwark-webhook", Path: ptr("/validate"), Port: ptr[int32](8443)},
		CABundle:       testCA(t),
		FailurePolicy:  "Fail",
		TimeoutSeconds: 10,
	}
	if err := Register(ctx, k.Client, c2); err != nil {
		t.Fatalf("Register with a Service: %v", err)
	}
	// Fail would block every pod of the other tests while the Service does
	// not exist; put Ignore back before the test ends.
	defer func() {
		c2.FailurePolicy = ""
		if err := Register(ctx, k.Client, c2); err != nil {
			t.Errorf("Register with Ignore: %v", err)
		}
	}()
	got := getConfig(t, ctx, k.Client, c.Name)
	if diff := cmp.Diff([]admissionregistrationv1.ValidatingWebhook{wantWebhook(c2, "kube-system")}, got.Webhooks); diff != "" {
		t.Errorf("webhooks after update (-want +got):\n%s", diff)
	}
}

func TestRegisterFailurePolicy(t *testing.T) {
	k := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	ns := k.Namespace(t)
	srv := startWebhook(t, 0)
	c := Config{Name: "bulwark-failure-test", URL: srv.url, CABundle: srv.caPEM}
	register(t, ctx, k.Client, c)
	waitDenying(t, ctx, k.Client, ns)

	// With Ignore, a webhook that cannot be reached admits.
	srv.stop()
	if err := createPod(ctx, k.Client, ns, "deny-me", false); err != nil {
		t.Errorf("creating pod deny-me with the webhook down and failurePolicy Ignore: %v", err)
	}

	// With Fail it does not.
	c.FailurePolicy = "Fail"
	if err := Register(ctx, k.Client, c); err != nil {
		t.Fatalf("Register with Fail: %v", err)
	}
	eventually(t, "failurePolicy Fail to reject pods", func() (bool, error) {
		err := createPod(ctx, k.Client, ns, "any", true)
		return err != nil && strings.Contains(err.Error(), "failed calling webhook"), err
	})
	// Back to Ignore, and wait until it holds, so later tests are not
	// blocked by a configuration the API server still caches.
	c.FailurePolicy = ""
	if err := Register(ctx, k.Client, c); err != nil {
		t.Fatalf("Register with Ignore: %v", err)
	}
	eventually(t, "failurePolicy Ignore to admit pods again", func() (bool, error) {
		err := createPod(ctx, k.Client, ns, "any", true)
		return err == nil, err
	})
}

func TestRegisterTimeoutIgnored(t *testing.T) {
	k := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	ns := k.Namespace(t)
	const delay = 5 * time.Second
	srv := startWebhook(t, delay)
	c := Config{Name: "bulwark-timeout-test", URL: srv.url, CABundle: srv.caPEM, TimeoutSeconds: 1}
	register(t, ctx, k.Client, c)

	eventually(t, "the API server to call the webhook", func() (bool, error) {
		err := createPod(ctx, k.Client, ns, "deny-me", true)
		return srv.handler.calls.Load() > 0, err
	})
	calls := srv.handler.calls.Load()
	start := time.Now()
	if err := createPod(ctx, k.Client, ns, "deny-me", false); err != nil {
		t.Fatalf("creating pod deny-me with a webhook slower than its timeout: %v", err)
	}
	took := time.Since(start)
	if srv.handler.calls.Load() == calls {
		t.Error("the webhook was not called for the create")
	}
	if took >= delay {
		t.Errorf("create took %v; the API server did not give up after 1s", took)
	}
}

func TestUnregister(t *testing.T) {
	k := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	ns := k.Namespace(t)
	srv := startWebhook(t, 0)
	c := Config{Name: "bulwark-unregister-test", URL: srv.url, CABundle: srv.caPEM}
	if err := Register(ctx, k.Client, c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	waitDenying(t, ctx, k.Client, ns)

	if err := Unregister(ctx, k.Client, c.Name); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
	_, err := k.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, c.Name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after Unregister, reading the configuration: %v; want NotFound", err)
	}
	eventually(t, "pods to be admitted once unregistered", func() (bool, error) {
		err := createPod(ctx, k.Client, ns, "deny-me", true)
		return err == nil, err
	})
	if err := Unregister(ctx, k.Client, c.Name); err != nil {
		t.Errorf("second Unregister: %v", err)
	}
}

func TestUnregisterLeavesOthers(t *testing.T) {
	k := testenv.SharedKube(t, testenv.KubeOptions{})
	ctx := t.Context()
	hooks := k.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	other := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "not-bulwarks"}}
	if _, err := hooks.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hooks.Delete(context.Background(), other.Name, metav1.DeleteOptions{}) })
	err := Unregister(ctx, k.Client, other.Name)
	if err == nil || !strings.Contains(err.Error(), "lacks the label") {
		t.Errorf("Unregister of a configuration Bulwark does not manage: %v; want a refusal", err)
	}
	if _, err := hooks.Get(ctx, other.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("configuration was deleted: %v", err)
	}
}
