package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata from a real kube-apiserver")

func TestMain(m *testing.M) { testenv.Main(m) }

// secretsPolicy logs bodies of the resources that carry secrets, so that
// redaction has something to remove.
const secretsPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
  - level: RequestResponse
    resources:
      - {group: "", resources: ["secrets", "configmaps", "pods", "serviceaccounts/token"]}
      - {group: "authentication.k8s.io", resources: ["tokenreviews"]}
  - level: Metadata
`

// Values the integration test writes; testdata holds them, unredacted.
const (
	secretValue  = "hunter2-correct-horse-battery-staple"
	configValue  = "config-value-that-is-also-sensitive"
	appliedValue = "last-applied-secret-value-xyzzy"
)

var errSinkDown = errors.New("sink down")

// collector is a sink that keeps what it accepted.
type collector struct {
	mu     sync.Mutex
	events []Event
	fail   int // calls to fail before accepting
	calls  int
}

func (c *collector) sink(_ context.Context, events []Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail > 0 {
		c.fail--
		return errSinkDown
	}
	c.events = append(c.events, events...)
	return nil
}

func (c *collector) snapshot() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// waitEvents waits until the collector holds an event for which ok is true.
func waitEvents(t *testing.T, c *collector, what string, ok func(Event) bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range c.snapshot() {
			if ok(e) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no event for %s within 45s", what)
}

func TestKubeAuditBackends(t *testing.T) {
	testenv.Integration(t)
	var (
		webhookEvents collector
		rawMu         sync.Mutex
		rawBodies     [][]byte
	)
	const token = "audit-webhook-test-token-0123456789"
	wh := NewWebhook(webhookEvents.sink, nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rawMu.Lock()
		rawBodies = append(rawBodies, body)
		rawMu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		wh.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	k := testenv.StartKube(t, testenv.KubeOptions{
		AuditLog:     true,
		AuditPolicy:  secretsPolicy,
		AuditWebhook: &testenv.AuditWebhook{URL: srv.URL, CAPEM: caPEM, Token: token},
	})

	var fileEvents collector
	src := NewFileSource(k.AuditLogPath, NewFileOffsetStore(filepath.Join(t.TempDir(), "offsets.json")), FileOptions{Poll: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, fileEvents.sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("FileSource.Run: %v", err)
		}
	})

	ns := k.Namespace(t)
	applied := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied","namespace":"` + ns + `"},"stringData":{"password":"` + appliedValue + `"}}`
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	core := k.Client.CoreV1()
	if _, err := core.Secrets(ns).Create(cctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": secretValue},
		Data:       map[string][]byte{"raw": []byte(secretValue)},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret: %v", err)
	}
	if _, err := core.Secrets(ns).Create(cctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "applied", Annotations: map[string]string{lastApplied: applied}},
		StringData: map[string]string{"password": appliedValue},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating applied secret: %v", err)
	}
	if _, err := core.ConfigMaps(ns).Create(cctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"},
		Data:       map[string]string{"key": configValue},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating configmap: %v", err)
	}
	if _, err := core.Secrets(ns).List(cctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("listing secrets: %v", err)
	}
	saToken, err := k.ServiceAccountToken(cctx, ns, "robot", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	secrets := []string{
		secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue)),
		configValue, appliedValue, saToken,
	}
	for _, b := range []struct {
		name string
		c    *collector
	}{{"webhook", &webhookEvents}, {"file", &fileEvents}} {
		t.Run(b.name, func(t *testing.T) {
			isEvent := func(verb, resource, name string) func(Event) bool {
				return func(e Event) bool {
					return e.Verb == verb && e.ObjectRef != nil && e.ObjectRef.Namespace == ns &&
						e.ObjectRef.Resource == resource && e.ObjectRef.Name == name && e.Stage == "ResponseComplete"
				}
			}
			waitEvents(t, b.c, "secret create", isEvent("create", "secrets", "db"))
			waitEvents(t, b.c, "applied secret create", isEvent("create", "secrets", "applied"))
			waitEvents(t, b.c, "configmap create", isEvent("create", "configmaps", "settings"))
			waitEvents(t, b.c, "secret list", isEvent("list", "secrets", ""))
			waitEvents(t, b.c, "token request", isEvent("create", "serviceaccounts", "robot"))
			events := b.c.snapshot()
			all, err := json.Marshal(events)
			if err != nil {
				t.Fatalf("marshalling received events: %v", err)
			}
			for _, s := range secrets {
				if bytes.Contains(all, []byte(s)) {
					t.Errorf("secret material %.8s… reached the sink", s)
				}
			}
			for _, e := range events {
				if !isEvent("create", "secrets", "db")(e) {
					continue
				}
				if e.RequestObject == nil || !bytes.Contains(e.RequestObject.Raw, []byte(`"name":"db"`)) {
					t.Errorf("secret create lost its metadata: %s", requestOf(e))
				}
				if e.Annotations[RedactedAnnotation] == "" {
					t.Errorf("secret create not marked redacted: %v", e.Annotations)
				}
			}
		})
	}

	if *update {
		rawMu.Lock()
		bodies := rawBodies
		rawMu.Unlock()
		writeTestdata(t, ns, k.AuditLogPath, bodies)
	}
}

func requestOf(e Event) string {
	if e.RequestObject == nil {
		return "<nil>"
	}
	return string(e.RequestObject.Raw)
}

// jwt matches a JSON Web Token, such as a service account's.
var jwt = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// fixtureToken replaces the throwaway cluster's tokens in the fixtures, so
// they hold no credential, not even a dead one, for scanners to flag; the
// redaction tests remove tokens by field, not by their look.
const fixtureToken = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJmaXh0dXJlIn0.Zml4dHVyZQ"

// writeTestdata keeps the test namespace's events, as kube-apiserver sent
// and wrote them (tokens replaced by fixtureToken), for the unit tests.
func writeTestdata(t *testing.T, ns, logPath string, bodies [][]byte) {
	t.Helper()
	mine := func(raw []byte) bool { return bytes.Contains(raw, []byte(`"namespace":"`+ns+`"`)) }
	var list struct {
		Kind       string            `json:"kind"`
		APIVersion string            `json:"apiVersion"`
		Metadata   json.RawMessage   `json:"metadata"`
		Items      []json.RawMessage `json:"items"`
	}
	var items []json.RawMessage
	for _, b := range bodies {
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatalf("decoding a webhook body: %v", err)
		}
		for _, it := range list.Items {
			if mine(it) {
				items = append(items, it)
			}
		}
	}
	list.Items = items
	out, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	out = jwt.ReplaceAll(out, []byte(fixtureToken))
	if err := os.WriteFile("testdata/eventlist.json", out, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, MaxLineSize)
	for sc.Scan() {
		if mine(sc.Bytes()) {
			lines = append(lines, jwt.ReplaceAllString(sc.Text(), fixtureToken))
		}
	}
	if err := os.WriteFile("testdata/audit.log", []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
