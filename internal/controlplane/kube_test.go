package controlplane_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulwarkhq/bulwark/internal/auditlog"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// labCluster is the cluster name the lab's kube-apiserver reports as.
const labCluster = "lab"

// labAuditPolicy records bodies of what the rules read (and of secrets,
// so that redaction is tested end to end) and metadata for the rest.
const labAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: None
    resources:
      - {group: "coordination.k8s.io", resources: ["leases"]}
      - {group: "", resources: ["events"]}
      - {group: "events.k8s.io"}
  - level: RequestResponse
    resources:
      - {group: "", resources: ["pods", "pods/*", "secrets", "serviceaccounts/token", "nodes/proxy"]}
      - {group: "rbac.authorization.k8s.io"}
      - {group: "certificates.k8s.io", resources: ["certificatesigningrequests", "certificatesigningrequests/*"]}
      - {group: "admissionregistration.k8s.io"}
      - {group: "batch"}
      - {group: "apps"}
  - level: Metadata
`

// secretValue is written into a Secret; no stored event may hold it.
const secretValue = "lab-secret-value-correct-horse-battery-staple"

// kubectlAgent is the user agent of kubectl, as the pod attack sends it.
const kubectlAgent = "kubectl/v1.34.0 (linux/amd64) kubernetes/abcdef"

// agent is the user agent of a lab identity's requests.
func agent(actor string) string { return "bulwark-lab/" + actor }

// lab is a kube-apiserver whose audit webhook feeds a pipeline.
type lab struct {
	t       *testing.T
	k       *testenv.Kube
	db      *store.DB
	ctx     context.Context
	kubelet *fakeKubelet
	// tokens are credentials the test obtained; no stored event may hold them.
	tokens []string
}

func startLab(t *testing.T) *lab {
	t.Helper()
	testenv.Integration(t)
	db := openStore(t)
	p, _ := runPipeline(t, db, 200*time.Millisecond)

	const token = "lab-audit-webhook-token-0123456789abcdef"
	wh := auditlog.NewWebhook(p.Sink(labCluster), nil)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		wh.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	kubelet := startFakeKubelet(t)
	k := testenv.StartKube(t, testenv.KubeOptions{
		AuditPolicy:  labAuditPolicy,
		AuditWebhook: &testenv.AuditWebhook{URL: srv.URL + "/audit", CAPEM: caPEM, Token: token},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &lab{t: t, k: k, db: db, ctx: ctx, kubelet: kubelet}
}

// fakeKubelet answers what kube-apiserver forwards to a node's kubelet:
// streaming requests are switched to SPDY and closed at once, anything else
// gets an empty pod list. There is no real kubelet in the lab; this makes
// exec, attach, port-forward and node proxy requests succeed, as the rules
// judge only those.
type fakeKubelet struct {
	ip   string
	port int32
	// global reports whether ip is not loopback: kube-apiserver refuses to
	// proxy to a node at a loopback address (nodes/proxy).
	global bool

	mu    sync.Mutex
	paths []string
}

func startFakeKubelet(t *testing.T) *fakeKubelet {
	t.Helper()
	fk := &fakeKubelet{ip: "127.0.0.1"}
	if ip := globalIP(); ip != "" {
		fk.ip, fk.global = ip, true
	}
	l, err := net.Listen("tcp", net.JoinHostPort(fk.ip, "0"))
	if err != nil {
		t.Fatalf("listening for the fake kubelet: %v", err)
	}
	fk.port = int32(l.Addr().(*net.TCPAddr).Port)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(fk.serve))
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return fk
}

// globalIP returns an address of this host that is neither loopback nor
// link-local, or "".
func globalIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

func (fk *fakeKubelet) serve(w http.ResponseWriter, r *http.Request) {
	fk.mu.Lock()
	fk.paths = append(fk.paths, r.URL.Path)
	fk.mu.Unlock()
	if !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"PodList","apiVersion":"v1","items":[]}`)
		return
	}
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
		"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
	buf.Flush()
}

func (fk *fakeKubelet) reached(prefix string) bool {
	fk.mu.Lock()
	defer fk.mu.Unlock()
	return slices.ContainsFunc(fk.paths, func(p string) bool { return strings.HasPrefix(p, prefix) })
}

// client returns a clientset for cfg, sending agent(actor) as user agent
// unless cfg has one.
func (l *lab) client(cfg *rest.Config, actor string) *kubernetes.Clientset {
	l.t.Helper()
	if cfg.UserAgent == "" {
		cfg.UserAgent = agent(actor)
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		l.t.Fatalf("creating client for %s: %v", actor, err)
	}
	return cs
}

// user returns a client authenticating as user with a client certificate.
func (l *lab) user(name string) (*kubernetes.Clientset, *rest.Config) {
	l.t.Helper()
	cfg, err := l.k.UserConfig(name)
	if err != nil {
		l.t.Fatalf("issuing a client certificate for %s: %v", name, err)
	}
	return l.client(cfg, name), cfg
}

// serviceAccount returns a client authenticating as the service account
// ns/name with a token the admin requested.
func (l *lab) serviceAccount(ns, name string) *kubernetes.Clientset {
	l.t.Helper()
	cfg, err := l.k.ServiceAccountConfig(l.ctx, ns, name)
	if err != nil {
		l.t.Fatal(err)
	}
	l.tokens = append(l.tokens, cfg.BearerToken)
	return l.client(cfg, serviceAccountUser(ns, name))
}

func serviceAccountUser(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func serviceAccountSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

// grant gives subjects rules, as the admin: in namespace ns with a Role, or
// cluster-wide with a ClusterRole when ns is "".
func (l *lab) grant(name, ns string, subjects []rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	l.t.Helper()
	rbac := l.k.Client.RbacV1()
	meta := metav1.ObjectMeta{Name: "lab-" + name, Namespace: ns}
	var err error
	if ns == "" {
		if _, err = rbac.ClusterRoles().Create(l.ctx, &rbacv1.ClusterRole{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err == nil {
			_, err = rbac.ClusterRoleBindings().Create(l.ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: meta.Name}}, metav1.CreateOptions{})
		}
	} else {
		if _, err = rbac.Roles(ns).Create(l.ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err == nil {
			_, err = rbac.RoleBindings(ns).Create(l.ctx, &rbacv1.RoleBinding{ObjectMeta: meta, Subjects: subjects,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name}}, metav1.CreateOptions{})
		}
	}
	if err != nil {
		l.t.Fatalf("granting %s in namespace %q: %v", name, ns, err)
	}
	l.waitAllowed(name, ns, subjects[0], rules[0])
}

// waitAllowed waits until the authorizer, which learns of roles from a
// watch, allows subject the first verb of r.
func (l *lab) waitAllowed(name, ns string, subject rbacv1.Subject, r rbacv1.PolicyRule) {
	l.t.Helper()
	user := subject.Name
	if subject.Kind == rbacv1.ServiceAccountKind {
		user = serviceAccountUser(subject.Namespace, subject.Name)
	}
	resource, sub, _ := strings.Cut(r.Resources[0], "/")
	attrs := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: resource, Subresource: sub}
	if len(r.ResourceNames) > 0 {
		attrs.Name = r.ResourceNames[0]
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: attrs}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := l.k.Client.AuthorizationV1().SubjectAccessReviews().Create(l.ctx, review, metav1.CreateOptions{})
		if err != nil {
			l.t.Fatalf("checking grant %s: %v", name, err)
		}
		if got.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("grant %s: %s may still not %s %s after 10s: %s", name, user, attrs.Verb, r.Resources[0], got.Status.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func rule(groups, resources, verbs []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs, ResourceNames: names}
}

var core = []string{""}

// pod is a pod of one container that no node runs.
func pod(name string, mutate func(*corev1.PodSpec)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}}}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

func hostPathVolume(path string) func(*corev1.PodSpec) {
	return func(s *corev1.PodSpec) {
		s.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}}
		s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
	}
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod(name, nil).Spec},
	}}
}

// upgrade opens a streaming subresource of a pod the way kubectl's SPDY
// executor does and closes it once kube-apiserver switched protocols.
func (l *lab) upgrade(cfg *rest.Config, ns, pod, subresource, query string) error {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return fmt.Errorf("TLS configuration: %w", err)
	}
	// HTTP/1.1: an upgrade cannot be carried over HTTP/2.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 20 * time.Second}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/%s?%s", cfg.Host, ns, pod, subresource, query)
	req, err := http.NewRequestWithContext(l.ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", cfg.UserAgent)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", subresource, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		return fmt.Errorf("POST %s: status %s: %s", subresource, resp.Status, body.String())
	}
	return nil
}

// csrPEM is a PEM certificate signing request for commonName.
func csrPEM(t *testing.T, commonName string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating CSR key: %v", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}, key)
	if err != nil {
		t.Fatalf("creating CSR: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// expected is an alert an attack must raise.
type expected struct {
	rule, technique string
	actor, agent    string
	verb            string
	resource, sub   string
	namespace, name string
	// minCount is the least Count (threshold rules); 0 means 1.
	minCount int
}

func (e expected) String() string {
	return fmt.Sprintf("%s by %s (%s %s/%s %s/%s)", e.rule, e.actor, e.verb, e.resource, e.sub, e.namespace, e.name)
}

func (e expected) matches(a store.Alert) bool {
	return a.RuleID == e.rule && a.Actor == e.actor && a.Verb == e.verb && a.Resource == e.resource &&
		a.Subresource == e.sub && a.Namespace == e.namespace && a.Name == e.name
}

// The attacks of the issue, each by its own identity against a real
// kube-apiserver whose audit webhook is Bulwark's: every one raises its
// rule's alert, ordinary work raises none, and no secret reaches the store.
func TestKubeAttacksRaiseAlerts(t *testing.T) {
	l := startLab(t)
	admin := l.k.Client
	ctx := l.ctx
	ns := l.k.Namespace(t)
	opsNS := l.k.Namespace(t)
	var want []expected
	expect := func(e expected) { want = append(want, e) }
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// A node whose kubelet is the fake one, and a pod on it.
	const nodeName = "lab-node"
	_, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: l.kubelet.ip}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: l.kubelet.port}},
		}}, metav1.CreateOptions{})
	check("creating node", err)
	_, err = admin.CoreV1().Pods(ns).Create(ctx, pod("web", func(s *corev1.PodSpec) { s.NodeName = nodeName }), metav1.CreateOptions{})
	check("creating target pod", err)

	// Ordinary work first: a namespaced editor, and the admin looking around.
	l.grant("devops", opsNS, []rbacv1.Subject{userSubject("devops")},
		rule(core, []string{"configmaps", "services"}, []string{"get", "list", "watch", "create", "update", "patch", "delete"}),
		rule(core, []string{"pods"}, []string{"get", "list", "watch"}),
		rule([]string{"apps"}, []string{"deployments", "deployments/scale"}, []string{"get", "list", "watch", "create", "update", "patch", "delete"}))
	devops, _ := l.user("devops")
	ordinaryWork(t, ctx, devops, opsNS)
	_, err = admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	check("admin listing namespaces", err)
	_, err = admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		StringData: map[string]string{"password": secretValue}}, metav1.CreateOptions{})
	check("creating secret", err)

	// 1. exec, attach and port-forward.
	for _, s := range []struct{ actor, sub, rule, technique, query string }{
		{"exec-eve", "exec", "pod-exec", "T1609", "command=id&container=app&stdout=true&stderr=true"},
		{"attach-ann", "attach", "pod-attach", "T1609", "container=app&stdout=true&stderr=true"},
		{"forward-finn", "portforward", "pod-portforward", "T1572", "ports=8080"},
	} {
		l.grant(s.actor, ns, []rbacv1.Subject{userSubject(s.actor)}, rule(core, []string{"pods"}, []string{"get"}),
			rule(core, []string{"pods/" + s.sub}, []string{"get", "create"}))
		_, cfg := l.user(s.actor)
		check(s.actor+" opening "+s.sub, l.upgrade(cfg, ns, "web", s.sub, s.query))
		expect(expected{rule: s.rule, technique: s.technique, actor: s.actor, verb: "create", resource: "pods", sub: s.sub, namespace: ns, name: "web"})
	}

	// 2. Pods that escape to the host.
	escapes := []struct {
		actor, pod, rule, technique string
		spec                        func(*corev1.PodSpec)
	}{
		{"priv-paul", "privileged", "privileged-container", "T1611", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: new(true)}
		}},
		{"pid-pia", "hostpid", "host-pid-ipc", "T1611", func(s *corev1.PodSpec) { s.HostPID = true }},
		{"net-nick", "hostnet", "host-network", "T1611", func(s *corev1.PodSpec) { s.HostNetwork = true }},
		{"root-rita", "hostroot", "hostpath-root", "T1611", hostPathVolume("/")},
		{"sock-sam", "dockersock", "hostpath-runtime-socket", "T1611", hostPathVolume("/var/run/docker.sock")},
	}
	var creators []rbacv1.Subject
	for _, e := range escapes {
		creators = append(creators, userSubject(e.actor))
	}
	l.grant("pod-creators", ns, creators, rule(core, []string{"pods"}, []string{"create"}))
	for _, e := range escapes {
		cs, _ := l.user(e.actor)
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod(e.pod, e.spec), metav1.CreateOptions{})
		check(e.actor+" creating pod "+e.pod, err)
		expect(expected{rule: e.rule, technique: e.technique, actor: e.actor, verb: "create", resource: "pods", namespace: ns, name: e.pod})
	}

	// 3. RBAC: a binding to cluster-admin, a cluster-wide binding to a
	// service account, a wildcard role.
	rbacGroup := []string{rbacv1.GroupName}
	l.grant("mallory", "", []rbacv1.Subject{userSubject("mallory")},
		rule(rbacGroup, []string{"clusterrolebindings"}, []string{"create"}),
		rule(rbacGroup, []string{"clusterroles"}, []string{"bind"}, "cluster-admin"))
	mallory, _ := l.user("mallory")
	_, err = mallory.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mallory-admin"},
		Subjects: []rbacv1.Subject{userSubject("mallory")},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}}, metav1.CreateOptions{})
	check("mallory binding cluster-admin", err)
	expect(expected{rule: "cluster-admin-binding", technique: "T1098.006", actor: "mallory", verb: "create", resource: "clusterrolebindings", name: "mallory-admin"})

	_, err = admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	check("creating service account robot", err)
	l.grant("bind-bob", "", []rbacv1.Subject{userSubject("bind-bob")},
		rule(rbacGroup, []string{"clusterrolebindings"}, []string{"create"}),
		rule(rbacGroup, []string{"clusterroles"}, []string{"bind"}, "view"))
	bob, _ := l.user("bind-bob")
	_, err = bob.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "robot-view"},
		Subjects: []rbacv1.Subject{serviceAccountSubject(ns, "robot")},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}}, metav1.CreateOptions{})
	check("bind-bob binding view to a service account", err)
	expect(expected{rule: "clusterrolebinding-to-serviceaccount", technique: "T1098.006", actor: "bind-bob", verb: "create", resource: "clusterrolebindings", name: "robot-view"})

	l.grant("wild-will", ns, []rbacv1.Subject{userSubject("wild-will")}, rule(rbacGroup, []string{"roles"}, []string{"create", "escalate"}))
	will, _ := l.user("wild-will")
	_, err = will.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Rules: []rbacv1.PolicyRule{rule(core, []string{"configmaps"}, []string{"*"})}}, metav1.CreateOptions{})
	check("wild-will creating a wildcard role", err)
	expect(expected{rule: "wildcard-role", technique: "T1098.006", actor: "wild-will", verb: "create", resource: "roles", namespace: ns, name: "everything"})

	// 4. An anonymous request that succeeds.
	l.grant("anonymous", "", []rbacv1.Subject{userSubject("system:anonymous")}, rule(core, []string{"namespaces"}, []string{"get"}))
	anonymous := l.client(&rest.Config{Host: l.k.Host, TLSClientConfig: rest.TLSClientConfig{CAData: l.k.CA.CertPEM}}, "anonymous")
	_, err = anonymous.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	check("anonymous get namespace", err)
	expect(expected{rule: "anonymous-request-allowed", technique: "T1078.001", actor: "system:anonymous", agent: agent("anonymous"),
		verb: "get", resource: "namespaces", namespace: ns, name: ns})

	// 5. A service account reads secrets.
	l.grant("harvester", ns, []rbacv1.Subject{serviceAccountSubject(ns, "harvester")}, rule(core, []string{"secrets"}, []string{"get", "list"}))
	harvester := l.serviceAccount(ns, "harvester")
	_, err = harvester.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	check("harvester listing secrets", err)
	expect(expected{rule: "secrets-read-by-serviceaccount", technique: "T1552.007", actor: serviceAccountUser(ns, "harvester"),
		verb: "list", resource: "secrets", namespace: ns})

	// 6. A user requests a service account's token.
	l.grant("token-tina", ns, []rbacv1.Subject{userSubject("token-tina")}, rule(core, []string{"serviceaccounts/token"}, []string{"create"}, "robot"))
	tina, _ := l.user("token-tina")
	tr, err := tina.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	check("token-tina requesting a token", err)
	l.tokens = append(l.tokens, tr.Status.Token)
	expect(expected{rule: "serviceaccount-token-request", technique: "T1528", actor: "token-tina", verb: "create", resource: "serviceaccounts", sub: "token", namespace: ns, name: "robot"})

	// 7. A workload in kube-system; a CronJob.
	l.grant("sys-sid", "kube-system", []rbacv1.Subject{userSubject("sys-sid")}, rule([]string{"apps"}, []string{"deployments"}, []string{"create"}))
	sid, _ := l.user("sys-sid")
	_, err = sid.AppsV1().Deployments("kube-system").Create(ctx, deployment("kube-proxy-helper"), metav1.CreateOptions{})
	check("sys-sid creating a deployment in kube-system", err)
	expect(expected{rule: "workload-in-kube-system", technique: "T1036.005", actor: "sys-sid", verb: "create", resource: "deployments", namespace: "kube-system", name: "kube-proxy-helper"})

	l.grant("cron-carl", ns, []rbacv1.Subject{userSubject("cron-carl")}, rule([]string{"batch"}, []string{"cronjobs"}, []string{"create"}))
	carl, _ := l.user("cron-carl")
	_, err = carl.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "backup"}, Spec: batchv1.CronJobSpec{
		Schedule: "*/5 * * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: pod("backup", func(s *corev1.PodSpec) { s.RestartPolicy = corev1.RestartPolicyNever }).Spec}}},
	}}, metav1.CreateOptions{})
	check("cron-carl creating a cronjob", err)
	expect(expected{rule: "cronjob-created", technique: "T1053.007", actor: "cron-carl", verb: "create", resource: "cronjobs", namespace: ns, name: "backup"})

	// 8. Impersonation of another user.
	l.grant("victim-vic", ns, []rbacv1.Subject{userSubject("victim-vic")}, rule(core, []string{"configmaps"}, []string{"list"}))
	l.grant("imp-ivan", "", []rbacv1.Subject{userSubject("imp-ivan")}, rule(core, []string{"users"}, []string{"impersonate"}, "victim-vic"))
	_, ivanCfg := l.user("imp-ivan")
	ivanCfg = rest.CopyConfig(ivanCfg)
	ivanCfg.Impersonate = rest.ImpersonationConfig{UserName: "victim-vic"}
	_, err = l.client(ivanCfg, "imp-ivan").CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	check("imp-ivan listing configmaps as victim-vic", err)
	expect(expected{rule: "impersonation", technique: "T1078", actor: "imp-ivan", verb: "list", resource: "configmaps", namespace: ns})

	// 9. A user approves a client certificate.
	certs := []string{certificatesv1.GroupName}
	l.grant("csr-carol", "", []rbacv1.Subject{userSubject("csr-carol")},
		rule(certs, []string{"certificatesigningrequests"}, []string{"create", "get"}),
		rule(certs, []string{"certificatesigningrequests/approval"}, []string{"update"}),
		rule(certs, []string{"signers"}, []string{"approve"}, certificatesv1.KubeAPIServerClientSignerName))
	carol, _ := l.user("csr-carol")
	csr, err := carol.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "lab-csr"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: csrPEM(t, "csr-victim"), SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}},
	}, metav1.CreateOptions{})
	check("csr-carol creating a CSR", err)
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "LabApproved", Message: "approved by the lab"})
	_, err = carol.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	check("csr-carol approving the CSR", err)
	expect(expected{rule: "csr-approval", technique: "T1649", actor: "csr-carol", verb: "update", resource: "certificatesigningrequests", sub: "approval", name: "lab-csr"})

	// 10. The kubelet API through nodes/proxy.
	if l.kubelet.global {
		l.grant("proxy-pete", "", []rbacv1.Subject{userSubject("proxy-pete")}, rule(core, []string{"nodes/proxy"}, []string{"get"}))
		pete, _ := l.user("proxy-pete")
		_, err = pete.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + nodeName + "/proxy/pods").DoRaw(ctx)
		check("proxy-pete calling the kubelet through nodes/proxy", err)
		expect(expected{rule: "node-proxy", technique: "T1609", actor: "proxy-pete", verb: "get", resource: "nodes", sub: "proxy", name: nodeName})
	} else {
		t.Logf("no global unicast address on this host: kube-apiserver refuses nodes/proxy to loopback, so node-proxy is not tested")
	}

	// 11. An admission webhook created and deleted.
	l.grant("hook-hank", "", []rbacv1.Subject{userSubject("hook-hank")},
		rule([]string{admissionregistrationv1.GroupName}, []string{"validatingwebhookconfigurations"}, []string{"create", "delete"}))
	hank, _ := l.user("hook-hank")
	hook := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "lab-hook"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "lab.bulwark.test",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: new("https://127.0.0.1:1/validate")},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"lab.bulwark.test"}, APIVersions: []string{"v1"}, Resources: []string{"widgets"}}}},
			FailurePolicy:           new(admissionregistrationv1.Ignore),
			SideEffects:             new(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}}}
	_, err = hank.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, hook, metav1.CreateOptions{})
	check("hook-hank creating a webhook", err)
	check("hook-hank deleting the webhook", hank.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, hook.Name, metav1.DeleteOptions{}))
	for _, verb := range []string{"create", "delete"} {
		expect(expected{rule: "admission-control-changed", technique: "T1562.001", actor: "hook-hank", verb: verb, resource: "validatingwebhookconfigurations", name: "lab-hook"})
	}

	// 12. kubectl with a pod's token.
	_, err = admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{})
	check("creating service account builder", err)
	builderPod, err := admin.CoreV1().Pods(ns).Create(ctx, pod("builder", func(s *corev1.PodSpec) { s.ServiceAccountName = "builder" }), metav1.CreateOptions{})
	check("creating pod builder", err)
	bound, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "builder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: builderPod.Name, UID: builderPod.UID}}}, metav1.CreateOptions{})
	check("requesting a token bound to pod builder", err)
	l.tokens = append(l.tokens, bound.Status.Token)
	l.grant("builder", ns, []rbacv1.Subject{serviceAccountSubject(ns, "builder")}, rule(core, []string{"pods"}, []string{"create"}))
	kubectl := l.client(&rest.Config{Host: l.k.Host, BearerToken: bound.Status.Token, UserAgent: kubectlAgent,
		TLSClientConfig: rest.TLSClientConfig{CAData: l.k.CA.CertPEM}}, serviceAccountUser(ns, "builder"))
	_, err = kubectl.CoreV1().Pods(ns).Create(ctx, pod("kubectl-made", nil), metav1.CreateOptions{})
	check("kubectl in pod builder creating a pod", err)
	expect(expected{rule: "kubectl-from-pod", technique: "T1610", actor: serviceAccountUser(ns, "builder"), agent: kubectlAgent,
		verb: "create", resource: "pods", namespace: ns, name: "kubectl-made"})

	// 13. A burst of refused requests.
	polly, _ := l.user("probe-polly")
	for i := range 25 {
		if _, err := polly.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("probe-polly listing secrets, attempt %d: got %v, want forbidden", i+1, err)
		}
	}
	expect(expected{rule: "forbidden-burst", technique: "T1613", actor: "probe-polly", verb: "list", resource: "secrets", namespace: ns, minCount: 20})

	for _, sub := range []string{"/exec/", "/attach/", "/portForward/"} {
		if !l.kubelet.reached(sub) {
			t.Errorf("kube-apiserver never forwarded a %s request to the fake kubelet", sub)
		}
	}

	alerts := l.waitAlerts(want)
	events := l.storedEvents()
	for _, w := range want {
		checkAlert(t, w, alerts, events)
	}
	// Setup is the admin's: its token requests and roles granting bind,
	// escalate or impersonate are alerts too. Nothing else may alert:
	// neither the ordinary work nor any attack beyond its own rule.
	tolerated := map[string]bool{"serviceaccount-token-request": true, "rbac-escalation-verbs": true}
	for _, a := range alerts {
		if slices.ContainsFunc(want, func(w expected) bool { return w.matches(a) }) || a.Actor == "admin" && tolerated[a.RuleID] {
			continue
		}
		t.Errorf("unexpected alert %s by %s: %s (%s %s/%s %s/%s)", a.RuleID, a.Actor, a.Summary, a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name)
	}
	checkOrdinaryWorkStored(t, events, opsNS)
	checkNoSecrets(t, events, append(l.tokens, secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue))))
}

// ordinaryWork is what a developer with edit rights in ns does all day.
func ordinaryWork(t *testing.T, ctx context.Context, cs *kubernetes.Clientset, ns string) {
	t.Helper()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("devops %s: %v", what, err)
		}
	}
	_, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	check("listing pods", err)
	timeout := int64(1)
	w, err := cs.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{TimeoutSeconds: &timeout})
	check("watching configmaps", err)
	for range w.ResultChan() {
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"level": "info"}}, metav1.CreateOptions{})
	check("creating configmap", err)
	cm.Data["level"] = "debug"
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	check("updating configmap", err)
	_, err = cms.Get(ctx, "settings", metav1.GetOptions{})
	check("getting configmap", err)

	deps := cs.AppsV1().Deployments(ns)
	_, err = deps.Create(ctx, deployment("api"), metav1.CreateOptions{})
	check("creating deployment", err)
	scale, err := deps.GetScale(ctx, "api", metav1.GetOptions{})
	check("getting scale", err)
	scale.Spec.Replicas = 3
	_, err = deps.UpdateScale(ctx, "api", scale, metav1.UpdateOptions{})
	check("scaling deployment", err)
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	check("creating service", err)
	_, err = cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	check("listing services", err)
	check("deleting service", cs.CoreV1().Services(ns).Delete(ctx, "api", metav1.DeleteOptions{}))
	check("deleting deployment", deps.Delete(ctx, "api", metav1.DeleteOptions{}))
	check("deleting configmap", cms.Delete(ctx, "settings", metav1.DeleteOptions{}))
}

// waitAlerts polls the store until every expected alert is there, and
// returns all the cluster's alerts.
func (l *lab) waitAlerts(want []expected) []store.Alert {
	l.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		alerts := l.alerts()
		var missing []string
		for _, w := range want {
			if !slices.ContainsFunc(alerts, func(a store.Alert) bool { return w.matches(a) && a.Count >= max(w.minCount, 1) }) {
				missing = append(missing, w.String())
			}
		}
		if len(missing) == 0 {
			// Let a batch whose events were stored finish saving its alerts.
			time.Sleep(500 * time.Millisecond)
			return l.alerts()
		}
		if time.Now().After(deadline) {
			for _, a := range alerts {
				l.t.Logf("alert: %s by %s (%s %s/%s %s/%s) count %d", a.RuleID, a.Actor, a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name, a.Count)
			}
			l.t.Fatalf("alerts missing after 45s:\n%s", strings.Join(missing, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *lab) alerts() []store.Alert {
	l.t.Helper()
	var all []store.Alert
	page := store.Page{Limit: store.MaxPageSize}
	for {
		alerts, next, err := l.db.Alerts(l.ctx, store.AlertFilter{Cluster: labCluster}, page)
		if err != nil {
			l.t.Fatalf("listing alerts: %v", err)
		}
		all = append(all, alerts...)
		if next == "" {
			return all
		}
		page.Cursor = next
	}
}

// storedEvents returns every stored audit event of the lab by audit id.
func (l *lab) storedEvents() map[string]store.AuditEvent {
	l.t.Helper()
	out := map[string]store.AuditEvent{}
	page := store.Page{Limit: store.MaxPageSize}
	for {
		events, next, err := l.db.AuditEvents(l.ctx, store.AuditEventFilter{Cluster: labCluster}, page)
		if err != nil {
			l.t.Fatalf("listing audit events: %v", err)
		}
		for _, e := range events {
			out[e.AuditID] = e
		}
		if next == "" {
			return out
		}
		page.Cursor = next
	}
}

// checkAlert checks the alert of w: who, from where, with what, and that
// its evidence is stored.
func checkAlert(t *testing.T, w expected, alerts []store.Alert, events map[string]store.AuditEvent) {
	t.Helper()
	i := slices.IndexFunc(alerts, w.matches)
	if i < 0 {
		t.Errorf("no alert %s", w)
		return
	}
	a := alerts[i]
	wantAgent := w.agent
	if wantAgent == "" {
		wantAgent = agent(w.actor)
	}
	if a.TechniqueID != w.technique {
		t.Errorf("alert %s: technique %q, want %q", w, a.TechniqueID, w.technique)
	}
	if a.SourceIP != "127.0.0.1" {
		t.Errorf("alert %s: source IP %q, want 127.0.0.1", w, a.SourceIP)
	}
	if a.UserAgent != wantAgent {
		t.Errorf("alert %s: user agent %q, want %q", w, a.UserAgent, wantAgent)
	}
	if a.Count < max(w.minCount, 1) {
		t.Errorf("alert %s: count %d, want at least %d", w, a.Count, max(w.minCount, 1))
	}
	if len(a.Events) == 0 {
		t.Errorf("alert %s names no audit events", w)
	}
	for _, id := range a.Events {
		e, ok := events[id]
		switch {
		case !ok:
			t.Errorf("alert %s: evidence %s is not a stored audit event", w, id)
		case e.User != w.actor:
			t.Errorf("alert %s: evidence %s is an event of %q", w, id, e.User)
		}
	}
}

// checkOrdinaryWorkStored makes sure the ordinary work reached the store,
// so that its having no alert means something.
func checkOrdinaryWorkStored(t *testing.T, events map[string]store.AuditEvent, ns string) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range events {
		if e.User == "devops" && e.Namespace == ns {
			seen[e.Verb+" "+e.Resource] = true
		}
	}
	for _, op := range []string{"list pods", "watch configmaps", "create configmaps", "update configmaps", "delete configmaps",
		"create deployments", "update deployments", "create services", "delete services", "delete deployments"} {
		if !seen[op] {
			t.Errorf("devops's %q is not among the stored audit events", op)
		}
	}
}

// checkNoSecrets checks that no stored event holds any of secrets.
func checkNoSecrets(t *testing.T, events map[string]store.AuditEvent, secrets []string) {
	t.Helper()
	var secretEvents int
	for _, e := range events {
		if e.Resource == "secrets" && e.Name == "db" && e.Verb == "create" {
			secretEvents++
			var ev auditlog.Event
			if err := json.Unmarshal(e.Event, &ev); err != nil {
				t.Errorf("stored event %s is not an audit event: %v", e.AuditID, err)
			} else if ev.RequestObject == nil {
				t.Errorf("stored secret creation %s has no request object: the redaction test tests nothing", e.AuditID)
			}
		}
		for _, s := range secrets {
			if bytes.Contains(e.Event, []byte(s)) {
				t.Errorf("stored audit event %s (%s %s/%s) holds secret material %.8s…", e.AuditID, e.Verb, e.Resource, e.Subresource, s)
			}
		}
	}
	if secretEvents != 1 {
		t.Errorf("stored %d events of the secret's creation, want 1", secretEvents)
	}
}
