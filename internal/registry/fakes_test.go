package registry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// fastLimits makes retries instant and pages small, so tests of bounds
// run quickly.
func fastLimits(t *testing.T, c Connector) *httpClient {
	t.Helper()
	hc := c.(interface{ client() *httpClient }).client()
	hc.backoff, hc.maxWait = time.Millisecond, 10*time.Millisecond
	return hc
}

// mustNew is New that fails the test on error.
func mustNew(t *testing.T, cfg Config) Connector {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Type, err)
	}
	return c
}

// frontRegistry serves a real in-process registry over TLS behind a
// provider's registry auth: /v2/ requests pass to the registry only when
// authorized accepts them, else they get 401 with the WWW-Authenticate
// value challenge returns for the server's host. Other paths go to api
// (the provider's API on the registry host), or 404 when api is nil.
func frontRegistry(t *testing.T, authorized func(*http.Request) bool, challenge func(host string) string, api http.Handler) (*httptest.Server, *testenv.Registry) {
	t.Helper()
	upstream := testenv.InProcessRegistry(t)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream.Host})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case api != nil && r.URL.Path == "/v2/token": // GAR's token service
			api.ServeHTTP(w, r)
		case r.URL.Path == "/v2" || len(r.URL.Path) >= 4 && r.URL.Path[:4] == "/v2/":
			if !authorized(r) {
				w.Header().Set("WWW-Authenticate", challenge(r.Host))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			r.Header.Del("Authorization")
			proxy.ServeHTTP(w, r)
		case api != nil:
			api.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, upstream
}

// pushRandom pushes a random image as repoTag.
func pushRandom(t *testing.T, reg *testenv.Registry, repoTag string) v1.Image {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	reg.PushImage(t, repoTag, img)
	return img
}

// pullDigest pulls Host()/repoTag with the connector's authenticator and
// returns the image's digest.
func pullDigest(t *testing.T, c Connector, repoTag string, rt http.RoundTripper) v1.Hash {
	t.Helper()
	ctx := t.Context()
	auth, err := c.Authenticator(ctx)
	if err != nil {
		t.Fatalf("Authenticator: %v", err)
	}
	ref, err := name.ParseReference(c.Host() + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuth(auth), remote.WithContext(ctx)}
	if rt != nil {
		opts = append(opts, remote.WithTransport(rt))
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantDigest is img's digest.
func wantDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// withTimeout is t.Context bounded, so a hang fails instead of blocking.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func readCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// sortedCopy returns s sorted, leaving s alone.
func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// formOf parses a request's form, failing closed to an empty one.
func formOf(r *http.Request) url.Values {
	if err := r.ParseForm(); err != nil {
		return url.Values{}
	}
	return r.Form
}
