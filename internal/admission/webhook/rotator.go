package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// DefaultCheckInterval is how often Run looks at the certificate when not
// told otherwise.
const DefaultCheckInterval = time.Hour

// Rotator serves the current serving certificate through
// tls.Config.GetCertificate and renews it in the background, so the
// webhook server never restarts for a new certificate.
type Rotator struct {
	dir         string
	dnsNames    []string
	ips         []net.IP
	renewBefore time.Duration
	logger      *slog.Logger
	now         func() time.Time // replaced by tests to reach expiry

	mu    sync.RWMutex
	certs *Certs
	cert  *tls.Certificate
}

// NewRotator ensures the certificates in dir (see EnsureCerts) and returns
// a Rotator serving them.
func NewRotator(dir string, dnsNames []string, ips []net.IP, renewBefore time.Duration, logger *slog.Logger) (*Rotator, error) {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Rotator{
		dir:         dir,
		dnsNames:    slices.Clone(dnsNames),
		ips:         slices.Clone(ips),
		renewBefore: renewBefore,
		logger:      logger,
		now:         time.Now,
	}
	if _, err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// TLSConfig returns a server configuration, TLS 1.2 or later, presenting
// whichever certificate is current at each handshake.
func (r *Rotator) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			r.mu.RLock()
			defer r.mu.RUnlock()
			return r.cert, nil
		},
	}
}

// CABundle returns the PEM CA certificate that signs the serving
// certificate: the caBundle to register with kube-apiserver.
func (r *Rotator) CABundle() []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.certs.CAPEM)
}

// Run checks the certificates every interval (DefaultCheckInterval when
// every is not positive) until ctx ends. When the served certificate
// changes — renewed here, or replaced in the directory by someone else — it
// calls onRotate, if not nil, with the current caBundle, so the caller can
// register it again when the CA changed. Failed checks are logged and
// retried at the next interval; the current certificate stays served.
func (r *Rotator) Run(ctx context.Context, every time.Duration, onRotate func(caBundle []byte)) {
	if every <= 0 {
		every = DefaultCheckInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rotated, err := r.check()
		if err != nil {
			r.logger.Error("checking webhook serving certificate", "dir", r.dir, "err", err)
			continue
		}
		if rotated && onRotate != nil {
			onRotate(r.CABundle())
		}
	}
}

// check ensures the certificates on disk and serves them, reporting
// whether the served certificate changed.
func (r *Rotator) check() (bool, error) {
	certs, issued, err := ensureCerts(r.dir, r.dnsNames, r.ips, r.renewBefore, r.now(), r.logger)
	if err != nil {
		return false, err
	}
	cert, err := certs.TLSCertificate()
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.certs
	if old != nil && bytes.Equal(old.CertPEM, certs.CertPEM) && bytes.Equal(old.CAPEM, certs.CAPEM) {
		return false, nil
	}
	r.certs, r.cert = certs, &cert
	if old != nil {
		r.logger.Info("webhook serving certificate rotated", "dir", r.dir, "issued_here", issued,
			"ca_changed", !bytes.Equal(old.CAPEM, certs.CAPEM), "not_after", certs.NotAfter)
	}
	return old != nil, nil
}
