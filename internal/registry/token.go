package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// cachedToken is a short-lived credential fetched on demand and reused
// until shortly before it expires.
type cachedToken struct {
	fetch func(ctx context.Context) (token string, expiry time.Time, err error)
	// now is time.Now; tests replace it.
	now func() time.Time

	mu      sync.Mutex
	token   string
	fetched time.Time
	expiry  time.Time
}

func newCachedToken(fetch func(ctx context.Context) (string, time.Time, error)) *cachedToken {
	return &cachedToken{fetch: fetch, now: time.Now}
}

// get returns the cached token, fetching a new one when there is none or it
// is in the last part of its life: five minutes, or half of a shorter life.
func (t *cachedToken) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	margin := min(5*time.Minute, t.expiry.Sub(t.fetched)/2)
	if t.token != "" && now.Before(t.expiry.Add(-margin)) {
		return t.token, nil
	}
	token, expiry, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	t.token, t.fetched, t.expiry = token, now, expiry
	return token, nil
}

// refreshingAuth is an authn.Authenticator whose credentials are renewed
// by config on every call (which caches as it sees fit).
type refreshingAuth struct {
	config func(ctx context.Context) (*authn.AuthConfig, error)
}

var (
	_ authn.Authenticator        = (*refreshingAuth)(nil)
	_ authn.ContextAuthenticator = (*refreshingAuth)(nil)
)

// Authorization is for callers without a context; it bounds the token
// fetch to two minutes.
func (a *refreshingAuth) Authorization() (*authn.AuthConfig, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return a.config(ctx)
}

func (a *refreshingAuth) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	return a.config(ctx)
}

// jwtExpiry reads the exp claim of a JWT without verifying it (the issuer
// verifies its tokens; we only need to know when to renew), or returns
// fallback when there is none.
func jwtExpiry(token string, fallback time.Time) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fallback
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return fallback
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 || claims.Exp > 1<<40 {
		return fallback
	}
	return time.Unix(int64(claims.Exp), 0)
}
