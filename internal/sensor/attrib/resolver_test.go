package attrib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// fakeSource is a Source whose tasks the test sets, counting listings.
type fakeSource struct {
	mu    sync.Mutex
	tasks []Task
	err   error
	calls int
	// gate, when set, is received from before each listing returns.
	gate chan struct{}
	// listing, when set, is sent to as each listing starts.
	listing chan struct{}
}

func (f *fakeSource) Tasks(ctx context.Context) ([]Task, error) {
	if f.listing != nil {
		f.listing <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]Task(nil), f.tasks...), f.err
}

func (f *fakeSource) set(err error, tasks ...Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks, f.err = tasks, err
}

func (f *fakeSource) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeHost is a /proc and a cgroup v2 mount under temporary directories.
type fakeHost struct {
	t           testing.TB
	proc, cg2   string
	nextPID     uint32
	cgroupNames map[uint32]keys
}

func newFakeHost(t testing.TB) *fakeHost {
	return &fakeHost{t: t, proc: t.TempDir(), cg2: t.TempDir(), nextPID: 100, cgroupNames: map[uint32]keys{}}
}

// process adds a process with the given /proc/<pid>/cgroup lines and
// creates its v2 cgroup, returning its pid and the keys its events carry.
func (h *fakeHost) process(unified, memory string) (uint32, keys) {
	h.t.Helper()
	h.nextPID++
	pid := h.nextPID
	dir := filepath.Join(h.proc, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	data := fmt.Sprintf("4:memory:%s\n0::%s\n", memory, unified)
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(data), 0o644); err != nil {
		h.t.Fatal(err)
	}
	var k keys
	if unified != "/" {
		cg := filepath.Join(h.cg2, unified)
		if err := os.MkdirAll(cg, 0o755); err != nil {
			h.t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(cg, &st); err != nil {
			h.t.Fatal(err)
		}
		k = keys{ID: st.Ino, Name: truncateName(filepath.Base(unified))}
	} else if memory != "/" {
		k = keys{ID: 1, Name: truncateName(filepath.Base(memory))}
	} else {
		k = keys{ID: 1}
	}
	return pid, k
}

func (h *fakeHost) exit(pid uint32) {
	if err := os.RemoveAll(filepath.Join(h.proc, fmt.Sprint(pid))); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeHost) resolver(src Source, cfg Config) *Resolver {
	cfg.ProcRoot, cfg.Cgroup2Root = h.proc, h.cg2
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(src, cfg)
}

func podTask(pid uint32, id, pod string, sandbox bool) Task {
	return Task{PID: pid, Sandbox: sandbox, Container: wire.Container{
		ID: id, Name: "app", Runtime: RuntimeContainerd, RuntimeNamespace: "k8s.io",
		Pod: pod, Namespace: "default", PodUID: uid,
		Image: "docker.io/library/app:1", Digest: "sha256:" + id1,
	}}
}

func TestLookup(t *testing.T) {
	ctx := t.Context()
	h := newFakeHost(t)
	pidV2, kV2 := h.process("/kubepods/pod"+uid+"/"+id1, "/")
	pidV1, kV1 := h.process("/", "/bulwark/daemon-"+strings.Repeat("x", 80))
	pidHost, kHost := h.process("/", "/system.slice/ssh.service")
	src := &fakeSource{}
	src.set(nil, podTask(pidV2, id1, "web-0", false), podTask(pidV1, "v1ctr", "web-1", false))
	r := h.resolver(src, Config{MinRefreshInterval: time.Hour})

	for _, tc := range []struct {
		name    string
		pid     uint32
		k       keys
		wantPod string
	}{
		{"v2 by id and name", pidV2, kV2, "web-0"},
		{"v2 by id only", pidV2, keys{ID: kV2.ID}, "web-0"},
		{"v2 by name only", pidV2, keys{Name: kV2.Name}, "web-0"},
		{"v1 by cut name", pidV1, kV1, "web-1"},
		{"v1 by uncut name", pidV1, keys{ID: 1, Name: "daemon-" + strings.Repeat("x", 80)}, "web-1"},
		{"no cgroup fields: from /proc", pidV1, keys{}, "web-1"},
		// Another process of the container, as a process exec'd in it.
		{"another pid", 99999, kV2, "web-0"},
	} {
		c, ok := r.Lookup(ctx, tc.pid, tc.k.ID, tc.k.Name)
		if !ok || c.Pod != tc.wantPod {
			t.Errorf("%s: Lookup = %+v, %v; want pod %s", tc.name, c, ok, tc.wantPod)
		}
	}
	if got := src.count(); got != 1 {
		t.Errorf("%d listings, want 1", got)
	}
	want := podTask(0, id1, "web-0", false).Container
	if c, _ := r.Lookup(ctx, pidV2, kV2.ID, kV2.Name); c == nil || !cmp.Equal(want, *c) {
		t.Errorf("Lookup (-want +got):\n%s", cmp.Diff(want, c))
	}

	// A host process: not attributed, and remembered as such.
	for range 3 {
		if c, ok := r.Lookup(ctx, pidHost, kHost.ID, kHost.Name); ok || c != nil {
			t.Errorf("host process attributed to %+v", c)
		}
		if c, ok := r.Lookup(ctx, pidHost, 0, ""); ok || c != nil {
			t.Errorf("host process without cgroup fields attributed to %+v", c)
		}
	}
	if c, ok := r.Lookup(ctx, 0, 0, ""); ok {
		t.Errorf("event without pid or cgroup attributed to %+v", c)
	}
	// The host's misses came within MinRefreshInterval of the first
	// refresh: they did not list again.
	if got := src.count(); got != 1 {
		t.Errorf("%d listings, want 1 (MinRefreshInterval is an hour)", got)
	}
}

func TestLookupRefreshesOnMiss(t *testing.T) {
	ctx := t.Context()
	h := newFakeHost(t)
	pidA, kA := h.process("/ctr/a", "/")
	pidB, kB := h.process("/ctr/b", "/")
	pidHost, kHost := h.process("/user.slice", "/")
	src := &fakeSource{}
	src.set(nil, podTask(pidA, "a", "pod-a", false))
	// A tiny interval and TTL: every miss may refresh. No assertion
	// depends on how long anything takes.
	r := h.resolver(src, Config{MinRefreshInterval: time.Nanosecond, NegativeTTL: time.Hour})

	if c, ok := r.Lookup(ctx, pidA, kA.ID, kA.Name); !ok || c.ID != "a" {
		t.Fatalf("Lookup(a) = %+v, %v", c, ok)
	}
	// b starts after the first refresh: its first event refreshes.
	src.set(nil, podTask(pidA, "a", "pod-a", false), podTask(pidB, "b", "pod-b", false))
	if c, ok := r.Lookup(ctx, pidB, kB.ID, kB.Name); !ok || c.ID != "b" {
		t.Fatalf("Lookup(b) = %+v, %v", c, ok)
	}
	n := src.count()
	// The host's cgroup refreshes once, then is known not to be a
	// container's.
	for range 5 {
		if c, ok := r.Lookup(ctx, pidHost, kHost.ID, kHost.Name); ok {
			t.Fatalf("host attributed to %+v", c)
		}
	}
	if got := src.count() - n; got != 1 {
		t.Errorf("5 host lookups made %d listings, want 1", got)
	}

	// a is removed: the next refresh forgets it.
	src.set(nil, podTask(pidB, "b", "pod-b", false))
	h.exit(pidA)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if c, ok := r.Lookup(ctx, pidA, kA.ID, kA.Name); ok {
		t.Errorf("removed container still attributed: %+v", c)
	}
	if c, ok := r.Lookup(ctx, pidB, kB.ID, kB.Name); !ok || c.ID != "b" {
		t.Errorf("Lookup(b) after a's removal = %+v, %v", c, ok)
	}
}

func TestLookupSharesRefresh(t *testing.T) {
	h := newFakeHost(t)
	pid, k := h.process("/ctr/a", "/")
	src := &fakeSource{gate: make(chan struct{}), listing: make(chan struct{}, 100)}
	src.set(nil, podTask(pid, "a", "pod-a", false))
	r := h.resolver(src, Config{MinRefreshInterval: time.Hour})

	const n = 8
	results := make(chan *wire.Container, n)
	for range n {
		go func() {
			c, _ := r.Lookup(t.Context(), pid, k.ID, k.Name)
			results <- c
		}()
	}
	<-src.listing // one lookup is refreshing; the others wait for it
	close(src.gate)
	for range n {
		if c := <-results; c == nil || c.ID != "a" {
			t.Errorf("concurrent Lookup = %+v, want container a", c)
		}
	}
	if got := src.count(); got != 1 {
		t.Errorf("%d concurrent misses made %d listings, want 1", n, got)
	}
}

func TestLookupSandbox(t *testing.T) {
	h := newFakeHost(t)
	pidPause, kPause := h.process("/pod1/sandbox", "/")
	pidApp, kApp := h.process("/pod1/shared", "/")
	src := &fakeSource{}
	// The app container shares a cgroup with a sandbox here (as when a
	// runtime puts a pod in one cgroup): the app wins whatever the order.
	src.set(nil,
		podTask(pidApp, "app", "p", false),
		podTask(pidApp, "sandbox-shared", "p", true),
		podTask(pidPause, "sandbox", "p", true))
	r := h.resolver(src, Config{})
	if c, ok := r.Lookup(t.Context(), pidApp, kApp.ID, kApp.Name); !ok || c.ID != "app" {
		t.Errorf("Lookup(shared cgroup) = %+v, %v; want app", c, ok)
	}
	// Alone in its cgroup, the sandbox is what matches.
	if c, ok := r.Lookup(t.Context(), pidPause, kPause.ID, kPause.Name); !ok || c.ID != "sandbox" {
		t.Errorf("Lookup(sandbox cgroup) = %+v, %v; want sandbox", c, ok)
	}
}

func TestLookupByConvention(t *testing.T) {
	ctx := t.Context()
	h := newFakeHost(t)
	path := "/kubepods.slice/kubepods-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + id1 + ".scope"
	pid, k := h.process(path, "/")
	pidHost, kHost := h.process("/system.slice/cron.service", "/")
	src := &fakeSource{}
	src.set(errors.New("connection refused"))
	r := h.resolver(src, Config{MinRefreshInterval: time.Hour})

	want := &wire.Container{ID: id1, Runtime: RuntimeContainerd, PodUID: uid}
	c, ok := r.Lookup(ctx, pid, k.ID, k.Name)
	if !ok {
		t.Fatal("runtime unreachable: container not recognised by its cgroup path")
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}
	if c, ok := r.Lookup(ctx, pidHost, kHost.ID, kHost.Name); ok {
		t.Errorf("host process attributed to %+v", c)
	}

	// The process has gone: only the event's name is left, cut by the BPF
	// program to 63 bytes, too short for any id, so nothing can be said.
	for _, p := range []string{"/system.slice/docker-" + id2 + ".scope", "/docker/" + id2} {
		pid, k := h.process(p, "/")
		h.exit(pid)
		if c, ok := r.Lookup(ctx, pid, k.ID, k.Name); ok {
			t.Errorf("cut cgroup name %q of an exited process attributed to %+v", k.Name, c)
		}
	}
	// Still running, in a cgroup of no runtime's naming.
	pid3, k3 := h.process("/docker/short-id", "/")
	if c, ok := r.Lookup(ctx, pid3, k3.ID, k3.Name); ok {
		t.Errorf("cgroup of no runtime's naming attributed to %+v", c)
	}
	// The pid was reused by a process in another cgroup: its path must not
	// be believed.
	pid4, _ := h.process("/docker/"+id1, "/")
	if c, ok := r.Lookup(ctx, pid4, 424242, "session-3.scope"); ok {
		t.Errorf("reused pid's cgroup believed: %+v", c)
	}
}

func TestLookupSanitizes(t *testing.T) {
	h := newFakeHost(t)
	pid, k := h.process("/ctr/x", "/")
	task := podTask(pid, "x", "pod\x00evil", false)
	task.Container.Namespace = strings.Repeat("n", wire.MaxLabel+1)
	task.Container.Digest = "md5:abc"
	bad := podTask(pid+1, "bad\nid", "p", false)
	src := &fakeSource{}
	src.set(nil, task, bad)
	r := h.resolver(src, Config{})
	c, ok := r.Lookup(t.Context(), pid, k.ID, k.Name)
	if !ok {
		t.Fatal("not attributed")
	}
	if c.Pod != "" || c.Namespace != "" || c.Digest != "" || c.Name != "app" {
		t.Errorf("Lookup = %+v: want the bad pod, namespace and digest dropped", c)
	}
	ev := wire.Event{Kind: wire.KindExec, Time: time.Now(), Process: wire.Process{PID: pid}, Container: c}
	if err := ev.Validate(); err != nil {
		t.Errorf("event with the attributed container: %v", err)
	}
}

func TestMissesBounded(t *testing.T) {
	h := newFakeHost(t)
	src := &fakeSource{}
	r := h.resolver(src, Config{MaxMisses: 10, MinRefreshInterval: time.Hour, NegativeTTL: time.Hour})
	for i := range 100 {
		r.Lookup(t.Context(), 0, uint64(1000+i), fmt.Sprint("host-", i))
		r.missMu.RLock()
		n := len(r.misses)
		r.missMu.RUnlock()
		if n > 10 {
			t.Fatalf("%d remembered misses, more than MaxMisses 10", n)
		}
	}
}

func TestMaxContainers(t *testing.T) {
	h := newFakeHost(t)
	var tasks []Task
	var ks []keys
	for i := range 5 {
		pid, k := h.process(fmt.Sprint("/ctr/", i), "/")
		tasks = append(tasks, podTask(pid, fmt.Sprint("c", i), "p", false))
		ks = append(ks, k)
	}
	src := &fakeSource{}
	src.set(nil, tasks...)
	r := h.resolver(src, Config{MaxContainers: 3})
	if err := r.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	known := 0
	for _, k := range ks {
		if r.snap.Load().find(k) != nil {
			known++
		}
	}
	if known != 3 {
		t.Errorf("%d containers kept, want MaxContainers 3", known)
	}
}

// watchSource is a fakeSource that is also a Watcher.
type watchSource struct {
	*fakeSource
	notify chan func()
}

func (w *watchSource) Watch(ctx context.Context, changed func()) error {
	select {
	case w.notify <- changed:
	case <-ctx.Done():
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestRunRefreshesOnChange(t *testing.T) {
	h := newFakeHost(t)
	pid, k := h.process("/ctr/a", "/")
	src := &watchSource{fakeSource: &fakeSource{listing: make(chan struct{}, 100)}, notify: make(chan func())}
	r := h.resolver(src, Config{MinRefreshInterval: time.Nanosecond, ResyncInterval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	changed := <-src.notify
	<-src.listing // the initial refresh

	src.set(nil, podTask(pid, "a", "pod-a", false))
	changed()
	<-src.listing
	// Run's refresh, not a Lookup's, publishes the container: poll the
	// snapshot until it does (the test's deadline bounds the wait).
	for r.snap.Load().find(k) == nil {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}
