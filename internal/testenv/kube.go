package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeOptions choose what a Kubernetes control plane runs with. The zero
// value is etcd and kube-apiserver alone: enough to create and read objects.
type KubeOptions struct {
	// Controllers also starts kube-controller-manager and kube-scheduler:
	// garbage collection, workload controllers, default service accounts,
	// and pods scheduled onto nodes.
	Controllers bool
	// Kwok starts kwok and registers a fake node, KwokNode, whose pods kwok
	// marks Running. Without Controllers, pods must name it in
	// spec.nodeName.
	Kwok bool
	// AuditLog writes audit events as JSON lines to Kube.AuditLogPath.
	AuditLog bool
	// AuditWebhook sends audit events, in batches, to a receiver.
	AuditWebhook *AuditWebhook
	// AuditPolicy replaces DefaultAuditPolicy.
	AuditPolicy string
	// APIServerArgs are added to kube-apiserver's command line.
	APIServerArgs []string
}

// AuditWebhook is where kube-apiserver posts audit.k8s.io/v1 EventList
// batches. kube-apiserver appends "?timeout=…" to URL.
type AuditWebhook struct {
	URL   string
	CAPEM []byte // the CA that signed the receiver's serving certificate
	Token string // sent as a bearer token, when set
}

// KwokNode is the fake node kwok manages when KubeOptions.Kwok is set.
const KwokNode = "kwok-node-0"

// DefaultAuditPolicy records request and response bodies for the resources
// attacks touch and metadata for everything else.
const DefaultAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/version"]
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
  - level: RequestResponse
    resources:
      - {group: "", resources: ["pods", "pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token"]}
      - {group: "rbac.authorization.k8s.io"}
      - {group: "admissionregistration.k8s.io"}
  - level: Metadata
`

// Kube is a running Kubernetes control plane on loopback.
type Kube struct {
	// Host is the API server's URL.
	Host string
	// CA signs the API server's certificate and every client certificate.
	CA *CA
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// KubeconfigPath is a kubeconfig file for Config.
	KubeconfigPath string
	// AuditLogPath is the audit log, when KubeOptions.AuditLog is set.
	AuditLogPath string

	dir string
}

// StartKube starts a control plane for one test; it is stopped when the
// test ends.
func StartKube(t testing.TB, opts KubeOptions) *Kube {
	t.Helper()
	Integration(t)
	k, err := startKube(t, opts)
	if err != nil {
		fatal(t, "starting Kubernetes", err)
	}
	return k
}

// SharedKube returns a control plane shared by all tests of the package
// that ask for the same options; it starts on first use and stops when the
// package's tests end (TestMain must call Main). Tests keep apart by working
// in their own namespace (see Namespace).
func SharedKube(t testing.TB, opts KubeOptions) *Kube {
	t.Helper()
	Integration(t)
	key, err := json.Marshal(opts)
	if err != nil {
		t.Fatalf("encoding kube options: %v", err)
	}
	return sharedComponent(t, "kube "+string(key), func(s scope) (*Kube, error) { return startKube(s, opts) })
}

// kubeBinaries are the programs a control plane with given options runs.
type kubeBinaries struct {
	etcd, apiserver, controllerManager, scheduler, kwok string
}

func findKubeBinaries(opts KubeOptions) (kubeBinaries, error) {
	var b kubeBinaries
	var err error
	find := func(dst *string, component, version, name string) {
		if err == nil {
			*dst, err = builtBinary(component, version, name)
		}
	}
	find(&b.etcd, "etcd", EtcdVersion, "etcd")
	find(&b.apiserver, "k8s", KubernetesVersion, "kube-apiserver")
	if opts.Controllers {
		find(&b.controllerManager, "k8s", KubernetesVersion, "kube-controller-manager")
		find(&b.scheduler, "k8s", KubernetesVersion, "kube-scheduler")
	}
	if opts.Kwok {
		find(&b.kwok, "kwok", KwokVersion, "kwok")
	}
	return b, err
}

func startKube(s scope, opts KubeOptions) (*Kube, error) {
	bins, err := findKubeBinaries(opts)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bulwark-kube-")
	if err != nil {
		return nil, fmt.Errorf("creating kube directory: %w", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	logs, err := logDir(s, "kube")
	if err != nil {
		return nil, err
	}
	k := &Kube{dir: dir}
	if err := k.writePKI(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	etcdURL, err := startEtcd(s, logs, dir, bins.etcd)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	k.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	args, err := k.apiserverArgs(opts, port, etcdURL)
	if err != nil {
		return nil, err
	}
	api, err := startProcess(logs, "kube-apiserver", processOptions{}, bins.apiserver, args...)
	if err != nil {
		return nil, err
	}
	s.Cleanup(func() { api.Stop(10 * time.Second) })

	k.Config = k.clientConfig()
	if k.Client, err = kubernetes.NewForConfig(k.Config); err != nil {
		return nil, fmt.Errorf("creating kube client: %w", err)
	}
	if k.KubeconfigPath, err = WriteKubeconfig(dir, "admin", k.Config); err != nil {
		return nil, err
	}
	err = waitFor(ctx, "kube-apiserver /readyz", api, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := k.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	if opts.Controllers {
		if err := k.startControllers(ctx, s, logs, bins); err != nil {
			return nil, err
		}
	}
	if opts.Kwok {
		if err := k.startKwok(ctx, s, logs, bins.kwok); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (k *Kube) writePKI() error {
	ca, err := NewCA("bulwark-testenv-kube-ca")
	if err != nil {
		return err
	}
	k.CA = ca
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	if err := (KeyPair{CertPEM: ca.CertPEM, KeyPEM: caKey}).writeFiles(k.dir, "ca"); err != nil {
		return err
	}
	pairs := map[string]func() (KeyPair, error){
		"apiserver": func() (KeyPair, error) {
			return ca.ServerCert("127.0.0.1", "10.0.0.1", "localhost", "kubernetes", "kubernetes.default",
				"kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
		},
		"admin":              func() (KeyPair, error) { return ca.ClientCert("admin", "system:masters") },
		"apiserver-kubelet":  func() (KeyPair, error) { return ca.ClientCert("kube-apiserver-kubelet-client", "system:masters") },
		"controller-manager": func() (KeyPair, error) { return ca.ClientCert("system:kube-controller-manager") },
		"scheduler":          func() (KeyPair, error) { return ca.ClientCert("system:kube-scheduler") },
	}
	for name, issue := range pairs {
		kp, err := issue()
		if err != nil {
			return err
		}
		if err := kp.writeFiles(k.dir, name); err != nil {
			return err
		}
	}
	// Service-account tokens are signed with RSA, which every consumer of
	// them (and every older verifier) accepts.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return fmt.Errorf("encoding service-account public key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, "sa.key"), pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)), 0o600); err != nil {
		return fmt.Errorf("writing service-account key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(k.dir, "sa.pub"), pemBlock("PUBLIC KEY", pub), 0o644); err != nil {
		return fmt.Errorf("writing service-account public key: %w", err)
	}
	return nil
}

func (k *Kube) path(name string) string { return filepath.Join(k.dir, name) }

// startEtcd runs a single-member etcd on loopback and returns its client URL.
func startEtcd(s scope, logs, dir, bin string) (string, error) {
	clientPort, err := FreePort()
	if err != nil {
		return "", err
	}
	peerPort, err := FreePort()
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := startProcess(logs, "etcd", processOptions{}, bin,
		"--name", "testenv", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "testenv="+peerURL,
		"--unsafe-no-fsync", "--log-level", "warn")
	if err != nil {
		return "", err
	}
	s.Cleanup(func() { p.Stop(10 * time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = waitFor(ctx, "etcd /health", p, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		code, err := httpStatus(ctx, clientURL+"/health")
		return code == http.StatusOK, err
	})
	return clientURL, err
}

func (k *Kube) apiserverArgs(opts KubeOptions, port int, etcdURL string) ([]string, error) {
	args := []string{
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port), "--cert-dir", k.path("apiserver-certs"),
		"--etcd-servers", etcdURL,
		"--tls-cert-file", k.path("apiserver.crt"), "--tls-private-key-file", k.path("apiserver.key"),
		"--client-ca-file", k.path("ca.crt"),
		"--kubelet-client-certificate", k.path("apiserver-kubelet.crt"),
		"--kubelet-client-key", k.path("apiserver-kubelet.key"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", k.path("sa.pub"),
		"--service-account-signing-key-file", k.path("sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--allow-privileged=true",
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--endpoint-reconciler-type", "none",
	}
	if opts.AuditLog || opts.AuditWebhook != nil {
		policy := opts.AuditPolicy
		if policy == "" {
			policy = DefaultAuditPolicy
		}
		if err := os.WriteFile(k.path("audit-policy.yaml"), []byte(policy), 0o644); err != nil {
			return nil, fmt.Errorf("writing audit policy: %w", err)
		}
		args = append(args, "--audit-policy-file", k.path("audit-policy.yaml"))
	}
	if opts.AuditLog {
		k.AuditLogPath = k.path("audit.log")
		args = append(args, "--audit-log-path", k.AuditLogPath, "--audit-log-format", "json",
			"--audit-log-maxsize", "100", "--audit-log-maxbackup", "2")
	}
	if wh := opts.AuditWebhook; wh != nil {
		sink := &rest.Config{Host: wh.URL, BearerToken: wh.Token, TLSClientConfig: rest.TLSClientConfig{CAData: wh.CAPEM}}
		path, err := WriteKubeconfig(k.dir, "audit-webhook", sink)
		if err != nil {
			return nil, err
		}
		args = append(args, "--audit-webhook-config-file", path, "--audit-webhook-mode", "batch",
			"--audit-webhook-batch-max-wait", "1s", "--audit-webhook-initial-backoff", "1s")
	}
	return append(args, opts.APIServerArgs...), nil
}

// clientConfig is the admin client configuration.
func (k *Kube) clientConfig() *rest.Config {
	return &rest.Config{
		Host: k.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAFile:   k.path("ca.crt"),
			CertFile: k.path("admin.crt"),
			KeyFile:  k.path("admin.key"),
		},
		QPS:   100,
		Burst: 200,
	}
}

func (k *Kube) startControllers(ctx context.Context, s scope, logs string, bins kubeBinaries) error {
	cmPort, err := FreePort()
	if err != nil {
		return err
	}
	schedPort, err := FreePort()
	if err != nil {
		return err
	}
	cmConfig, err := WriteKubeconfig(k.dir, "controller-manager", k.certConfig("controller-manager"))
	if err != nil {
		return err
	}
	schedConfig, err := WriteKubeconfig(k.dir, "scheduler", k.certConfig("scheduler"))
	if err != nil {
		return err
	}
	cm, err := startProcess(logs, "kube-controller-manager", processOptions{}, bins.controllerManager,
		"--kubeconfig", cmConfig, "--authentication-kubeconfig", cmConfig, "--authorization-kubeconfig", cmConfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(cmPort), "--leader-elect=false",
		"--service-account-private-key-file", k.path("sa.key"), "--root-ca-file", k.path("ca.crt"),
		"--cluster-signing-cert-file", k.path("ca.crt"), "--cluster-signing-key-file", k.path("ca.key"),
		"--use-service-account-credentials")
	if err != nil {
		return err
	}
	s.Cleanup(func() { cm.Stop(10 * time.Second) })
	sched, err := startProcess(logs, "kube-scheduler", processOptions{}, bins.scheduler,
		"--kubeconfig", schedConfig, "--authentication-kubeconfig", schedConfig, "--authorization-kubeconfig", schedConfig,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(schedPort), "--leader-elect=false")
	if err != nil {
		return err
	}
	s.Cleanup(func() { sched.Stop(10 * time.Second) })
	// Pods can be created once the service-account controller has made the
	// default service account.
	return waitFor(ctx, "the default service account", cm, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := k.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

// certConfig is a client configuration authenticating with the named
// certificate written by writePKI.
func (k *Kube) certConfig(name string) *rest.Config {
	return &rest.Config{
		Host: k.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAFile: k.path("ca.crt"), CertFile: k.path(name + ".crt"), KeyFile: k.path(name + ".key"),
		},
	}
}

// UserConfig returns a client configuration that authenticates as user,
// member of groups, with a client certificate the cluster's CA signed.
func (k *Kube) UserConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := k.CA.ClientCert(user, groups...)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host: k.Host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: k.CA.CertPEM, CertData: kp.CertPEM, KeyData: kp.KeyPEM,
		},
	}, nil
}

// ServiceAccountToken returns a token for the service account ns/name,
// creating the account if it does not exist, through the TokenRequest API.
func (k *Kube) ServiceAccountToken(ctx context.Context, ns, name string, expiry time.Duration) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := k.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating service account %s/%s: %w", ns, name, err)
	}
	secs := int64(expiry / time.Second)
	tr, err := k.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", ns, name, err)
	}
	return tr.Status.Token, nil
}

// ServiceAccountConfig returns a client configuration that authenticates as
// the service account ns/name with a one-hour bearer token.
func (k *Kube) ServiceAccountConfig(ctx context.Context, ns, name string) (*rest.Config, error) {
	token, err := k.ServiceAccountToken(ctx, ns, name, time.Hour)
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            k.Host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: k.CA.CertPEM},
	}, nil
}

// Namespace creates a namespace for one test, with a default service
// account even when no controller makes one, and deletes it when the test
// ends.
func (k *Kube) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())}}
	created, err := k.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := k.Client.CoreV1().Namespaces().Delete(ctx, created.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("deleting namespace %s: %v", created.Name, err)
		}
	})
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := k.Client.CoreV1().ServiceAccounts(created.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating default service account in %s: %v", created.Name, err)
	}
	return created.Name
}

// namespacePrefix turns a test name into a valid namespace name prefix.
func namespacePrefix(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	if len(p) > 40 {
		p = strings.TrimRight(p[:40], "-")
	}
	if p == "" {
		p = "test"
	}
	return p + "-"
}

// WriteKubeconfig writes cfg as dir/name.kubeconfig, with its certificates
// and keys inlined, and returns the path.
func WriteKubeconfig(dir, name string, cfg *rest.Config) (string, error) {
	tls := cfg.TLSClientConfig
	read := func(data []byte, file string) ([]byte, error) {
		if len(data) > 0 || file == "" {
			return data, nil
		}
		return os.ReadFile(file)
	}
	ca, err := read(tls.CAData, tls.CAFile)
	if err != nil {
		return "", fmt.Errorf("reading CA for kubeconfig %s: %w", name, err)
	}
	cert, err := read(tls.CertData, tls.CertFile)
	if err != nil {
		return "", fmt.Errorf("reading client certificate for kubeconfig %s: %w", name, err)
	}
	key, err := read(tls.KeyData, tls.KeyFile)
	if err != nil {
		return "", fmt.Errorf("reading client key for kubeconfig %s: %w", name, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key, Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	path := filepath.Join(dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return path, nil
}
