package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// emptyDB writes an empty vulnerability database where the server looks.
func emptyDB(t *testing.T, dataDir string) {
	t.Helper()
	w, err := vulndb.Create(filepath.Join(dataDir, "vulndb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the server until the test ends and returns its address.
func start(t *testing.T, c Config) (string, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	c.Out = out
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	addr := make(chan string, 1)
	c.Ready = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a, out
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	return "", nil
}

var tokenLine = regexp.MustCompile(`bwk_[0-9a-f]{64}`)

func TestFirstStartPrintsAnAdminTokenOnce(t *testing.T) {
	dataDir := t.TempDir()
	emptyDB(t, dataDir)
	addr, out := start(t, Config{DataDir: dataDir})
	token := tokenLine.FindString(out.String())
	if token == "" {
		t.Fatalf("no admin token printed:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("printed token reads tokens: %d", resp.StatusCode)
	}
	key, err := os.Stat(filepath.Join(dataDir, "secret.key"))
	if err != nil || key.Mode().Perm() != 0o600 {
		t.Errorf("generated credentials key: %v, %v", key, err)
	}
}

func TestSecondStartPrintsNothing(t *testing.T) {
	dataDir := t.TempDir()
	emptyDB(t, dataDir)
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{DataDir: dataDir, Listen: "127.0.0.1:0", Out: &lockedBuffer{}, Ready: func(string) { close(ready) }})
		}()
		<-ready
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	_, out := start(t, Config{DataDir: dataDir})
	if tokenLine.MatchString(out.String()) {
		t.Errorf("second start printed a token:\n%s", out.String())
	}
}

func TestBadAdminTokenIsRefused(t *testing.T) {
	dataDir := t.TempDir()
	emptyDB(t, dataDir)
	err := Run(context.Background(), Config{DataDir: dataDir, Listen: "127.0.0.1:0", AdminToken: "password"})
	if err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Errorf("weak admin token: err = %v", err)
	}
}

func TestPostgresNeedsAKey(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dataDir := t.TempDir()
	emptyDB(t, dataDir)
	err := Run(context.Background(), Config{DataDir: dataDir, Database: pg.Database(t), Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "BULWARK_SECRET_KEY") {
		t.Errorf("PostgreSQL without a key: err = %v", err)
	}
}

func TestStartsWithoutAVulnerabilityDatabase(t *testing.T) {
	addr, _ := start(t, Config{DataDir: t.TempDir()})
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("readyz without a vulnerability database: %d", resp.StatusCode)
	}
}

func TestTLS(t *testing.T) {
	dataDir := t.TempDir()
	emptyDB(t, dataDir)
	ca, err := testenv.NewCA("bulwark test CA")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ServerCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := kp.WriteFiles(t.TempDir(), "tls")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := start(t, Config{DataDir: dataDir, TLSCert: certFile, TLSKey: keyFile})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("healthz over TLS: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP answered on the TLS port")
	}
}
