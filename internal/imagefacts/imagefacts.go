// Package imagefacts answers, for the admission webhook, what the server
// knows about an image reference: its digest (from the store, where
// registry polls and cluster syncs keep tags current, else from the
// registry, cached), whether it was scanned, and its open vulnerabilities.
// Answers are cached briefly, so a review is a lookup.
//
// It does not judge: internal/admission applies the policy.
package imagefacts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulwarkhq/bulwark/internal/admission"
	"github.com/bulwarkhq/bulwark/internal/registry"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Options configure a Provider.
type Options struct {
	Store *store.DB
	// Wake tells a scheduler that a scan was queued; nil leaves it to the
	// scheduler's next look at the queue. Any replica's scheduler may run
	// the scan: a registered registry's with its credentials, another
	// anonymously.
	Wake func()
	// Resolve finds the digest of a tag the store does not know; default:
	// an anonymous HEAD request to the registry.
	Resolve func(ctx context.Context, ref name.Tag) (string, error)
	// TTL is how long facts about a digest are reused; default 10s. Tags
	// resolved from a registry are kept 5 times as long.
	TTL time.Duration
	// ResolveTimeout bounds asking a registry; default 2s.
	ResolveTimeout time.Duration
	// MaxEntries bounds each cache; default 10,000.
	MaxEntries int
	Logger     *slog.Logger
}

// Provider implements admission.Facts over the store.
type Provider struct {
	o Options

	mu    sync.Mutex
	tags  map[string]cached[string]                // "host/repo:tag" → digest
	facts map[string]cached[*admission.ImageFacts] // digest → facts
}

type cached[T any] struct {
	v       T
	expires time.Time
}

var _ admission.Facts = (*Provider)(nil)

// New returns a Provider.
func New(o Options) (*Provider, error) {
	if o.Store == nil {
		return nil, errors.New("imagefacts: no store")
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = 2 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if o.Resolve == nil {
		o.Resolve = headDigest
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{o: o, tags: map[string]cached[string]{}, facts: map[string]cached[*admission.ImageFacts]{}}, nil
}

func headDigest(ctx context.Context, ref name.Tag) (string, error) {
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// Image implements admission.Facts.
func (p *Provider) Image(ctx context.Context, reference string) (*admission.ImageFacts, error) {
	ref, err := name.ParseReference(reference)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", reference, err)
	}
	base := admission.ImageFacts{Reference: reference, Registry: ref.Context().RegistryStr(), Repository: ref.Context().RepositoryStr()}
	var digest string
	switch r := ref.(type) {
	case name.Digest:
		digest = r.DigestStr()
	case name.Tag:
		base.Tag = r.TagStr()
		digest = p.resolve(ctx, r)
	}
	if digest == "" {
		return &base, nil
	}
	f, err := p.byDigest(ctx, digest)
	if err != nil {
		return nil, err
	}
	out := *f
	out.Reference, out.Registry, out.Repository, out.Tag = base.Reference, base.Registry, base.Repository, base.Tag
	return &out, nil
}

// resolve returns the digest of a tag: from the cache, the store, or the
// registry; "" when none knows it.
func (p *Provider) resolve(ctx context.Context, ref name.Tag) string {
	key := ref.Name()
	now := time.Now()
	p.mu.Lock()
	c, ok := p.tags[key]
	p.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.v
	}
	digest := ""
	if im, err := p.o.Store.ImageByTag(ctx, ref.RegistryStr(), ref.RepositoryStr(), ref.TagStr()); err == nil {
		digest = im.Digest
	} else if !errors.Is(err, store.ErrNotFound) {
		p.o.Logger.Warn("resolving a tag from the store", "reference", key, "err", err)
	}
	ttl := p.o.TTL
	if digest == "" {
		rctx, cancel := context.WithTimeout(ctx, p.o.ResolveTimeout)
		d, err := p.o.Resolve(rctx, ref)
		cancel()
		if err != nil {
			p.o.Logger.Info("tag not resolved", "reference", key, "err", err)
		}
		digest, ttl = d, 5*p.o.TTL
	}
	p.mu.Lock()
	p.tags[key] = cached[string]{digest, now.Add(ttl)}
	evict(p.tags, p.o.MaxEntries, now)
	p.mu.Unlock()
	return digest
}

// byDigest returns the facts stored about a digest, cached for TTL.
func (p *Provider) byDigest(ctx context.Context, digest string) (*admission.ImageFacts, error) {
	now := time.Now()
	p.mu.Lock()
	c, ok := p.facts[digest]
	p.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.v, nil
	}
	f := &admission.ImageFacts{Digest: digest}
	im, err := p.o.Store.ImageByDigest(ctx, digest)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, err
	case !im.ScannedAt.IsZero():
		f.Scanned = true
		f.ScannedAt = im.MatchedAt
		if f.ScannedAt.IsZero() {
			f.ScannedAt = im.ScannedAt
		}
		f.Summary = admission.Summary{Critical: im.Summary.Critical, High: im.Summary.High, Medium: im.Summary.Medium,
			Low: im.Summary.Low, Unknown: im.Summary.Unknown, Fixable: im.Summary.Fixable}
		if f.Vulnerabilities, err = p.vulnerabilities(ctx, im.ID); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	p.facts[digest] = cached[*admission.ImageFacts]{f, now.Add(p.o.TTL)}
	evict(p.facts, p.o.MaxEntries, now)
	p.mu.Unlock()
	return f, nil
}

// vulnerabilities lists an image's open findings.
func (p *Provider) vulnerabilities(ctx context.Context, imageID int64) ([]admission.Vulnerability, error) {
	var out []admission.Vulnerability
	page := store.Page{Limit: 1000}
	for {
		fs, next, err := p.o.Store.Findings(ctx, store.FindingFilter{ImageID: imageID}, page)
		if err != nil {
			return nil, fmt.Errorf("reading findings of image %d: %w", imageID, err)
		}
		for _, f := range fs {
			out = append(out, admission.Vulnerability{ID: f.VulnID, Aliases: f.Aliases, Severity: f.Severity, CVSS: f.CVSS,
				Fixable: f.FixedVersion != "", Package: f.PackageName, Version: f.PackageVersion, FixedVersion: f.FixedVersion})
		}
		if next == "" {
			return out, nil
		}
		page.Cursor = next
	}
}

// Forget drops what is cached about a digest, so the next review reads the
// store again (after its scan finished).
func (p *Provider) Forget(digest string) {
	p.mu.Lock()
	delete(p.facts, digest)
	p.mu.Unlock()
}

// ScanNow implements admission.Facts: it queues a pull scan of the image
// and waits, until ctx's deadline, for its result.
func (p *Provider) ScanNow(ctx context.Context, reference string) (*admission.ImageFacts, error) {
	f, err := p.Image(ctx, reference)
	if err != nil {
		return nil, err
	}
	if f.Scanned {
		return f, nil
	}
	if f.Digest == "" {
		return f, fmt.Errorf("scanning %s: the tag could not be resolved", reference)
	}
	pull := f.Registry + "/" + f.Repository + "@" + f.Digest
	regID, err := p.registryOf(ctx, f.Registry)
	if err != nil {
		return nil, err
	}
	if _, err := p.o.Store.Enqueue(ctx, &store.Scan{Kind: store.ScanPull, Reason: "admission", RegistryID: regID, Reference: pull}); err != nil {
		return nil, fmt.Errorf("queueing a scan of %s: %w", reference, err)
	}
	if p.o.Wake != nil {
		p.o.Wake()
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-t.C:
		}
		p.Forget(f.Digest)
		got, err := p.byDigest(ctx, f.Digest)
		if err != nil {
			return nil, err
		}
		if got.Scanned {
			out := *got
			out.Reference, out.Registry, out.Repository, out.Tag = f.Reference, f.Registry, f.Repository, f.Tag
			return &out, nil
		}
	}
}

// registryOf returns the id of the registered registry serving host, or 0.
func (p *Provider) registryOf(ctx context.Context, host string) (int64, error) {
	regs, err := p.o.Store.Registries(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing registries: %w", err)
	}
	for _, r := range regs {
		if h, err := registry.HostOf(registry.Type(r.Type), r.URL); err == nil && h == host {
			return r.ID, nil
		}
	}
	return 0, nil
}

// evict drops expired entries once a cache is full, and arbitrary ones if
// it is still full.
func evict[T any](m map[string]cached[T], max int, now time.Time) {
	if len(m) <= max {
		return
	}
	for k, c := range m {
		if now.After(c.expires) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) <= max {
			return
		}
		delete(m, k)
	}
}
