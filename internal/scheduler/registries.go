package scheduler

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/registry"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// registryState is what the scheduler keeps per registry: a connector,
// rebuilt when the registry is edited, and its rate limiter, kept across
// edits so a change of settings does not reset the budget.
type registryState struct {
	updated   time.Time
	conn      registry.Connector
	limiter   *rate.Limiter
	transport http.RoundTripper
}

// rateLimited makes every request wait for the registry's limiter.
type rateLimited struct {
	next    http.RoundTripper
	limiter *rate.Limiter
}

func (t rateLimited) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.limiter.Wait(r.Context()); err != nil {
		return nil, fmt.Errorf("waiting for the registry's rate limit: %w", err)
	}
	return t.next.RoundTrip(r)
}

// connect returns the connector of r and the rate-limited transport for
// requests to it.
func (s *Scheduler) connect(r *store.Registry) (*registryState, error) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	st := s.regs[r.ID]
	limit := r.Settings.RateLimit
	if limit <= 0 {
		limit = s.o.RateLimit
	}
	if st != nil && st.updated.Equal(r.UpdatedAt) {
		return st, nil
	}
	if st == nil {
		st = &registryState{limiter: rate.NewLimiter(rate.Limit(limit), max(1, int(limit)))}
	} else {
		st.limiter.SetLimit(rate.Limit(limit))
		st.limiter.SetBurst(max(1, int(limit)))
	}
	base := s.o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	var creds registry.Credentials
	if len(r.Credentials) > 0 {
		if s.o.Box == nil {
			return nil, fmt.Errorf("registry %q has credentials but the server has no credentials key", r.Name)
		}
		var err error
		if creds, err = registry.OpenCredentials(s.o.Box, r.Name, r.Credentials); err != nil {
			return nil, err
		}
	}
	transport := RateLimitedTransport(base, st.limiter)
	conn, err := registry.New(registry.Config{
		Type: registry.Type(r.Type), URL: r.URL, Insecure: r.Settings.Insecure, Namespace: r.Settings.Namespace,
		Repositories: r.Settings.Repositories, Credentials: creds, Transport: transport,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to registry %q: %w", r.Name, err)
	}
	next := &registryState{updated: r.UpdatedAt, conn: conn, limiter: st.limiter, transport: transport}
	s.regs[r.ID] = next
	return next, nil
}

// auth returns credentials for pulling from and pushing to the registry.
func (st *registryState) auth(ctx context.Context) (authn.Authenticator, error) {
	a, err := st.conn.Authenticator(ctx)
	if err != nil {
		return nil, fmt.Errorf("authenticating to %s: %w", st.conn.Host(), err)
	}
	if a == nil {
		a = authn.Anonymous
	}
	return a, nil
}

func nameOptions(r *store.Registry) []name.Option {
	if r != nil && r.Settings.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// RateLimitedTransport makes every request through next wait for
// limiter; each registry's requests go through one.
func RateLimitedTransport(next http.RoundTripper, limiter *rate.Limiter) http.RoundTripper {
	return rateLimited{next: next, limiter: limiter}
}
