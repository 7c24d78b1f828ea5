package scheduler_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/registry"
	"github.com/bulwarkhq/bulwark/internal/scheduler"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// TestRegistryWithCredentials scans from a real registry that demands a
// password (distribution with htpasswd), the credentials sealed in the
// store as the API stores them; a wrong password is recorded on the
// registry, never the password itself.
func TestRegistryWithCredentials(t *testing.T) {
	reg := testenv.StartDistribution(t)
	digest := reg.PushTarball(t, "team/slim:1.0", filepath.Join("..", "..", "testdata", "images", "slim.tar"))

	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t)
	ctx := context.Background()
	add := func(name, password string) *store.Registry {
		sealed, err := registry.SealCredentials(box, name, registry.Credentials{Username: reg.Username, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		r := &store.Registry{Name: name, Type: "oci", URL: reg.Host, Credentials: sealed, Settings: store.RegistrySettings{Insecure: true}}
		if err := db.CreateRegistry(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	const wrong = "not-the-password-123"
	bad := add("wrong-password", wrong)
	add("right-password", reg.Password)
	start(t, scheduler.Options{Store: db, Box: box, DBDir: newVulnDB(t)})

	waitFor(t, "the image behind basic auth to be scanned", hasFinding(db, digest.DigestStr(), "CVE-2025-4802"))
	waitFor(t, "the wrong password to be recorded", func() (bool, error) {
		r, err := db.Registry(ctx, bad.ID)
		return err == nil && r.LastError != "", err
	})
	r, _ := db.Registry(ctx, bad.ID)
	if strings.Contains(r.LastError, wrong) {
		t.Errorf("the registry's error shows the password: %s", r.LastError)
	}
	if !strings.Contains(strings.ToLower(r.LastError), "unauthorized") && !strings.Contains(r.LastError, "401") {
		t.Errorf("the error does not say the credentials were refused: %s", r.LastError)
	}
}

// TestSealedCredentialsNeedTheKey checks a scheduler without the key
// reports the registry instead of listing it anonymously.
func TestSealedCredentialsNeedTheKey(t *testing.T) {
	reg := startRegistry(t)
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box, _ := secretbox.New(key)
	sealed, _ := registry.SealCredentials(box, "r", registry.Credentials{Username: "u", Password: "p"})
	db := openSQLite(t)
	r := &store.Registry{Name: "r", Type: "oci", URL: reg.Host, Credentials: sealed, Settings: store.RegistrySettings{Insecure: true}}
	if err := db.CreateRegistry(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	start(t, scheduler.Options{Store: db, DBDir: newVulnDB(t)})
	waitFor(t, "the missing key to be recorded", func() (bool, error) {
		got, err := db.Registry(context.Background(), r.ID)
		return err == nil && strings.Contains(got.LastError, "credentials key"), err
	})
}

// TestRateLimitedTransport checks requests wait for the registry's
// limiter: with a budget of one request an hour, the second request gives
// up at its deadline instead of reaching the registry.
func TestRateLimitedTransport(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	client := &http.Client{Transport: scheduler.RateLimitedTransport(http.DefaultTransport, rate.NewLimiter(rate.Every(time.Hour), 1))}
	get := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("first request: %v", err)
	}
	err := get()
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("second request within the hour: err = %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("the registry saw %d requests, want 1", hits.Load())
	}
}
