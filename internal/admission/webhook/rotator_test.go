package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// serveTLS serves h on 127.0.0.1 with cfg until the test ends and returns
// the address.
func serveTLS(t *testing.T, cfg *tls.Config, h http.Handler) (addr string, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Handshakes the tests abandon on purpose are not worth logging.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(tls.NewListener(l, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("webhook server: %v", err)
		}
	}()
	stop = func() {
		srv.Close()
		<-done
	}
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// peerCertificate handshakes with addr, verifying against caPEM for
// 127.0.0.1 at the given time, and returns the certificate presented.
func peerCertificate(t *testing.T, addr string, caPEM []byte, at time.Time) []byte {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, Time: func() time.Time { return at }})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

func certDER(t *testing.T, pemData []byte) []byte {
	t.Helper()
	return mustParseCert(t, pemData).Raw
}

func newTestRotator(t *testing.T, dir string) *Rotator {
	t.Helper()
	logger, _ := logBuffer()
	r, err := NewRotator(dir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, testRenewBefore, logger)
	if err != nil {
		t.Fatalf("NewRotator: %v", err)
	}
	return r
}

// runRotator runs r.Run every few milliseconds until the test ends and
// returns the caBundles passed to onRotate.
func runRotator(t *testing.T, r *Rotator) <-chan []byte {
	t.Helper()
	rotated := make(chan []byte, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx, 10*time.Millisecond, func(ca []byte) { rotated <- ca })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return rotated
}

func waitRotated(t *testing.T, rotated <-chan []byte) []byte {
	t.Helper()
	select {
	case ca := <-rotated:
		return ca
	case <-time.After(10 * time.Second):
		t.Fatal("onRotate was not called")
		return nil
	}
}

func TestRotatorRenewsNearExpiry(t *testing.T) {
	dir := t.TempDir()
	r := newTestRotator(t, dir)
	first, _, _ := ensure(t, dir, []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Now())
	addr, _ := serveTLS(t, r.TLSConfig(), http.NotFoundHandler())
	caBefore := r.CABundle()
	if !bytes.Equal(caBefore, first.CAPEM) {
		t.Fatal("CABundle is not the CA on disk")
	}
	if got := peerCertificate(t, addr, caBefore, time.Now()); !bytes.Equal(got, certDER(t, first.CertPEM)) {
		t.Fatal("GetCertificate does not return the certificate on disk")
	}

	// Inside the renewal window the next check renews.
	later := first.NotAfter.Add(-testRenewBefore).Add(time.Hour)
	r.now = func() time.Time { return later }
	caAfter := waitRotated(t, runRotator(t, r))
	if !bytes.Equal(caAfter, caBefore) {
		t.Error("renewal changed the CA passed to onRotate")
	}
	renewed, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(renewed, first.CertPEM) {
		t.Fatal("certificate on disk was not renewed")
	}
	if got := peerCertificate(t, addr, caAfter, later); !bytes.Equal(got, certDER(t, renewed)) {
		t.Error("GetCertificate does not return the renewed certificate")
	}
}

func TestRotatorPicksUpReplacedFiles(t *testing.T) {
	dir := t.TempDir()
	r := newTestRotator(t, dir)
	addr, _ := serveTLS(t, r.TLSConfig(), http.NotFoundHandler())
	before := peerCertificate(t, addr, r.CABundle(), time.Now())
	rotated := runRotator(t, r)

	// Nothing changes: no rotation over several checks.
	select {
	case <-rotated:
		t.Fatal("onRotate called without a change")
	case <-time.After(100 * time.Millisecond):
	}

	// Everything deleted: a new CA and certificate, and onRotate gets the
	// new CA to register.
	for _, f := range []string{CAFile, CAKey, CertFile, KeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	ca := waitRotated(t, rotated)
	onDisk, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, onDisk) || !bytes.Equal(r.CABundle(), onDisk) {
		t.Error("onRotate and CABundle do not give the new CA")
	}
	after := peerCertificate(t, addr, ca, time.Now())
	if bytes.Equal(before, after) {
		t.Error("server still presents the old certificate")
	}
}

func TestRotatorTLSConfig(t *testing.T) {
	r := newTestRotator(t, t.TempDir())
	addr, _ := serveTLS(t, r.TLSConfig(), http.NotFoundHandler())
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(r.CABundle())
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	// The name in the certificate is what a client asking by DNS name
	// verifies.
	conn, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS handshake for localhost: %v", err)
	}
	conn.Close()
}

func TestNewRotatorFails(t *testing.T) {
	if _, err := NewRotator(t.TempDir(), nil, nil, time.Hour, nil); err == nil {
		t.Error("NewRotator without names succeeded")
	}
}
