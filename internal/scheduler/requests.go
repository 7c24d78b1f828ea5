package scheduler

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulwarkhq/bulwark/internal/notification"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// ErrUnknownRegistry is returned by ScanNow for a reference to another
// registry than the one named.
var ErrUnknownRegistry = errors.New("reference is not in the registry")

// Notify queues pull scans of pushed manifests. A push is matched to the
// registry whose host is the push's host and whose repository filter
// selects the repository; pushes that match no registry are skipped and
// counted in the metrics. It returns how many scans were newly queued.
func (s *Scheduler) Notify(ctx context.Context, pushes []notification.Push) (int, error) {
	regs, err := s.store.Registries(ctx)
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, p := range pushes {
		// Referrer fallback tags are reports, not images.
		if strings.HasPrefix(p.Tag, "sha256-") {
			s.m.notifications.WithLabelValues("ignored").Inc()
			continue
		}
		reg, err := s.registryFor(regs, p.Host, p.Repository)
		if err != nil {
			return queued, err
		}
		if reg == nil {
			s.m.notifications.WithLabelValues("unknown_registry").Inc()
			s.log.Info("push to an unknown registry skipped", "host", p.Host, "repository", p.Repository)
			continue
		}
		added, err := s.queueImage(ctx, reg.ID, p.Host, p.Repository, p.Tag, p.Digest, "notification")
		if err != nil {
			s.m.notifications.WithLabelValues("failed").Inc()
			return queued, fmt.Errorf("queueing scan of pushed %s/%s@%s: %w", p.Host, p.Repository, p.Digest, err)
		}
		if added {
			queued++
			s.m.notifications.WithLabelValues("queued").Inc()
		} else {
			s.m.notifications.WithLabelValues("duplicate").Inc()
		}
	}
	if queued > 0 {
		wake(s.wakeWorkers)
	}
	return queued, nil
}

// registryFor returns the registry at host whose repository filter
// selects repo, or nil.
func (s *Scheduler) registryFor(regs []store.Registry, host, repo string) (*store.Registry, error) {
	for i := range regs {
		r := &regs[i]
		st, err := s.connect(r)
		if err != nil {
			s.log.Warn("registry skipped for a notification", "registry", r.Name, "err", err)
			continue
		}
		if st.conn.Host() != host || !selects(r.Settings.Repositories, repo) {
			continue
		}
		return r, nil
	}
	return nil, nil
}

// selects reports whether the globs select repo, as the connectors do.
func selects(globs []string, repo string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, repo); ok {
			return true
		}
	}
	return false
}

// ScanNow queues a pull scan of reference ("repo:tag", "repo@digest", or
// either with the registry's host in front) in a registry, resolving a
// tag to its digest first.
func (s *Scheduler) ScanNow(ctx context.Context, registryID int64, reference string) (*store.Scan, error) {
	reg, err := s.store.Registry(ctx, registryID)
	if err != nil {
		return nil, err
	}
	st, err := s.connect(reg)
	if err != nil {
		return nil, err
	}
	host := st.conn.Host()
	full := reference
	if !strings.HasPrefix(reference, host+"/") {
		full = host + "/" + reference
	}
	ref, err := name.ParseReference(full, nameOptions(reg)...)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", reference, err)
	}
	if ref.Context().RegistryStr() != host {
		return nil, fmt.Errorf("%q: %w %q", reference, ErrUnknownRegistry, reg.Name)
	}
	repo := ref.Context().RepositoryStr()
	var tag, digest string
	switch r := ref.(type) {
	case name.Digest:
		digest = r.DigestStr()
	case name.Tag:
		tag = r.TagStr()
		auth, err := st.auth(ctx)
		if err != nil {
			return nil, err
		}
		desc, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(st.transport))
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", reference, err)
		}
		digest = desc.Digest.String()
	}
	if _, err := s.store.SeeImage(ctx, digest, store.ImageRef{RegistryID: reg.ID, Host: host, Repository: repo, Tag: tag}, time.Now()); err != nil {
		return nil, err
	}
	j := &store.Scan{Kind: store.ScanPull, Reason: "manual", RegistryID: reg.ID, Reference: host + "/" + repo + "@" + digest}
	if _, err := s.store.Enqueue(ctx, j); err != nil {
		return nil, err
	}
	wake(s.wakeWorkers)
	return j, nil
}

// PollNow makes a registry due for listing and wakes the poll loop.
func (s *Scheduler) PollNow(ctx context.Context, registryID int64) error {
	if err := s.store.PollNow(ctx, registryID); err != nil {
		return err
	}
	wake(s.wakePoll)
	return nil
}

// Rematch queues a re-match of every image with stored packages and
// returns how many were newly queued.
func (s *Scheduler) Rematch(ctx context.Context, reason string) (int, error) {
	n := 0
	err := s.store.ScannedImages(ctx, func(id int64, digest string) error {
		added, err := s.store.Enqueue(ctx, &store.Scan{Kind: store.ScanRematch, Reason: reason, Reference: digest, ImageID: id})
		if added {
			n++
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("queueing re-matches: %w", err)
	}
	if n > 0 {
		wake(s.wakeWorkers)
	}
	return n, nil
}

// Wake tells an idle worker that scans were queued by someone else (a
// cluster sync), so it need not wait for its next tick.
func (s *Scheduler) Wake() { wake(s.wakeWorkers) }
