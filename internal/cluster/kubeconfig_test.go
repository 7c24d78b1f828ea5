package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const testToken = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.sig"

// kubeconfig returns a kubeconfig with two contexts, "a" (current) and "b",
// each with its own cluster and token; edit changes it before encoding.
func kubeconfig(t *testing.T, edit func(*clientcmdapi.Config)) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	for _, n := range []string{"a", "b"} {
		cfg.Clusters[n] = &clientcmdapi.Cluster{Server: "https://" + n + ".example:6443", CertificateAuthorityData: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")}
		cfg.AuthInfos[n] = &clientcmdapi.AuthInfo{Token: testToken + n}
		cfg.Contexts[n] = &clientcmdapi.Context{Cluster: n, AuthInfo: n, Namespace: "default"}
	}
	cfg.CurrentContext = "a"
	if edit != nil {
		edit(cfg)
	}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestPrepare(t *testing.T) {
	for _, tc := range []struct{ context, wantServer, wantToken string }{
		{"", "https://a.example:6443", testToken + "a"},
		{"b", "https://b.example:6443", testToken + "b"},
	} {
		kc, err := Prepare(kubeconfig(t, nil), tc.context)
		if err != nil {
			t.Fatal(err)
		}
		if kc.Server != tc.wantServer {
			t.Errorf("server = %q, want %q", kc.Server, tc.wantServer)
		}
		cfg, err := clientcmd.Load(kc.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Contexts) != 1 || len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 {
			t.Errorf("prepared kubeconfig keeps %d contexts, %d clusters, %d users; want one each", len(cfg.Contexts), len(cfg.Clusters), len(cfg.AuthInfos))
		}
		rc, err := RESTConfig(kc.Data)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Host != tc.wantServer || rc.BearerToken != tc.wantToken {
			t.Errorf("REST config host %q token %q", rc.Host, rc.BearerToken)
		}
	}
	names, err := Contexts(kubeconfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, names); diff != "" {
		t.Errorf("Contexts (-want +got):\n%s", diff)
	}
}

func TestPrepareRefusesWhatTheServerMustNotDo(t *testing.T) {
	tests := map[string]struct {
		data    []byte
		context string
		want    string
	}{
		"empty":            {nil, "", "empty"},
		"garbage":          {[]byte("\x00\xff" + testToken), "", "not a kubeconfig"},
		"too big":          {[]byte(strings.Repeat("#", MaxKubeconfigBytes+1)), "", "limit"},
		"no such context":  {kubeconfig(t, nil), "c", `no context "c"`},
		"no current":       {kubeconfig(t, func(c *clientcmdapi.Config) { c.CurrentContext = "" }), "", "no current context"},
		"no server":        {kubeconfig(t, func(c *clientcmdapi.Config) { c.Clusters["a"].Server = "" }), "", "no cluster server"},
		"missing cluster":  {kubeconfig(t, func(c *clientcmdapi.Config) { delete(c.Clusters, "a") }), "", "cluster"},
		"ca file":          {kubeconfig(t, func(c *clientcmdapi.Config) { c.Clusters["a"].CertificateAuthority = "/etc/shadow" }), "", "file path"},
		"client cert file": {kubeconfig(t, func(c *clientcmdapi.Config) { c.AuthInfos["a"].ClientCertificate = "/etc/x" }), "", "file paths"},
		"token file":       {kubeconfig(t, func(c *clientcmdapi.Config) { c.AuthInfos["a"].TokenFile = "/var/run/x" }), "", "file paths"},
		"exec plugin": {kubeconfig(t, func(c *clientcmdapi.Config) {
			c.AuthInfos["a"].Exec = &clientcmdapi.ExecConfig{Command: "sh", Args: []string{"-c", "touch /tmp/pwned"}, APIVersion: "client.authentication.k8s.io/v1"}
		}), "", "exec credential plugins"},
		"auth provider": {kubeconfig(t, func(c *clientcmdapi.Config) {
			c.AuthInfos["a"].AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}), "", "auth-provider"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Prepare(tt.data, tt.context)
			if !errors.Is(err, ErrBadKubeconfig) {
				t.Fatalf("err = %v, want ErrBadKubeconfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestFlattenEmbedsFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("ca.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	tok := write("token", testToken+"\n")
	path := write("config", string(kubeconfig(t, func(c *clientcmdapi.Config) {
		c.Clusters["b"].CertificateAuthorityData, c.Clusters["b"].CertificateAuthority = nil, "ca.crt"
		c.AuthInfos["b"].Token, c.AuthInfos["b"].TokenFile = "", tok
	})))
	_ = ca
	kc, err := Flatten(path, "b")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := RESTConfig(kc.Data)
	if err != nil {
		t.Fatal(err)
	}
	if rc.BearerToken != testToken || len(rc.CAData) == 0 || rc.CAFile != "" {
		t.Errorf("flattened config: token %q, CA data %d bytes, CA file %q", rc.BearerToken, len(rc.CAData), rc.CAFile)
	}
	if _, err := Flatten(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("Flatten of a missing file succeeded")
	}
}

func FuzzPrepare(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts: [{name: a, context: {cluster: a, user: a}}]\nclusters: [{name: a, cluster: {server: 'https://x'}}]\nusers: [{name: a, user: {token: t}}]\n"), "")
	f.Add([]byte("{}"), "x")
	f.Fuzz(func(t *testing.T, data []byte, context string) {
		kc, err := Prepare(data, context)
		if err != nil {
			if !errors.Is(err, ErrBadKubeconfig) {
				t.Fatalf("error %v does not wrap ErrBadKubeconfig", err)
			}
			return
		}
		if _, err := Prepare(kc.Data, ""); err != nil {
			t.Fatalf("a prepared kubeconfig does not prepare again: %v", err)
		}
	})
}
