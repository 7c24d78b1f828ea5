// Package scheduler runs Bulwark's continuous scanning: it lists the
// store's registries on a schedule, queues scans of digests it has not
// seen scanned, runs them with bounded concurrency, retries failures with
// backoff, rate-limits requests per registry, and re-matches stored SBOMs
// when the vulnerability database changes.
//
// The queue itself, and every decision several server replicas must agree
// on (who polls a registry, who runs a scan, who queues re-matches), lives
// in the store; the scheduler holds no state another replica needs. It
// does not serve HTTP: the API package calls Notify, ScanNow, PollNow and
// Rematch.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/list"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/scan"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Store is what the scheduler needs of the store; *store.DB is one.
type Store interface {
	Image(ctx context.Context, id int64) (*store.Image, error)
	Enqueue(ctx context.Context, j *store.Scan) (bool, error)
	Claim(ctx context.Context, owner string, lease time.Duration) (*store.Scan, error)
	Renew(ctx context.Context, id int64, owner string, lease time.Duration) error
	Succeed(ctx context.Context, id int64, owner string, imageID int64, findings int) error
	Fail(ctx context.Context, id int64, owner string, cause error, retryAt time.Time) (bool, error)
	QueueDepth(ctx context.Context) (map[string]int, error)

	SeeImage(ctx context.Context, digest string, ref store.ImageRef, at time.Time) (int64, error)
	SaveResult(ctx context.Context, imageID int64, r store.Result) (store.Summary, error)
	Packages(ctx context.Context, imageID int64) ([]model.Package, error)
	ImageByDigest(ctx context.Context, digest string) (*store.Image, error)
	ScannedImages(ctx context.Context, fn func(id int64, digest string) error) error

	Registries(ctx context.Context) ([]store.Registry, error)
	Registry(ctx context.Context, id int64) (*store.Registry, error)
	ClaimPoll(ctx context.Context, id int64, now, next time.Time) (bool, error)
	PollNow(ctx context.Context, id int64) error
	RecordPoll(ctx context.Context, id int64, at time.Time, message string) error
	SeeRepositories(ctx context.Context, registryID int64, names []string, at time.Time) error

	Setting(ctx context.Context, name string) (string, error)
	CompareAndSetSetting(ctx context.Context, name, old, value string) (bool, error)
}

var _ Store = (*store.DB)(nil)

// Options configure a Scheduler. Only Store and DBDir are required.
type Options struct {
	Store Store
	// Box opens registry credentials; nil works only for registries
	// without credentials.
	Box *secretbox.Box
	// DBDir holds the vulnerability database; it is watched for updates.
	DBDir string
	// Owner names this replica in scan leases; default hostname, pid and
	// a random suffix.
	Owner string
	// Workers is how many scans run at once; default 2.
	Workers int
	// Lease is how long a claimed scan stays this replica's without a
	// renewal; it is renewed while the scan runs. Default 10m.
	Lease time.Duration
	// PollInterval is how often registries without their own interval are
	// listed; default 15m.
	PollInterval time.Duration
	// RateLimit is the default requests per second sent to one registry;
	// default 10.
	RateLimit float64
	// MaxTags is the default number of tags scanned per repository;
	// default 20.
	MaxTags int
	// Backoff is the delay before retry attempt+1 of a failed scan;
	// default 30s·2^(attempt-1), at most 1h, ±20% jitter.
	Backoff func(attempt int) time.Duration
	// WorkDir is where scans keep the files they read; empty means the
	// system's temporary directory.
	WorkDir string
	// CacheDir holds the layer cache; empty means no cache.
	CacheDir string
	Logger   *slog.Logger
	// Registerer gets the scheduler's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Transport carries registry listings, digest lookups and report
	// publishing; nil means the default. Image pulls use scan.RemoteImage,
	// which has no transport option.
	Transport http.RoundTripper
	// Tick is how often the loops look for work; default 2s.
	Tick time.Duration
	// Keychain returns the credentials for a scan queued from a cluster
	// (Scan.ClusterID set) of an image from no registered registry: the
	// image pull secrets its pod named. Nil pulls such images anonymously.
	Keychain func(ctx context.Context, j *store.Scan) (authn.Keychain, error)
	// Scanned is called after an image's result was stored (a pull or a
	// re-match), with its digest, so verdicts about it can be recomputed.
	// It must not block.
	Scanned func(digest string)
}

// layerCacheMaxBytes bounds the layer cache, as the command line does.
const layerCacheMaxBytes = 10 << 30

// settingDBBuilt is the store setting holding the build time of the
// newest database any replica has re-matched against.
const settingDBBuilt = "vulndb.built"

// Scheduler runs continuous scanning. Its methods are safe for concurrent
// use.
type Scheduler struct {
	o          Options
	store      Store
	log        *slog.Logger
	extractors []extract.Extractor
	cache      *scan.LayerCache
	m          *metrics

	dbMu sync.RWMutex
	db   *openDB

	regMu sync.Mutex
	regs  map[int64]*registryState

	wakeWorkers chan struct{}
	wakePoll    chan struct{}
}

// New checks o, fills in defaults and opens the vulnerability database in
// o.DBDir.
func New(o Options) (*Scheduler, error) {
	if o.Store == nil {
		return nil, errors.New("scheduler: no store")
	}
	if o.DBDir == "" {
		return nil, errors.New("scheduler: no vulnerability database directory")
	}
	if o.Owner == "" {
		o.Owner = defaultOwner()
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Lease <= 0 {
		o.Lease = 10 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 15 * time.Minute
	}
	if o.RateLimit <= 0 {
		o.RateLimit = 10
	}
	if o.MaxTags <= 0 {
		o.MaxTags = 20
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	if o.Tick <= 0 {
		o.Tick = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		o: o, store: o.Store, log: o.Logger.With("component", "scheduler"),
		extractors: list.All(), regs: map[int64]*registryState{},
		wakeWorkers: make(chan struct{}, 1), wakePoll: make(chan struct{}, 1),
	}
	if o.CacheDir != "" {
		c, err := scan.NewLayerCache(o.CacheDir, layerCacheMaxBytes)
		if err != nil {
			return nil, fmt.Errorf("scheduler: opening layer cache: %w", err)
		}
		s.cache = c
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("scheduler: registering metrics: %w", err)
	}
	s.m = m
	// A server may start before its first database is written: it serves
	// the API and lists registries, and scans wait until the database
	// appears (the watcher opens it).
	db, err := openDatabase(o.DBDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.log.Warn("no vulnerability database yet; scans wait until one is written (bulwark db update --db-dir DIR, or db import)", "dir", o.DBDir)
	case err != nil:
		return nil, fmt.Errorf("scheduler: %w", err)
	default:
		s.db = db
		s.m.dbBuilt.Set(float64(db.built.Unix()))
	}
	return s, nil
}

// DefaultBackoff is 30s·2^(attempt-1), at most an hour, with ±20% jitter
// so scans that failed together do not retry together.
func DefaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := 30 * time.Second * time.Duration(math.Pow(2, float64(min(attempt-1, 10))))
	d = min(d, time.Hour)
	return time.Duration(float64(d) * (0.8 + 0.4*mrand.Float64()))
}

func defaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run polls registries, runs scans and watches the database until ctx
// ends; it then waits for running scans to stop and returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	s.log.Info("scheduler started", "owner", s.o.Owner, "workers", s.o.Workers, "db_built", s.DBBuilt())
	if err := s.checkDBBuilt(ctx); err != nil {
		s.log.Warn("comparing database build time", "err", err)
	}
	var wg sync.WaitGroup
	for i := range s.o.Workers {
		wg.Go(func() { s.workLoop(ctx, i) })
	}
	wg.Go(func() { s.pollLoop(ctx) })
	wg.Go(func() { s.watchDB(ctx) })
	wg.Wait()
	s.log.Info("scheduler stopped", "owner", s.o.Owner)
	return nil
}

// Close releases the vulnerability database. Call it after Run returned.
func (s *Scheduler) Close() error {
	s.dbMu.Lock()
	db := s.db
	s.db = nil
	s.dbMu.Unlock()
	if db == nil {
		return nil
	}
	return db.close()
}

// DBBuilt is the build time of the vulnerability database in use.
func (s *Scheduler) DBBuilt() time.Time {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return time.Time{}
	}
	return s.db.built
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sleep waits d, a wake-up on c, or the end of ctx; it reports whether
// ctx is still live.
func sleep(ctx context.Context, d time.Duration, c chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-c:
	}
	return true
}
