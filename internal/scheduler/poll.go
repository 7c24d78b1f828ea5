package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// neverPoll pushes a registry that is never polled on a schedule far
// enough into the future.
const neverPoll = 100 * 365 * 24 * time.Hour

// pollLoop lists every due registry each tick, and keeps the queue-depth
// gauge current.
func (s *Scheduler) pollLoop(ctx context.Context) {
	for {
		s.updateQueueDepth(ctx)
		regs, err := s.store.Registries(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("listing registries", "err", err)
		}
		for i := range regs {
			if ctx.Err() != nil {
				return
			}
			s.pollIfDue(ctx, &regs[i])
		}
		if !sleep(ctx, s.o.Tick, s.wakePoll) {
			return
		}
	}
}

func (s *Scheduler) updateQueueDepth(ctx context.Context) {
	depth, err := s.store.QueueDepth(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading queue depth", "err", err)
		}
		return
	}
	for _, st := range []string{store.ScanQueued, store.ScanRunning, store.ScanSucceeded, store.ScanFailed} {
		s.m.queueDepth.WithLabelValues(st).Set(float64(depth[st]))
	}
}

// pollIfDue lists r if it is due and this replica claims the listing.
func (s *Scheduler) pollIfDue(ctx context.Context, r *store.Registry) {
	now := time.Now()
	interval := time.Duration(r.Settings.PollInterval)
	if interval == 0 {
		interval = s.o.PollInterval
	}
	if interval < 0 {
		// Push notifications only; PollNow still lists it once.
		if r.NextPollAt.After(time.UnixMilli(0)) {
			return
		}
		interval = neverPoll
	}
	if r.NextPollAt.After(now) {
		return
	}
	won, err := s.store.ClaimPoll(ctx, r.ID, now, now.Add(interval))
	if err != nil {
		s.log.Warn("claiming registry poll", "registry", r.Name, "err", err)
		return
	}
	if !won {
		return
	}
	queued, err := s.poll(ctx, r)
	msg := ""
	result := "succeeded"
	if err != nil {
		msg, result = err.Error(), "failed"
		s.log.Warn("registry poll failed", "registry", r.Name, "queued", queued, "err", err)
	} else {
		s.log.Info("registry polled", "registry", r.Name, "queued", queued)
	}
	s.m.polls.WithLabelValues(result).Inc()
	if err := s.store.RecordPoll(context.WithoutCancel(ctx), r.ID, time.Now(), msg); err != nil {
		s.log.Warn("recording registry poll", "registry", r.Name, "err", err)
	}
	if queued > 0 {
		wake(s.wakeWorkers)
	}
}

// poll lists r's repositories and tags, records each tag's digest and
// queues a pull of every digest never scanned. A tag whose digest is
// already scanned costs one HEAD request. Errors of single tags do not
// stop the listing; the first is returned with a count.
func (s *Scheduler) poll(ctx context.Context, r *store.Registry) (int, error) {
	st, err := s.connect(r)
	if err != nil {
		return 0, err
	}
	repos, err := st.conn.Repositories(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing repositories: %w", err)
	}
	if err := s.store.SeeRepositories(ctx, r.ID, repos, time.Now()); err != nil {
		return 0, err
	}
	auth, err := st.auth(ctx)
	if err != nil {
		return 0, err
	}
	maxTags := r.Settings.MaxTags
	if maxTags <= 0 {
		maxTags = s.o.MaxTags
	}
	var (
		queued int
		errs   []error
	)
	for _, repo := range repos {
		tags, err := st.conn.Tags(ctx, repo)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing tags of %s: %w", repo, err))
			continue
		}
		n := 0
		for _, tag := range tags {
			if ctx.Err() != nil {
				return queued, ctx.Err()
			}
			// Referrer fallback tags point at reports, not images.
			if strings.HasPrefix(tag, "sha256-") {
				continue
			}
			if n++; n > maxTags {
				break
			}
			added, err := s.seeTag(ctx, r, st, auth, repo, tag)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if added {
				queued++
			}
		}
	}
	switch len(errs) {
	case 0:
		return queued, nil
	case 1:
		return queued, errs[0]
	default:
		return queued, fmt.Errorf("%w (and %d more errors)", errs[0], len(errs)-1)
	}
}

// seeTag resolves repo:tag to its digest, records it, and queues a pull
// if the image was never scanned.
func (s *Scheduler) seeTag(ctx context.Context, r *store.Registry, st *registryState, auth authn.Authenticator, repo, tag string) (bool, error) {
	host := st.conn.Host()
	ref, err := name.NewTag(host+"/"+repo+":"+tag, nameOptions(r)...)
	if err != nil {
		return false, fmt.Errorf("tag %s:%s: %w", repo, tag, err)
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(st.transport))
	if err != nil {
		return false, fmt.Errorf("resolving %s:%s: %w", repo, tag, err)
	}
	digest := desc.Digest.String()
	return s.queueImage(ctx, r.ID, host, repo, tag, digest, "poll")
}

// queueImage records an image seen at host/repo:tag and queues a pull of
// it unless it was scanned already.
func (s *Scheduler) queueImage(ctx context.Context, registryID int64, host, repo, tag, digest, reason string) (bool, error) {
	now := time.Now()
	if _, err := s.store.SeeImage(ctx, digest, store.ImageRef{RegistryID: registryID, Host: host, Repository: repo, Tag: tag}, now); err != nil {
		return false, err
	}
	img, err := s.store.ImageByDigest(ctx, digest)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if img != nil && !img.ScannedAt.IsZero() {
		return false, nil
	}
	return s.store.Enqueue(ctx, &store.Scan{Kind: store.ScanPull, Reason: reason, RegistryID: registryID,
		Reference: host + "/" + repo + "@" + digest})
}
