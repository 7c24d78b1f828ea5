// Package attrib attributes the node sensor's kernel events to the
// containers they come from. An event names its process by pid and by the
// cgroup it sits in (the v2 cgroup id and the last element of its cgroup
// path, or of its v1 memory cgroup's path on a cgroup v1 host); the
// Resolver maps those to the container the runtime says owns that cgroup —
// containerd over its own gRPC API (Containerd), or any runtime over the
// Kubernetes CRI (CRI, for CRI-O) — with the container's Kubernetes pod,
// namespace and name and its image's digest.
//
// The runtime's view is cached: a known cgroup costs an atomic load and a
// map lookup. An unknown one refreshes the cache from the runtime, at most
// once per MinRefreshInterval however many events miss at once, and a
// cgroup the runtime does not know (a host process's) is remembered as
// such for NegativeTTL. Where the runtime is unreachable or does not know
// a container, the runtimes' cgroup naming conventions
// (cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope,
// libpod-<id>.scope, a bare 64-hex id, and the kubelet's pod<uid>) in the
// process's /proc/<pid>/cgroup still give its id and pod uid; the event's
// own cgroup name is cut to 63 bytes, too short for an id.
//
// The package owns the mapping and its cache; reading events, process
// ancestry and sending belong to the sensor.
package attrib

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Defaults of Config.
const (
	DefaultMinRefreshInterval = 200 * time.Millisecond
	DefaultNegativeTTL        = 5 * time.Second
	DefaultRefreshTimeout     = 10 * time.Second
	DefaultResyncInterval     = time.Minute
	DefaultMaxContainers      = 16384
	DefaultMaxMisses          = 16384
)

// Config tunes a Resolver. The zero value works on a node where the
// sensor sees the host's /proc and cgroup hierarchies at their usual
// places.
type Config struct {
	// ProcRoot is where the host's /proc is mounted; default "/proc". The
	// sensor needs the host's pid namespace view, as the runtime reports
	// host pids.
	ProcRoot string
	// Cgroup2Root is where the host's cgroup v2 hierarchy is mounted, to
	// find a container's cgroup id; default: where /proc/self/mountinfo
	// says a cgroup2 hierarchy is mounted whole. Without one, containers
	// are matched by cgroup name only.
	Cgroup2Root string
	// MinRefreshInterval is the least time between two refreshes from the
	// runtime; default DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// NegativeTTL is how long a cgroup the runtime did not know is taken
	// for a host's; default DefaultNegativeTTL.
	NegativeTTL time.Duration
	// RefreshTimeout bounds one refresh; default DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	// ResyncInterval is how often Run refreshes without being told of a
	// change, so that removed containers are forgotten; default
	// DefaultResyncInterval.
	ResyncInterval time.Duration
	// MaxContainers bounds the containers kept; MaxMisses the remembered
	// unknown cgroups. Defaults DefaultMaxContainers and DefaultMaxMisses.
	MaxContainers, MaxMisses int
	Logger                   *slog.Logger
}

// Resolver maps a process's cgroup to its container. It is safe for
// concurrent use.
type Resolver struct {
	src         Source
	cfg         Config
	cgroup2Root string
	log         *slog.Logger

	snap atomic.Pointer[snapshot]

	// refreshing holds the right to refresh; whoever waits for it gets
	// the refresh in flight's result instead of starting another.
	refreshing chan struct{}
	lastStart  time.Time // when the last refresh began; guarded by refreshing
	failing    bool      // the last refresh failed; guarded by refreshing

	missMu sync.RWMutex
	misses map[keys]miss
}

// snapshot is one refresh's view of the runtime; never modified once
// published.
type snapshot struct {
	byID   map[uint64]*wire.Container
	byName map[string]*wire.Container
	// tasks remembers each task's keys, so that a refresh reads /proc only
	// for tasks it has not seen.
	tasks map[taskKey]keys
}

type taskKey struct {
	ns, id string
	pid    uint32
}

// miss remembers a cgroup the runtime did not know: c is what its path's
// naming convention said (nil: nothing, a host process).
type miss struct {
	c       *wire.Container
	expires time.Time
}

// New returns a Resolver asking src. It does not refresh until the first
// Lookup misses, or Refresh or Run is called.
func New(src Source, cfg Config) *Resolver {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	cfg.MinRefreshInterval = cmp.Or(cfg.MinRefreshInterval, DefaultMinRefreshInterval)
	cfg.NegativeTTL = cmp.Or(cfg.NegativeTTL, DefaultNegativeTTL)
	cfg.RefreshTimeout = cmp.Or(cfg.RefreshTimeout, DefaultRefreshTimeout)
	cfg.ResyncInterval = cmp.Or(cfg.ResyncInterval, DefaultResyncInterval)
	cfg.MaxContainers = cmp.Or(cfg.MaxContainers, DefaultMaxContainers)
	cfg.MaxMisses = cmp.Or(cfg.MaxMisses, DefaultMaxMisses)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Resolver{
		src:         src,
		cfg:         cfg,
		cgroup2Root: cfg.Cgroup2Root,
		log:         cfg.Logger.With("component", "attrib"),
		refreshing:  make(chan struct{}, 1),
		misses:      map[keys]miss{},
	}
	if r.cgroup2Root == "" {
		if data, err := readBounded("/proc/self/mountinfo"); err == nil {
			r.cgroup2Root = cgroup2Mount(data)
		}
	}
	r.snap.Store(&snapshot{})
	return r
}

// Lookup returns the container the process pid runs in, given the cgroup
// id and name its event carries (as probe.Event's CgroupID and Cgroup);
// false for a process of the host. An event without cgroup fields (id 0,
// name "") is looked up by the process's /proc/<pid>/cgroup instead.
//
// A cgroup seen before costs no system call. An unknown one refreshes
// from the runtime (waiting for a refresh already in flight rather than
// starting another); ctx bounds that wait. The returned Container is
// shared and must not be modified.
func (r *Resolver) Lookup(ctx context.Context, pid uint32, cgroupID uint64, cgroupName string) (*wire.Container, bool) {
	k := keys{ID: cgroupID, Name: truncateName(cgroupName)}
	if c := r.snap.Load().find(k); c != nil {
		return c, true
	}
	if k == (keys{}) {
		if pid == 0 {
			return nil, false
		}
		pc, err := readProcCgroup(r.cfg.ProcRoot, pid)
		if err != nil {
			return nil, false
		}
		if k = cgroupKeys(pc, r.cgroup2Root); k == (keys{}) {
			return nil, false // in the root cgroups: the host's
		}
		if c := r.snap.Load().find(k); c != nil {
			return c, true
		}
	}
	now := time.Now()
	if c, ok := r.knownMiss(k, now); ok {
		return c, c != nil
	}
	fresh := r.refreshAfter(ctx, now)
	if c := r.snap.Load().find(k); c != nil {
		return c, true
	}
	c := r.byConvention(pid, k)
	// Only a refresh begun after the miss proves the runtime does not
	// know the cgroup; otherwise ask again after the rate limit.
	ttl := r.cfg.NegativeTTL
	if !fresh {
		ttl = r.cfg.MinRefreshInterval
	}
	r.rememberMiss(k, c, time.Now().Add(ttl))
	return c, c != nil
}

// find looks k up: by cgroup id first, as names may repeat in different
// places of the hierarchy.
func (s *snapshot) find(k keys) *wire.Container {
	if k.ID != 0 {
		if c, ok := s.byID[k.ID]; ok {
			return c
		}
	}
	if k.Name != "" {
		return s.byName[k.Name]
	}
	return nil
}

func (r *Resolver) knownMiss(k keys, now time.Time) (*wire.Container, bool) {
	r.missMu.RLock()
	m, ok := r.misses[k]
	r.missMu.RUnlock()
	if !ok || now.After(m.expires) {
		return nil, false
	}
	return m.c, true
}

func (r *Resolver) rememberMiss(k keys, c *wire.Container, expires time.Time) {
	r.missMu.Lock()
	defer r.missMu.Unlock()
	if len(r.misses) >= r.cfg.MaxMisses {
		now := time.Now()
		maps.DeleteFunc(r.misses, func(_ keys, m miss) bool { return now.After(m.expires) })
		if len(r.misses) >= r.cfg.MaxMisses {
			// Every entry is live: a flood of distinct cgroups. Forgetting
			// them costs refreshes (rate limited), not correctness.
			clear(r.misses)
		}
	}
	r.misses[k] = miss{c: c, expires: expires}
}

// byConvention recognises the container from its cgroup path's names when
// the runtime does not know it. It reads the process's full cgroup path:
// the event's name is cut to 63 bytes, which no 64-hex id fits in.
func (r *Resolver) byConvention(pid uint32, k keys) *wire.Container {
	if pid == 0 {
		return nil
	}
	pc, err := readProcCgroup(r.cfg.ProcRoot, pid)
	if err != nil {
		return nil // exited
	}
	// The pid may have been reused since the event.
	if pk := cgroupKeys(pc, r.cgroup2Root); !(k.Name != "" && pk.Name == k.Name) && !(k.ID != 0 && pk.ID == k.ID) {
		return nil
	}
	p := pc.Unified
	if p == "" || p == "/" {
		p = pc.Memory
	}
	m, ok := matchCgroupPath(p)
	if !ok {
		return nil
	}
	return &wire.Container{ID: m.ID, Runtime: m.Runtime, PodUID: m.PodUID}
}

// refreshAfter makes sure a refresh begun at or after t has been tried,
// unless the rate limit forbids one now, and reports whether one
// succeeded. It waits for a refresh in flight rather than starting a
// second.
func (r *Resolver) refreshAfter(ctx context.Context, t time.Time) bool {
	select {
	case r.refreshing <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-r.refreshing }()
	if !r.lastStart.Before(t) {
		return !r.failing
	}
	if time.Since(r.lastStart) < r.cfg.MinRefreshInterval {
		return false
	}
	return r.refreshLocked(ctx) == nil
}

// Refresh reloads the runtime's containers now, waiting out the rate
// limit if a refresh happened less than MinRefreshInterval ago.
func (r *Resolver) Refresh(ctx context.Context) error {
	select {
	case r.refreshing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.refreshing }()
	if wait := r.cfg.MinRefreshInterval - time.Since(r.lastStart); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return r.refreshLocked(ctx)
}

// refreshLocked lists the runtime's tasks, derives each new task's keys
// from its /proc/<pid>/cgroup and publishes a new snapshot, which drops
// the containers that are gone. A failed listing keeps the old snapshot.
func (r *Resolver) refreshLocked(ctx context.Context) error {
	r.lastStart = time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RefreshTimeout)
	defer cancel()
	tasks, err := r.src.Tasks(ctx)
	if err != nil {
		if !r.failing {
			r.log.Warn("container runtime unreachable; attributing by cgroup name only", "error", err)
		}
		r.failing = true
		return fmt.Errorf("refreshing containers: %w", err)
	}
	if r.failing {
		r.log.Info("container runtime reachable again")
	}
	r.failing = false
	if len(tasks) > r.cfg.MaxContainers {
		r.log.Warn("more containers than attribution keeps; ignoring the rest", "containers", len(tasks), "max", r.cfg.MaxContainers)
		tasks = tasks[:r.cfg.MaxContainers]
	}
	// Sandboxes first, so that a container sharing their cgroup wins.
	slices.SortStableFunc(tasks, func(a, b Task) int {
		switch {
		case a.Sandbox == b.Sandbox:
			return 0
		case a.Sandbox:
			return -1
		default:
			return 1
		}
	})
	old := r.snap.Load()
	s := &snapshot{
		byID:   make(map[uint64]*wire.Container, len(tasks)),
		byName: make(map[string]*wire.Container, len(tasks)),
		tasks:  make(map[taskKey]keys, len(tasks)),
	}
	for _, t := range tasks {
		c := t.Container
		if !sanitize(&c) {
			r.log.Debug("skipping a container with an unusable id", "id", clip(t.Container.ID))
			continue
		}
		tk := taskKey{ns: c.RuntimeNamespace, id: c.ID, pid: t.PID}
		k, ok := old.tasks[tk]
		if !ok {
			pc, err := readProcCgroup(r.cfg.ProcRoot, t.PID)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					r.log.Debug("reading a container's cgroups", "container", c.ID, "pid", t.PID, "error", err)
				}
				continue // exited since the listing
			}
			k = cgroupKeys(pc, r.cgroup2Root)
		}
		s.tasks[tk] = k
		if k.ID != 0 {
			s.byID[k.ID] = &c
		}
		if k.Name != "" {
			s.byName[k.Name] = &c
		}
	}
	r.snap.Store(s)
	return nil
}

// Run keeps the cache current until ctx ends: it refreshes whenever the
// source (if a Watcher) reports a container change, and every
// ResyncInterval. A broken event stream is resubscribed to after a pause.
// It returns ctx's error.
func (r *Resolver) Run(ctx context.Context) error {
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default: // a refresh is already due
		}
	}
	if w, ok := r.src.(Watcher); ok {
		go r.watch(ctx, w, notify)
	}
	notify()
	ticker := time.NewTicker(r.cfg.ResyncInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-ticker.C:
		}
		if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug("refreshing containers", "error", err)
		}
	}
}

func (r *Resolver) watch(ctx context.Context, w Watcher, notify func()) {
	const pause = 2 * time.Second
	for {
		err := w.Watch(ctx, notify)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrEventsUnsupported) {
			// Misses and the periodic resync keep the cache current.
			r.log.Info("the container runtime sends no container events; refreshing on misses and every resync", "resync", r.cfg.ResyncInterval)
			return
		}
		r.log.Debug("container events stream ended; resubscribing", "error", err, "after", pause)
		// What changed while unsubscribed is caught by the next refresh.
		notify()
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// clip shortens a string from a runtime for a log line.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
