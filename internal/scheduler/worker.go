package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/referrer"
	"github.com/bulwarkhq/bulwark/internal/scan"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// workLoop claims and runs scans until ctx ends.
func (s *Scheduler) workLoop(ctx context.Context, worker int) {
	for ctx.Err() == nil {
		if !s.hasDB() {
			if !sleep(ctx, s.o.Tick, s.wakeWorkers) {
				return
			}
			continue
		}
		j, err := s.store.Claim(ctx, s.o.Owner, s.o.Lease)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("claiming a scan", "worker", worker, "err", err)
			}
		}
		if j == nil {
			if !sleep(ctx, s.o.Tick, s.wakeWorkers) {
				return
			}
			continue
		}
		s.runJob(ctx, j)
	}
}

// runJob runs one claimed scan, renewing its lease meanwhile, and records
// how it went.
func (s *Scheduler) runJob(ctx context.Context, j *store.Scan) {
	log := s.log.With("scan", j.ID, "kind", j.Kind, "reference", j.Reference, "attempt", j.Attempts)
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go s.renewLease(jobCtx, cancel, j)

	start := time.Now()
	imageID, findings, err := s.scanJob(jobCtx, j, log)
	s.m.scanDuration.WithLabelValues(j.Kind).Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		// Shutting down: the lease runs out and another replica, or this
		// one restarted, takes the scan again.
		return
	}
	if cause := context.Cause(jobCtx); err != nil && errors.Is(cause, errLeaseLost) {
		err = cause
	}
	record := context.WithoutCancel(ctx)
	if err == nil {
		if err := s.store.Succeed(record, j.ID, s.o.Owner, imageID, findings); err != nil {
			log.Warn("recording scan", "err", err)
			return
		}
		s.m.scans.WithLabelValues(j.Kind, "succeeded").Inc()
		log.Info("scan succeeded", "image", imageID, "findings", findings, "took", time.Since(start).Round(time.Millisecond))
		return
	}
	retryAt := time.Now().Add(s.o.Backoff(j.Attempts))
	retried, ferr := s.store.Fail(record, j.ID, s.o.Owner, err, retryAt)
	if ferr != nil {
		log.Warn("recording scan failure", "scan_err", err, "err", ferr)
		return
	}
	if retried {
		s.m.scans.WithLabelValues(j.Kind, "retried").Inc()
		log.Warn("scan failed, will retry", "retry_at", retryAt, "err", err)
		return
	}
	s.m.scans.WithLabelValues(j.Kind, "failed").Inc()
	log.Error("scan failed", "err", err)
}

var errLeaseLost = errors.New("scan lease lost to another server")

// renewLease extends the lease every third of its length until ctx ends;
// if the scan is no longer this replica's it cancels the scan.
func (s *Scheduler) renewLease(ctx context.Context, cancel context.CancelCauseFunc, j *store.Scan) {
	every := max(s.o.Lease/3, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.store.Renew(ctx, j.ID, s.o.Owner, s.o.Lease)
		if errors.Is(err, store.ErrNotFound) {
			cancel(errLeaseLost)
			return
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("renewing scan lease", "scan", j.ID, "err", err)
		}
	}
}

// scanJob runs j and returns the image it scanned and its findings count.
func (s *Scheduler) scanJob(ctx context.Context, j *store.Scan, log *slog.Logger) (int64, int, error) {
	db, err := s.acquire()
	if err != nil {
		return 0, 0, err
	}
	defer db.release()
	switch j.Kind {
	case store.ScanRematch:
		imageID := j.ImageID
		if imageID == 0 {
			img, err := s.store.ImageByDigest(ctx, j.Reference)
			if err != nil {
				return 0, 0, err
			}
			imageID = img.ID
		}
		n, err := s.rematch(ctx, db, imageID)
		return imageID, n, err
	case store.ScanPull:
		_, digest, ok := strings.Cut(j.Reference, "@")
		if !ok {
			return 0, 0, fmt.Errorf("scan reference %q has no digest", j.Reference)
		}
		// Scan only what changed: an image whose packages are stored is
		// matched again, not pulled again.
		img, err := s.store.ImageByDigest(ctx, digest)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, 0, err
		}
		if img != nil && !img.ScannedAt.IsZero() {
			log.Info("image already scanned: re-matching its packages", "image", img.ID)
			n, err := s.rematch(ctx, db, img.ID)
			return img.ID, n, err
		}
		return s.pull(ctx, db, j, digest, log)
	default:
		return 0, 0, fmt.Errorf("unknown scan kind %q", j.Kind)
	}
}

// rematch matches an image's stored packages against db.
func (s *Scheduler) rematch(ctx context.Context, db *openDB, imageID int64) (int, error) {
	pkgs, err := s.store.Packages(ctx, imageID)
	if err != nil {
		return 0, err
	}
	// Files an OS package installed are that package's, as in a scan.
	toMatch := make([]model.Package, 0, len(pkgs))
	for _, p := range pkgs {
		if p.OwnedBy == "" {
			toMatch = append(toMatch, p)
		}
	}
	res, err := db.db.Match(ctx, toMatch)
	if err != nil {
		return 0, fmt.Errorf("matching packages of image %d: %w", imageID, err)
	}
	if _, err := s.store.SaveResult(ctx, imageID, store.Result{Findings: res.Findings, DBBuilt: db.built, At: time.Now()}); err != nil {
		return 0, err
	}
	if s.o.Scanned != nil {
		if img, err := s.store.Image(ctx, imageID); err == nil {
			s.o.Scanned(img.Digest)
		}
	}
	return len(res.Findings), nil
}

// pull reads the image from its registry, scans it, stores the result and
// publishes the report when the registry asks for it.
func (s *Scheduler) pull(ctx context.Context, db *openDB, j *store.Scan, digest string, log *slog.Logger) (int64, int, error) {
	var (
		reg  *store.Registry
		st   *registryState
		auth authn.Authenticator
	)
	if j.RegistryID != 0 {
		var err error
		if reg, err = s.store.Registry(ctx, j.RegistryID); err != nil {
			return 0, 0, err
		}
		if st, err = s.connect(reg); err != nil {
			return 0, 0, err
		}
		if auth, err = st.auth(ctx); err != nil {
			return 0, 0, err
		}
		if err := st.limiter.Wait(ctx); err != nil {
			return 0, 0, fmt.Errorf("waiting for the registry's rate limit: %w", err)
		}
	} else if j.ClusterID != 0 && s.o.Keychain != nil {
		var err error
		if auth, err = s.clusterAuth(ctx, j); err != nil {
			return 0, 0, err
		}
	}
	img, _, err := scan.RemoteImage(ctx, j.Reference, scan.RegistryOptions{Insecure: reg != nil && reg.Settings.Insecure, Auth: auth})
	if err != nil {
		return 0, 0, err
	}
	// A referrer (such as a report this scheduler published, announced
	// by a push notification) is not an image: there is nothing to scan.
	if m, err := img.Manifest(); err == nil && m.Subject != nil {
		log.Info("manifest refers to another image: not scanned", "subject", m.Subject.Digest.String())
		return 0, 0, nil
	}
	scanner := &scan.Scanner{Extractors: s.extractors, Matcher: db.db, Built: db.built, Limits: scan.DefaultLimits(),
		WorkDir: s.o.WorkDir, Cache: s.cache, Logger: s.log}
	rep, err := scanner.Image(ctx, img, model.Target{Kind: model.TargetImage, Name: j.Reference})
	if err != nil {
		return 0, 0, fmt.Errorf("scanning %s: %w", j.Reference, err)
	}
	result := store.Result{Packages: rep.Packages, Findings: rep.Findings, Platform: rep.Target.Platform,
		OS: osName(rep.OS), Warnings: rep.Warnings, DBBuilt: db.built, At: time.Now()}
	// For an index the report is about the platform's image; the index's
	// digest gets the same result, so polls see it scanned.
	digests := []string{rep.Target.Digest}
	if digest != rep.Target.Digest {
		digests = append(digests, digest)
	}
	var imageID int64
	for i, d := range digests {
		id, err := s.store.SeeImage(ctx, d, store.ImageRef{}, time.Now())
		if err != nil {
			return 0, 0, err
		}
		if _, err := s.store.SaveResult(ctx, id, result); err != nil {
			return 0, 0, err
		}
		if s.o.Scanned != nil {
			s.o.Scanned(d)
		}
		if i == 0 {
			imageID = id
		}
	}
	if reg != nil && reg.Settings.PublishReports {
		s.publish(ctx, reg, st, auth, j.Reference, rep, log)
	}
	return imageID, len(rep.Findings), nil
}

// clusterAuth resolves the credentials for pulling a running image from the
// pull secrets its cluster lends.
func (s *Scheduler) clusterAuth(ctx context.Context, j *store.Scan) (authn.Authenticator, error) {
	kc, err := s.o.Keychain(ctx, j)
	if err != nil {
		return nil, fmt.Errorf("reading the image pull secrets of cluster %d: %w", j.ClusterID, err)
	}
	ref, err := name.NewDigest(j.Reference)
	if err != nil {
		return nil, fmt.Errorf("scan reference %q: %w", j.Reference, err)
	}
	auth, err := kc.Resolve(ref.Context())
	if err != nil {
		return nil, fmt.Errorf("resolving credentials for %s: %w", ref.Context(), err)
	}
	return auth, nil
}

// publish attaches the report to the image as an OCI referrer. A failure
// is logged and counted; the scan itself succeeded.
func (s *Scheduler) publish(ctx context.Context, reg *store.Registry, st *registryState, auth authn.Authenticator, reference string, rep *model.Report, log *slog.Logger) {
	err := func() error {
		subject, err := name.NewDigest(reference, nameOptions(reg)...)
		if err != nil {
			return fmt.Errorf("subject %s: %w", reference, err)
		}
		data, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("encoding report: %w", err)
		}
		_, err = referrer.Publish(ctx, subject, data, referrer.Options{Auth: auth, Insecure: reg.Settings.Insecure, Transport: st.transport})
		return err
	}()
	if err != nil {
		s.m.publishes.WithLabelValues("failed").Inc()
		log.Warn("publishing report as referrer failed", "err", err)
		return
	}
	s.m.publishes.WithLabelValues("succeeded").Inc()
}

func osName(o *model.OS) string {
	if o == nil {
		return ""
	}
	if o.PrettyName != "" {
		return o.PrettyName
	}
	return strings.TrimSpace(o.ID + " " + o.VersionID)
}
