package webhook

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Files EnsureCerts keeps in its directory.
const (
	CAFile   = "ca.crt"
	CAKey    = "ca.key"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// errNoFiles says neither file of a pair exists yet: a first start, not
// something to log.
var errNoFiles = errors.New("no files")

// Validity of what EnsureCerts issues. The CA lives long so that the
// caBundle registered with kube-apiserver rarely changes; the serving
// certificate is renewed under it.
const (
	caValidity      = 10 * 365 * 24 * time.Hour
	servingValidity = 365 * 24 * time.Hour
	// backdate covers clocks between Bulwark and kube-apiserver that
	// disagree by a little.
	backdate = time.Hour
)

// Certs is a CA and a serving certificate signed by it.
type Certs struct {
	CAPEM   []byte // the CA certificate: the webhook's caBundle
	CertPEM []byte // the serving certificate
	KeyPEM  []byte // the serving certificate's private key
	// NotAfter is when the serving certificate expires.
	NotAfter time.Time
}

// TLSCertificate returns the serving certificate and key for a tls.Config.
func (c *Certs) TLSCertificate() (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading serving key pair: %w", err)
	}
	return cert, nil
}

// EnsureCerts loads dir/ca.crt, ca.key, tls.crt and tls.key, or creates
// them: an ECDSA P-256 CA valid for ten years and a serving certificate it
// signs for dnsNames and ips, valid for a year. It re-issues the serving
// certificate, under the same CA, when it expires within renewBefore, when
// its names or IPs differ from those asked for, or when its files are
// missing, unreadable or do not match the CA. It re-creates everything,
// logging why through slog.Default, when the CA's files are missing,
// corrupt, or the CA expires within renewBefore. Keys are written 0600.
// issued reports whether anything was (re)issued.
func EnsureCerts(dir string, dnsNames []string, ips []net.IP, renewBefore time.Duration) (certs *Certs, issued bool, err error) {
	return ensureCerts(dir, dnsNames, ips, renewBefore, time.Now(), slog.Default())
}

func ensureCerts(dir string, dnsNames []string, ips []net.IP, renewBefore time.Duration, now time.Time, logger *slog.Logger) (*Certs, bool, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, false, errors.New("webhook certificates: no DNS names or IPs to issue the serving certificate for")
	}
	for _, ip := range ips {
		if ip.To16() == nil {
			return nil, false, fmt.Errorf("webhook certificates: invalid IP %v", ip)
		}
	}
	for _, n := range dnsNames {
		if validation.IsDNS1123Subdomain(n) != nil && validation.IsWildcardDNS1123Subdomain(n) != nil {
			return nil, false, fmt.Errorf("webhook certificates: invalid DNS name %q", n)
		}
	}
	if renewBefore < 0 || renewBefore >= servingValidity {
		return nil, false, fmt.Errorf("webhook certificates: renewBefore %v must be at least 0 and less than the serving certificate's validity %v", renewBefore, servingValidity)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("creating certificate directory %s: %w", dir, err)
	}
	logger = logger.With("dir", dir)

	ca, err := loadCA(dir, now, renewBefore)
	if err != nil {
		if !errors.Is(err, errNoFiles) {
			logger.Warn("re-creating webhook CA and serving certificate", "reason", err)
		}
		if ca, err = newCA(now); err != nil {
			return nil, false, err
		}
		if err := ca.write(dir); err != nil {
			return nil, false, err
		}
		logger.Info("created webhook CA", "not_after", ca.cert.NotAfter)
		certs, err := issueServing(dir, ca, dnsNames, ips, now)
		return certs, true, err
	}

	certs, err := loadServing(dir, ca, dnsNames, ips, now, renewBefore)
	if err != nil {
		if !errors.Is(err, errNoFiles) {
			logger.Info("re-issuing webhook serving certificate", "reason", err)
		}
		certs, err := issueServing(dir, ca, dnsNames, ips, now)
		return certs, true, err
	}
	return certs, false, nil
}

// authority is a CA that signs serving certificates.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	keyPEM  []byte
}

func newCA(now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "bulwark-webhook-ca", Organization: []string{"Bulwark"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &authority{cert: cert, certPEM: encodePEM("CERTIFICATE", der), key: key, keyPEM: keyPEM}, nil
}

func (ca *authority) write(dir string) error {
	if err := writeFileAtomic(filepath.Join(dir, CAKey), ca.keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, CAFile), ca.certPEM, 0o644)
}

// loadCA reads the CA and says why it cannot be used: an error wrapping
// errNoFiles when neither file exists, another error when they are
// corrupt, do not belong together, or the CA expires within renewBefore.
func loadCA(dir string, now time.Time, renewBefore time.Duration) (*authority, error) {
	certPEM, certErr := os.ReadFile(filepath.Join(dir, CAFile))
	keyPEM, keyErr := readKey(filepath.Join(dir, CAKey))
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("no CA in %s: %w", dir, errNoFiles)
	case certErr != nil:
		return nil, fmt.Errorf("reading CA certificate: %w", certErr)
	case keyErr != nil:
		return nil, fmt.Errorf("reading CA key: %w", keyErr)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", CAFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("CA certificate %s is not a CA", CAFile)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", CAKey, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("CA key %s does not match CA certificate %s", CAKey, CAFile)
	}
	if !now.Add(renewBefore).Before(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate expires %s, within %v", cert.NotAfter.Format(time.RFC3339), renewBefore)
	}
	return &authority{cert: cert, certPEM: certPEM, key: key, keyPEM: keyPEM}, nil
}

// loadServing reads the serving certificate and says, as an error, why it
// must be re-issued.
func loadServing(dir string, ca *authority, dnsNames []string, ips []net.IP, now time.Time, renewBefore time.Duration) (*Certs, error) {
	certPEM, certErr := os.ReadFile(filepath.Join(dir, CertFile))
	keyPEM, keyErr := readKey(filepath.Join(dir, KeyFile))
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("no serving certificate in %s: %w", dir, errNoFiles)
	case certErr != nil:
		return nil, fmt.Errorf("reading serving certificate: %w", certErr)
	case keyErr != nil:
		return nil, fmt.Errorf("reading serving key: %w", keyErr)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("serving certificate %s: %w", CertFile, err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("serving key pair %s, %s: %w", CertFile, KeyFile, err)
	}
	if err := cert.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("serving certificate is not signed by the CA: %w", err)
	}
	if !now.Add(renewBefore).Before(cert.NotAfter) {
		return nil, fmt.Errorf("serving certificate expires %s, within %v", cert.NotAfter.Format(time.RFC3339), renewBefore)
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("serving certificate is not valid before %s", cert.NotBefore.Format(time.RFC3339))
	}
	if !slices.Equal(normalizeNames(cert.DNSNames), normalizeNames(dnsNames)) {
		return nil, fmt.Errorf("serving certificate is for DNS names %v, want %v", cert.DNSNames, dnsNames)
	}
	if !slices.Equal(normalizeIPs(cert.IPAddresses), normalizeIPs(ips)) {
		return nil, fmt.Errorf("serving certificate is for IPs %v, want %v", cert.IPAddresses, ips)
	}
	return &Certs{CAPEM: ca.certPEM, CertPEM: certPEM, KeyPEM: keyPEM, NotAfter: cert.NotAfter}, nil
}

func issueServing(dir string, ca *authority, dnsNames []string, ips []net.IP, now time.Time) (*Certs, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating serving key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cn := "bulwark-webhook"
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	notAfter := now.Add(servingValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Bulwark"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     slices.Clone(dnsNames),
		IPAddresses:  slices.Clone(ips),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing serving certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing new serving certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	certs := &Certs{CAPEM: ca.certPEM, CertPEM: encodePEM("CERTIFICATE", der), KeyPEM: keyPEM, NotAfter: cert.NotAfter}
	// The key goes first: a crash between the two writes leaves a
	// certificate that does not match its key, which the next load
	// re-issues.
	if err := writeFileAtomic(filepath.Join(dir, KeyFile), certs.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, CertFile), certs.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return certs, nil
}

// readKey reads a private key file, first tightening its mode to 0600 if
// someone loosened it.
func readKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm() != 0o600 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("restricting %s to 0600: %w", path, err)
		}
	}
	return os.ReadFile(path)
}

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", key)
	}
	return signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return encodePEM("PRIVATE KEY", der), nil
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating certificate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// normalizeNames makes name lists comparable regardless of order, case and
// repetition.
func normalizeNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(n))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func normalizeIPs(ips []net.IP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// writeFileAtomic replaces path with data so that a reader never sees a
// partly written file.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
