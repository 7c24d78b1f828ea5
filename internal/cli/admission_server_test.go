package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// clientPKI makes a CA and a client certificate it signed, as PEM.
func clientPKI(t *testing.T, cn string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test admission client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// warnings collects the warnings the API server returns.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// TestAdmissionThroughServer is gated deployment as a user sets it up: a
// real kube-apiserver that calls `bulwark server --admission-listen` over
// TLS, authenticating with a client certificate (its admission
// configuration names a kubeconfig for the webhook); the webhook
// registered with `bulwark admission register`. The vulnerable fixture
// image from a local registry is denied in an enforced namespace with a
// message naming the rule and the vulnerabilities, through a Pod and
// through a Deployment's template; a clean image is admitted; elsewhere
// the vulnerable image is admitted with warnings; break-glass admits and
// is recorded; every decision is in the API; and with the server stopped
// the cluster still admits (failurePolicy Ignore).
func TestAdmissionThroughServer(t *testing.T) {
	testenv.Integration(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	admAddr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := clientPKI(t, "kube-apiserver")
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	clientCA := write("client-ca.crt", caPEM)
	webhookKubeconfig := write("webhook.kubeconfig", fmt.Appendf(nil, `apiVersion: v1
kind: Config
users:
- name: %q
  user:
    client-certificate-data: %s
    client-key-data: %s
`, admAddr, b64(certPEM), b64(keyPEM)))
	admissionConfig := write("admission.yaml", fmt.Appendf(nil, `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ValidatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: %s
`, webhookKubeconfig))
	kube := testenv.StartKube(t, testenv.KubeOptions{APIServerArgs: []string{"--admission-control-config-file", admissionConfig}})

	reg := testenv.InProcessRegistry(t)
	slimTar := filepath.Join("..", "..", "testdata", "images", "slim.tar")
	reg.PushTarball(t, "app/slim:1.0", slimTar)
	clean, _ := random.Image(256, 1)
	reg.PushImage(t, "app/clean:1.0", clean)
	vulnerable, cleanImage := reg.Host+"/app/slim:1.0", reg.Host+"/app/clean:1.0"

	dataDir := t.TempDir()
	w, err := vulndb.Create(filepath.Join(dataDir, "vulndb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(t.Context(), w, filepath.Join("..", "..", "testdata", "osv")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "http", "--data-dir", dataDir, "--admission-listen", admAddr, "--admission-client-ca", clientCA)
	waitUntil, stop, cli := srv.waitUntil, srv.Stop, srv.cli
	waitUntil("the server", time.Minute, func() (bool, string) { code, out := cli("cluster", "list"); return code == ExitOK, out })

	// The images are scanned, the cluster watched, the webhook registered.
	if code, out := cli("registry", "add", "local", "--type", "oci", "--url", reg.Host, "--insecure"); code != ExitOK {
		t.Fatalf("registry add: %s", out)
	}
	if code, out := cli("cluster", "add", "lab", "--kubeconfig", kube.KubeconfigPath); code != ExitOK {
		t.Fatalf("cluster add: %s", out)
	}
	waitUntil("both images scanned", 3*time.Minute, func() (bool, string) {
		_, out := cli("images", "-f", "json")
		return strings.Count(out, `"scannedAt"`) >= 2, out
	})
	if code, out := cli("admission", "register", "--kubeconfig", kube.KubeconfigPath, "--url", "https://"+admAddr+"/validate/lab",
		"--ca-bundle", filepath.Join(dataDir, "admission", "ca.crt")); code != ExitOK {
		t.Fatalf("admission register: %s", out)
	}

	ws := &warnings{}
	rc := rest.CopyConfig(kube.Config)
	rc.WarningHandler = ws
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	enforced, open := kube.Namespace(t), kube.Namespace(t)
	ns, err := cs.CoreV1().Namespaces().Get(t.Context(), enforced, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels["bulwark.io/enforce"] = "true"
	if _, err := cs.CoreV1().Namespaces().Update(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name, image string, annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	}
	// Until the webhook is called and the connector has seen the label, a
	// probe pod is admitted; then it is denied.
	probe := 0
	waitUntil("the webhook to deny in the enforced namespace", time.Minute, func() (bool, string) {
		probe++
		_, err := cs.CoreV1().Pods(enforced).Create(t.Context(), pod(fmt.Sprintf("probe-%d", probe), vulnerable, nil), metav1.CreateOptions{})
		return err != nil, fmt.Sprint(err)
	})
	ws.take()

	_, err = cs.CoreV1().Pods(enforced).Create(t.Context(), pod("web", vulnerable, nil), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a pod running the vulnerable image was admitted into the enforced namespace")
	}
	for _, want := range []string{"deny-critical-fixable", "CRITICAL, fixed in", "app/slim"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q does not mention %q", err, want)
		}
	}
	if _, err := cs.CoreV1().Pods(enforced).Create(t.Context(), pod("clean", cleanImage, nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("a clean image was refused: %v", err)
	}
	labels := map[string]string{"app": "web"}
	_, err = cs.AppsV1().Deployments(enforced).Create(t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod("", vulnerable, nil).Spec}}}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "deny-critical-fixable") {
		t.Errorf("a Deployment of the vulnerable image: err = %v, want a denial", err)
	}
	ws.take()
	if _, err := cs.CoreV1().Pods(open).Create(t.Context(), pod("web", vulnerable, nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("the vulnerable image was refused outside the enforced namespace: %v", err)
	}
	if got := ws.take(); len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), "warn-high-fixable") {
		t.Errorf("warnings outside the enforced namespace = %q", got)
	}
	_, err = cs.CoreV1().Pods(enforced).Create(t.Context(), pod("hotfix", vulnerable, map[string]string{"bulwark.io/break-glass": "incident 42"}),
		metav1.CreateOptions{})
	if err != nil {
		t.Errorf("break-glass pod refused: %v", err)
	}
	if got := ws.take(); !strings.Contains(strings.Join(got, "\n"), "break-glass") {
		t.Errorf("break-glass warnings = %q", got)
	}

	// Every decision is in the API, with its rule.
	type decision struct {
		Namespace, Name, Action string
		Allowed, BreakGlass     bool
		Rules                   []string
	}
	var decisions []decision
	waitUntil("the decisions to be stored", 30*time.Second, func() (bool, string) {
		code, out := cli("admission", "decisions", "--cluster", "lab", "-f", "json")
		if code != ExitOK || json.Unmarshal([]byte(out), &decisions) != nil {
			return false, out
		}
		var denied, glass bool
		for _, d := range decisions {
			denied = denied || (d.Namespace == enforced && d.Name == "web" && !d.Allowed && d.Action == "deny")
			glass = glass || (d.Name == "hotfix" && d.BreakGlass && d.Allowed)
		}
		return denied && glass, out
	})

	// The webhook authenticates its caller.
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}).Post(
		"https://"+admAddr+"/validate/lab", "application/json", strings.NewReader("{}"))
	if err == nil {
		resp.Body.Close()
		t.Errorf("a request without a client certificate got HTTP %d", resp.StatusCode)
	}

	// A webhook that is down does not block the cluster.
	stop()
	if _, err := cs.CoreV1().Pods(enforced).Create(t.Context(), pod("while-down", vulnerable, nil), metav1.CreateOptions{}); err != nil {
		t.Errorf("with the webhook down, a pod was refused: %v", err)
	}
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }
