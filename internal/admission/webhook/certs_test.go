package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testNames = []string{"bulwark.bulwark.svc", "localhost"}
	testIPs   = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
)

const testRenewBefore = 30 * 24 * time.Hour

// logBuffer returns a logger writing into the returned buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func ensure(t *testing.T, dir string, names []string, ips []net.IP, now time.Time) (*Certs, bool, string) {
	t.Helper()
	logger, logs := logBuffer()
	certs, issued, err := ensureCerts(dir, names, ips, testRenewBefore, now, logger)
	if err != nil {
		t.Fatalf("ensureCerts: %v", err)
	}
	return certs, issued, logs.String()
}

func mustParseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	cert, err := parseCert(data)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return cert
}

// verify checks that the serving certificate chains to the CA for each
// host (a DNS name or an IP) at the given time.
func verify(t *testing.T, c *Certs, at time.Time, hosts ...string) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(c.CAPEM) {
		t.Fatal("CA PEM holds no certificate")
	}
	cert := mustParseCert(t, c.CertPEM)
	for _, h := range hosts {
		_, err := cert.Verify(x509.VerifyOptions{
			DNSName: h, Roots: roots, CurrentTime: at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", h, err)
		}
	}
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestEnsureCertsCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Now()
	certs, issued, _ := ensure(t, dir, testNames, testIPs, now)
	if !issued {
		t.Error("issued = false on an empty directory")
	}
	verify(t, certs, now, "bulwark.bulwark.svc", "localhost", "127.0.0.1", "::1")

	wantModes := map[string]fs.FileMode{CAFile: 0o644, CAKey: 0o600, CertFile: 0o644, KeyFile: 0o600, ".": 0o700}
	gotModes := map[string]fs.FileMode{}
	for name := range wantModes {
		gotModes[name] = fileMode(t, filepath.Join(dir, name))
	}
	if diff := cmp.Diff(wantModes, gotModes); diff != "" {
		t.Errorf("file modes (-want +got):\n%s", diff)
	}
	onDisk := map[string][]byte{}
	for _, name := range []string{CAFile, CertFile, KeyFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		onDisk[name] = data
	}
	if diff := cmp.Diff(map[string][]byte{CAFile: certs.CAPEM, CertFile: certs.CertPEM, KeyFile: certs.KeyPEM}, onDisk); diff != "" {
		t.Errorf("returned PEM differs from the files (-returned +files):\n%s", diff)
	}

	ca := mustParseCert(t, certs.CAPEM)
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if !ca.IsCA || ca.NotAfter.Before(now.Add(9*365*24*time.Hour)) {
		t.Errorf("CA: IsCA %v, NotAfter %v; want a CA valid for about ten years", ca.IsCA, ca.NotAfter)
	}
	serving := mustParseCert(t, certs.CertPEM)
	if serving.IsCA {
		t.Error("serving certificate is a CA")
	}
	if !certs.NotAfter.Equal(serving.NotAfter) {
		t.Errorf("Certs.NotAfter = %v, certificate says %v", certs.NotAfter, serving.NotAfter)
	}
	if d := certs.NotAfter.Sub(now); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("serving certificate valid for %v, want about a year", d)
	}
	if _, err := certs.TLSCertificate(); err != nil {
		t.Error(err)
	}
}

func TestEnsureCertsReloads(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, _, _ := ensure(t, dir, testNames, testIPs, now)
	for _, tc := range []struct {
		name  string
		names []string
		ips   []net.IP
	}{
		{"same", testNames, testIPs},
		{"reordered and repeated", []string{"localhost", "bulwark.bulwark.svc", "localhost"}, []net.IP{testIPs[1], testIPs[0], testIPs[1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			again, issued, logs := ensure(t, dir, tc.names, tc.ips, now.Add(time.Hour))
			if issued {
				t.Errorf("issued = true on reload; logs:\n%s", logs)
			}
			if diff := cmp.Diff(first, again); diff != "" {
				t.Errorf("reloaded certificates (-first +again):\n%s", diff)
			}
		})
	}
	// The public entry point reads the same files.
	again, issued, err := EnsureCerts(dir, testNames, testIPs, testRenewBefore)
	if err != nil || issued {
		t.Fatalf("EnsureCerts = issued %v, %v; want a reload", issued, err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("EnsureCerts reloaded (-first +again):\n%s", diff)
	}
}

func TestEnsureCertsRenewsNearExpiry(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, _, _ := ensure(t, dir, testNames, testIPs, now)
	renewAt := first.NotAfter.Add(-testRenewBefore)

	if _, issued, _ := ensure(t, dir, testNames, testIPs, renewAt.Add(-time.Minute)); issued {
		t.Errorf("re-issued a minute before the renewal window")
	}
	renewed, issued, logs := ensure(t, dir, testNames, testIPs, renewAt.Add(time.Minute))
	if !issued {
		t.Fatalf("not re-issued inside the renewal window")
	}
	if !bytes.Equal(first.CAPEM, renewed.CAPEM) {
		t.Error("renewal replaced the CA")
	}
	if bytes.Equal(first.CertPEM, renewed.CertPEM) || bytes.Equal(first.KeyPEM, renewed.KeyPEM) {
		t.Error("renewal kept the old certificate or key")
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed NotAfter %v is not after %v", renewed.NotAfter, first.NotAfter)
	}
	if !strings.Contains(logs, "expires") {
		t.Errorf("log does not say why it re-issued:\n%s", logs)
	}
	verify(t, renewed, renewAt.Add(time.Hour), testNames...)
}

func TestEnsureCertsReissuesForNewNames(t *testing.T) {
	for _, tc := range []struct {
		name      string
		names     []string
		ips       []net.IP
		verifies  []string
		notFor    string
		logReason string
	}{
		{"DNS name added", []string{"localhost", "bulwark.example.com"}, testIPs[:1], []string{"localhost", "bulwark.example.com", "127.0.0.1"}, "", "DNS names"},
		{"DNS name removed", []string{"localhost"}, testIPs[:1], []string{"localhost"}, "bulwark.bulwark.svc", "DNS names"},
		{"IP changed", testNames[:1], []net.IP{net.ParseIP("10.1.2.3")}, []string{"10.1.2.3"}, "127.0.0.1", "IPs"},
		{"IPs only", nil, []net.IP{net.ParseIP("127.0.0.1")}, []string{"127.0.0.1"}, "bulwark.bulwark.svc", "DNS names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			now := time.Now()
			first, _, _ := ensure(t, dir, testNames[:1], testIPs[:1], now)
			got, issued, logs := ensure(t, dir, tc.names, tc.ips, now)
			if !issued {
				t.Fatal("not re-issued for different names")
			}
			if !bytes.Equal(first.CAPEM, got.CAPEM) {
				t.Error("re-issuing for new names replaced the CA")
			}
			if !strings.Contains(logs, tc.logReason) {
				t.Errorf("log does not mention %q:\n%s", tc.logReason, logs)
			}
			verify(t, got, now, tc.verifies...)
			if tc.notFor != "" {
				if err := mustParseCert(t, got.CertPEM).VerifyHostname(tc.notFor); err == nil {
					t.Errorf("certificate still valid for %s", tc.notFor)
				}
			}
		})
	}
}

func TestEnsureCertsRepairs(t *testing.T) {
	write := func(name string, data []byte) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(name string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// fromOther copies files from an unrelated set of certificates.
	fromOther := func(names ...string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			other := t.TempDir()
			ensure(t, other, testNames, testIPs, time.Now())
			for _, name := range names {
				data, err := os.ReadFile(filepath.Join(other, name))
				if err != nil {
					t.Fatal(err)
				}
				write(name, data)(t, dir)
			}
		}
	}
	for _, tc := range []struct {
		name      string
		damage    func(*testing.T, string)
		newCA     bool
		logReason string // empty: nothing to log
	}{
		{"CA certificate garbage", write(CAFile, []byte("not a certificate")), true, "CA certificate ca.crt"},
		{"CA certificate empty", write(CAFile, nil), true, "CA certificate ca.crt"},
		{"CA key garbage", write(CAKey, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")), true, "CA key ca.key"},
		{"CA key from another CA", fromOther(CAKey), true, "does not match"},
		{"CA certificate missing", remove(CAFile), true, "reading CA certificate"},
		{"CA certificate is the serving certificate", func(t *testing.T, dir string) {
			data, err := os.ReadFile(filepath.Join(dir, CertFile))
			if err != nil {
				t.Fatal(err)
			}
			write(CAFile, data)(t, dir)
		}, true, "is not a CA"},
		{"everything missing", func(t *testing.T, dir string) {
			for _, f := range []string{CAFile, CAKey, CertFile, KeyFile} {
				remove(f)(t, dir)
			}
		}, true, ""},
		{"serving certificate garbage", write(CertFile, []byte("garbage")), false, "serving certificate tls.crt"},
		{"serving key garbage", write(KeyFile, []byte("garbage")), false, "serving key pair"},
		{"serving key missing", remove(KeyFile), false, "reading serving key"},
		{"serving key from another pair", fromOther(KeyFile), false, "serving key pair"},
		{"serving pair from another CA", fromOther(CertFile, KeyFile), false, "not signed by the CA"},
		{"serving pair missing", func(t *testing.T, dir string) {
			remove(CertFile)(t, dir)
			remove(KeyFile)(t, dir)
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			now := time.Now()
			first, _, _ := ensure(t, dir, testNames, testIPs, now)
			tc.damage(t, dir)
			got, issued, logs := ensure(t, dir, testNames, testIPs, now)
			if !issued {
				t.Fatal("issued = false after damage")
			}
			if newCA := !bytes.Equal(first.CAPEM, got.CAPEM); newCA != tc.newCA {
				t.Errorf("new CA = %v, want %v", newCA, tc.newCA)
			}
			if tc.logReason == "" && logs != "" && !strings.Contains(logs, "created webhook CA") {
				t.Errorf("unexpected log:\n%s", logs)
			}
			if tc.logReason != "" && !strings.Contains(logs, tc.logReason) {
				t.Errorf("log does not say %q:\n%s", tc.logReason, logs)
			}
			verify(t, got, now, "localhost", "127.0.0.1")
			// What was repaired is what is now on disk.
			again, issued, _ := ensure(t, dir, testNames, testIPs, now)
			if issued {
				t.Error("re-issued again after the repair")
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("reload after repair (-repaired +reloaded):\n%s", diff)
			}
		})
	}
}

func TestEnsureCertsRecreatesExpiringCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, _, _ := ensure(t, dir, testNames, testIPs, now)
	ca := mustParseCert(t, first.CAPEM)
	later := ca.NotAfter.Add(-testRenewBefore).Add(time.Hour)
	got, issued, logs := ensure(t, dir, testNames, testIPs, later)
	if !issued || bytes.Equal(first.CAPEM, got.CAPEM) {
		t.Fatalf("CA expiring within renewBefore was not replaced (issued %v)", issued)
	}
	if !strings.Contains(logs, "CA certificate expires") {
		t.Errorf("log does not say why the CA was replaced:\n%s", logs)
	}
	verify(t, got, later, "localhost")
}

func TestEnsureCertsServingNotBeyondCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, _, _ := ensure(t, dir, testNames, testIPs, now)
	ca := mustParseCert(t, first.CAPEM)
	// Half a year before the CA expires a serving certificate cannot get a
	// full year; it ends with the CA, and the CA is replaced before that.
	late := ca.NotAfter.Add(-180 * 24 * time.Hour)
	got, issued, _ := ensure(t, dir, []string{"other.example"}, nil, late)
	if !issued || !bytes.Equal(first.CAPEM, got.CAPEM) {
		t.Fatalf("want a new serving certificate under the same CA (issued %v)", issued)
	}
	if !got.NotAfter.Equal(ca.NotAfter) {
		t.Errorf("serving NotAfter = %v, want the CA's %v", got.NotAfter, ca.NotAfter)
	}
}

func TestEnsureCertsTightensKeyModes(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ensure(t, dir, testNames, testIPs, now)
	for _, f := range []string{CAKey, KeyFile} {
		if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, issued, _ := ensure(t, dir, testNames, testIPs, now); issued {
		t.Error("re-issued because of file modes")
	}
	for _, f := range []string{CAKey, KeyFile} {
		if got := fileMode(t, filepath.Join(dir, f)); got != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, got)
		}
	}
}

func TestEnsureCertsRejects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		dir         string
		names       []string
		ips         []net.IP
		renewBefore time.Duration
		want        string
	}{
		{"no names", t.TempDir(), nil, nil, time.Hour, "no DNS names or IPs"},
		{"bad DNS name", t.TempDir(), []string{"https://bulwark"}, nil, time.Hour, `invalid DNS name "https://bulwark"`},
		{"empty DNS name", t.TempDir(), []string{""}, nil, time.Hour, `invalid DNS name ""`},
		{"bad IP", t.TempDir(), nil, []net.IP{{1, 2, 3}}, time.Hour, "invalid IP"},
		{"negative renewBefore", t.TempDir(), testNames, nil, -time.Hour, "renewBefore"},
		{"renewBefore beyond validity", t.TempDir(), testNames, nil, 2 * servingValidity, "renewBefore"},
		{"directory is a file", file, testNames, nil, time.Hour, "creating certificate directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := EnsureCerts(tc.dir, tc.names, tc.ips, tc.renewBefore)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("EnsureCerts error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
