package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/cluster"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/notification"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// noScheduler is the API's scheduler in tests that never scan.
type noScheduler struct{}

var errNoScheduler = errors.New("no scheduler in this test")

func (noScheduler) Notify(context.Context, []notification.Push) (int, error) {
	return 0, errNoScheduler
}
func (noScheduler) ScanNow(context.Context, int64, string) (*store.Scan, error) {
	return nil, errNoScheduler
}
func (noScheduler) PollNow(context.Context, int64) error         { return errNoScheduler }
func (noScheduler) Rematch(context.Context, string) (int, error) { return 0, errNoScheduler }

// apiServer is the real API on an SQLite store, for the client commands.
type apiServer struct {
	db  *store.DB
	box *secretbox.Box
	env map[string]string
}

func newAPIServer(t *testing.T, checks []posture.Check) *apiServer {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := api.New(api.Options{Store: db, Scheduler: noScheduler{}, Box: box, Gatherer: reg, Registerer: reg, PostureChecks: checks})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	token, hash := api.NewToken()
	if err := db.CreateToken(context.Background(), &store.Token{Name: "cli", Role: store.RoleAdmin, Hash: hash, Prefix: token[:10]}); err != nil {
		t.Fatal(err)
	}
	return &apiServer{db: db, box: box, env: map[string]string{"BULWARK_SERVER": srv.URL, "BULWARK_TOKEN": token}}
}

// writeCertificate writes a self-signed certificate and its key as PEM
// files under dir.
func writeCertificate(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// writeKubeconfig writes a kubeconfig as kubectl users have them: the CA,
// client certificate and key, and a token, as files it refers to. Its
// contexts are prod and staging (client certificates) and broken (whose
// token file does not exist).
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	caFile, _ := writeCertificate(t, dir, "ca")
	certFile, keyFile := writeCertificate(t, dir, "admin")
	kc := clientcmdapi.NewConfig()
	for _, name := range []string{"prod", "staging", "broken"} {
		kc.Clusters[name] = &clientcmdapi.Cluster{Server: "https://" + name + ".example:6443", CertificateAuthority: caFile}
		kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
		kc.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	}
	kc.AuthInfos["broken"] = &clientcmdapi.AuthInfo{TokenFile: filepath.Join(dir, "missing-token")}
	kc.CurrentContext = "staging"
	path := filepath.Join(dir, "config")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestClusterCommands(t *testing.T) {
	s := newAPIServer(t, nil)
	kubeconfig := writeKubeconfig(t)

	code, out, errOut := runCLI(t, s.env, "cluster", "add", "production", "--kubeconfig", kubeconfig, "--context", "prod")
	if code != ExitOK || !strings.Contains(out, "cluster production added") || !strings.Contains(out, "https://prod.example:6443") {
		t.Fatalf("cluster add: exit %d: %s %s", code, out, errOut)
	}
	// The files the kubeconfig referred to travelled embedded.
	c, err := s.db.ClusterByName(context.Background(), "production")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.db.ClusterConfig(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	data, err := s.box.Open(sealed, cluster.SealContext("production"))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if a := stored.AuthInfos[stored.Contexts[stored.CurrentContext].AuthInfo]; a == nil || len(a.ClientCertificateData) == 0 || len(a.ClientKeyData) == 0 || a.ClientCertificate != "" {
		t.Errorf("stored credentials = %+v", a)
	}
	if len(stored.Contexts) != 1 || stored.CurrentContext != "prod" || len(stored.Clusters["prod"].CertificateAuthorityData) == 0 {
		t.Errorf("stored kubeconfig:\n%s", data)
	}

	code, out, errOut = runCLI(t, s.env, "cluster", "add", "--kubeconfig", kubeconfig, "--all-contexts")
	if code != ExitError {
		t.Errorf("--all-contexts with a broken context: exit %d, want %d", code, ExitError)
	}
	for _, want := range []string{"cluster prod added", "cluster staging added"} {
		if !strings.Contains(out, want) {
			t.Errorf("--all-contexts output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"cluster broken not added", "missing-token", "1 of 3 contexts"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("--all-contexts errors lack %q:\n%s", want, errOut)
		}
	}

	code, out, errOut = runCLI(t, s.env, "cluster", "add", "here", "--in-cluster", "-f", "json")
	var here struct{ Name, Source, Status string }
	if code != ExitOK || json.Unmarshal([]byte(out), &here) != nil || here.Source != "in-cluster" || here.Status != "pending" {
		t.Errorf("cluster add --in-cluster: exit %d: %s %s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, s.env, "cluster", "add", "production", "--kubeconfig", kubeconfig)
	if code != ExitError || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "HTTP 409") {
		t.Errorf("duplicate add: exit %d: %s", code, errOut)
	}

	code, out, errOut = runCLI(t, s.env, "cluster", "list")
	if code != ExitOK {
		t.Fatalf("cluster list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "NAMESPACES") || !strings.Contains(lines[0], "SYNCED") {
		t.Fatalf("cluster list:\n%s", out)
	}
	for i, name := range []string{"here", "prod", "production", "staging"} {
		if f := strings.Fields(lines[i+1]); f[0] != name || f[1] != "pending" || f[6] != "never" {
			t.Errorf("cluster list row %d = %q, want %s pending … never", i+1, lines[i+1], name)
		}
	}

	code, out, errOut = runCLI(t, s.env, "cluster", "remove", "staging")
	if code != ExitOK || !strings.Contains(out, "cluster staging removed") {
		t.Errorf("cluster remove: exit %d: %s %s", code, out, errOut)
	}
	if _, err := s.db.ClusterByName(context.Background(), "staging"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("staging after remove: %v", err)
	}
	code, _, errOut = runCLI(t, s.env, "cluster", "remove", "staging")
	if code != ExitError || !strings.Contains(errOut, `no cluster named "staging"`) {
		t.Errorf("removing a missing cluster: exit %d: %s", code, errOut)
	}
}

func TestClusterAddUsage(t *testing.T) {
	env := map[string]string{"BULWARK_TOKEN": "bwk_x"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "add", "x"}, "give --kubeconfig FILE, or --in-cluster"},
		{[]string{"cluster", "add", "x", "--in-cluster", "--kubeconfig", "k"}, "--in-cluster takes no --kubeconfig"},
		{[]string{"cluster", "add", "--kubeconfig", "k"}, "give the cluster a NAME"},
		{[]string{"cluster", "add", "x", "--kubeconfig", "k", "--all-contexts"}, "give no NAME and no --context"},
		{[]string{"workloads", "--fixable"}, "need --vulnerable"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errOut := runCLI(t, env, tc.args...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, ExitUsage, tc.want)
			}
		})
	}
}

// seedInventory stores a cluster running two workloads, one of them
// exposed and on an image with a critical fixable finding, and a posture
// finding.
func seedInventory(t *testing.T, s *apiServer) {
	t.Helper()
	ctx := context.Background()
	c := &store.Cluster{Name: "prod", Source: store.ClusterSourceInCluster}
	if err := s.db.CreateCluster(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	web, batch := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	container := func(image, digest string) []store.WorkloadPod {
		return []store.WorkloadPod{{Name: "p", Containers: []store.WorkloadContainer{{Name: "app", Kind: store.ContainerRegular, Image: image, Digest: digest}}}}
	}
	err := s.db.ReplaceInventory(ctx, c.ID, store.ClusterInventory{Namespaces: []store.ClusterNamespace{{Name: "shop"}}, Workloads: []store.Workload{
		{Namespace: "shop", Kind: "Deployment", Name: "web", Exposure: []string{"Ingress shop"}, Pods: container("registry.example/web:1", web)},
		{Namespace: "shop", Kind: "CronJob", Name: "report", Pods: container("registry.example/report:3", batch)},
	}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for d, sev := range map[string]model.Severity{web: model.SeverityCritical, batch: model.SeverityLow} {
		id, err := s.db.SeeImage(ctx, d, store.ImageRef{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.db.SaveResult(ctx, id, store.Result{At: time.Now(), Findings: []model.Finding{{VulnerabilityID: "CVE-2026-1000", Severity: sev,
			FixedVersion: "2", Package: model.Package{Name: "openssl", Version: "1"}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = s.db.ReplacePostureFindings(ctx, c.ID, []store.PostureFinding{{CheckID: "BWK-TEST-001", Title: "Container may run as root", Severity: "HIGH",
		Frameworks: []string{"pss-restricted"}, ResourceKind: "Deployment", ResourceNamespace: "shop", ResourceName: "web",
		Evidence: []string{"container app: runAsNonRoot is not true"}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
}

func TestWorkloadsCommand(t *testing.T) {
	s := newAPIServer(t, nil)
	seedInventory(t, s)

	code, out, errOut := runCLI(t, s.env, "workloads", "--vulnerable", "--min-severity", "CRITICAL", "--fixable")
	if code != ExitOK {
		t.Fatalf("workloads --vulnerable: exit %d: %s", code, errOut)
	}
	want := [][]string{
		{"CLUSTER", "NAMESPACE", "KIND", "NAME", "IMAGE", "CRITICAL", "HIGH", "FIXABLE", "EXPOSURE"},
		{"prod", "shop", "Deployment", "web", "registry.example/web:1", "1", "0", "1", "Ingress", "shop"},
	}
	if diff := cmp.Diff(want, fields(out)); diff != "" {
		t.Errorf("workloads --vulnerable (-want +got):\n%s", diff)
	}
	code, out, _ = runCLI(t, s.env, "workloads", "--vulnerable")
	if code != ExitOK || len(fields(out)) != 3 || !strings.Contains(out, "registry.example/report:3") {
		t.Errorf("workloads --vulnerable (any severity):\n%s", out)
	}
	code, out, _ = runCLI(t, s.env, "workloads", "--cluster", "prod", "--exposed")
	want = [][]string{
		{"CLUSTER", "NAMESPACE", "KIND", "NAME", "PODS", "IMAGES", "EXPOSURE"},
		{"prod", "shop", "Deployment", "web", "1", "registry.example/web:1", "Ingress", "shop"},
	}
	if diff := cmp.Diff(want, fields(out)); code != ExitOK || diff != "" {
		t.Errorf("workloads --exposed: exit %d (-want +got):\n%s", code, diff)
	}
	code, _, errOut = runCLI(t, s.env, "workloads", "--cluster", "nope")
	if code != ExitError || !strings.Contains(errOut, `no cluster with id or name "nope"`) {
		t.Errorf("unknown cluster: exit %d: %s", code, errOut)
	}
}

func TestPostureCommand(t *testing.T) {
	checks := []posture.Check{{ID: "BWK-TEST-001", Title: "Container may run as root", Severity: "HIGH", Target: "PodSpec",
		Frameworks: []string{"pss-restricted"}, Remediation: "Set runAsNonRoot: true.", Violation: "!object.runAsNonRoot", Source: posture.BuiltinSource}}
	s := newAPIServer(t, checks)
	seedInventory(t, s)

	code, out, errOut := runCLI(t, s.env, "posture", "--cluster", "prod", "--min-severity", "HIGH")
	if code != ExitOK {
		t.Fatalf("posture: exit %d: %s", code, errOut)
	}
	want := [][]string{
		{"CLUSTER", "CHECK", "SEVERITY", "RESOURCE", "TITLE"},
		{"prod", "BWK-TEST-001", "HIGH", "Deployment", "shop/web", "Container", "may", "run", "as", "root"},
	}
	if diff := cmp.Diff(want, fields(out)); diff != "" {
		t.Errorf("posture (-want +got):\n%s", diff)
	}
	code, out, _ = runCLI(t, s.env, "posture", "--framework", "pss-restricted", "-f", "json")
	var items []struct {
		Evidence    []string `json:"evidence"`
		Remediation string   `json:"remediation"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &items) != nil || len(items) != 1 ||
		items[0].Remediation != "Set runAsNonRoot: true." || len(items[0].Evidence) != 1 {
		t.Errorf("posture -f json: exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI(t, s.env, "posture", "--severity", "CRITICAL")
	if code != ExitOK || len(fields(out)) != 1 {
		t.Errorf("posture --severity CRITICAL:\n%s", out)
	}
	code, _, errOut = runCLI(t, s.env, "posture", "--state", "fixed")
	if code != ExitError || !strings.Contains(errOut, `unknown state "fixed"`) {
		t.Errorf("posture --state fixed: exit %d: %s", code, errOut)
	}

	code, out, _ = runCLI(t, s.env, "posture", "checks")
	want = [][]string{
		{"ID", "SEVERITY", "TARGET", "FRAMEWORKS", "TITLE"},
		{"BWK-TEST-001", "HIGH", "PodSpec", "pss-restricted", "Container", "may", "run", "as", "root"},
	}
	if diff := cmp.Diff(want, fields(out)); code != ExitOK || diff != "" {
		t.Errorf("posture checks: exit %d (-want +got):\n%s", code, diff)
	}
	code, out, _ = runCLI(t, s.env, "posture", "checks", "-f", "json")
	if code != ExitOK || !strings.Contains(out, `"violation": "!object.runAsNonRoot"`) {
		t.Errorf("posture checks -f json:\n%s", out)
	}
}

// fields splits a table into its rows' fields.
func fields(table string) [][]string {
	var out [][]string
	for _, line := range strings.Split(strings.TrimSpace(table), "\n") {
		out = append(out, strings.Fields(line))
	}
	return out
}
