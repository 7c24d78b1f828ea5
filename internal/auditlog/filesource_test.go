package auditlog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func logLine(i int) string {
	return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-%06d","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods"}`+"\n", i)
}

func ids(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("id-%06d", i))
	}
	return out
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(logLine(i))
	}
	return b.String()
}

func (c *collector) ids() []string {
	var out []string
	for _, e := range c.snapshot() {
		out = append(out, string(e.AuditID))
	}
	return out
}

// memStore is an OffsetStore that records its saves.
type memStore struct {
	mu    sync.Mutex
	m     map[string]Offset
	saves int
}

func (s *memStore) Load(_ context.Context, key string) (Offset, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.m[key]
	return o, ok, nil
}

func (s *memStore) Save(_ context.Context, key string, o Offset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Offset{}
	}
	s.m[key] = o
	s.saves++
	return nil
}

// run runs src until the returned stop is called (or the test ends).
func run(t *testing.T, src *FileSource, c *collector) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c.sink) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitIDs waits until c holds n events and compares their IDs with want.
func waitIDs(t *testing.T, c *collector, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(c.snapshot()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let duplicates, if any, arrive
	if diff := cmp.Diff(want, c.ids()); diff != "" {
		t.Fatalf("delivered IDs (-want +got):\n%s", diff)
	}
}

var fastPoll = FileOptions{Poll: 5 * time.Millisecond, Batch: 7}

func TestFileSourceAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	c := &collector{}
	run(t, NewFileSource(path, &memStore{}, fastPoll), c)
	appendFile(t, path, lines(0, 10))
	waitIDs(t, c, ids(0, 10))
	appendFile(t, path, lines(10, 30))
	waitIDs(t, c, ids(0, 30))
}

func TestFileSourceRestartContinues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	store := NewFileOffsetStore(filepath.Join(dir, "offsets.json"))
	appendFile(t, path, lines(0, 5))
	first := &collector{}
	stop := run(t, NewFileSource(path, store, fastPoll), first)
	waitIDs(t, first, ids(0, 5))
	stop()

	appendFile(t, path, lines(5, 12))
	second := &collector{}
	run(t, NewFileSource(path, store, fastPoll), second)
	waitIDs(t, second, ids(5, 12))
}

func TestFileSourceRotationWhileWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	c := &collector{}
	run(t, NewFileSource(path, &memStore{}, FileOptions{Poll: time.Millisecond, Batch: 50}), c)
	const total, every = 3000, 400
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range total {
		if i > 0 && i%every == 0 {
			// As kube-apiserver does: close, rename with a timestamp,
			// create anew.
			f.Close()
			if err := os.Rename(path, filepath.Join(dir, fmt.Sprintf("audit-2026-01-01T00-00-%02d.000.log", i/every))); err != nil {
				t.Fatal(err)
			}
			if f, err = os.Create(path); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.WriteString(logLine(i)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	f.Close()
	waitIDs(t, c, ids(0, total))
}

func TestFileSourceRestartAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	store := &memStore{}
	appendFile(t, path, lines(0, 5))
	first := &collector{}
	stop := run(t, NewFileSource(path, store, fastPoll), first)
	waitIDs(t, first, ids(0, 5))
	stop()

	// While stopped: more lines in the old file, two rotations.
	appendFile(t, path, lines(5, 8))
	if err := os.Rename(path, filepath.Join(dir, "audit-2026-01-01T00-00-01.000.log")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(8, 10))
	time.Sleep(10 * time.Millisecond)
	if err := os.Rename(path, filepath.Join(dir, "audit-2026-01-01T00-00-02.000.log")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(10, 13))

	second := &collector{}
	run(t, NewFileSource(path, store, fastPoll), second)
	waitIDs(t, second, ids(5, 13))
}

func TestFileSourceTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	c := &collector{}
	src := NewFileSource(path, &memStore{}, fastPoll)
	run(t, src, c)
	appendFile(t, path, lines(0, 5))
	waitIDs(t, c, ids(0, 5))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, lines(5, 7))
	waitIDs(t, c, ids(0, 7))
	if got := src.Stats().Truncations; got != 1 {
		t.Errorf("Truncations = %d, want 1", got)
	}
}

func TestFileSourcePartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	c := &collector{}
	run(t, NewFileSource(path, &memStore{}, fastPoll), c)
	second := logLine(1)
	appendFile(t, path, logLine(0)+second[:40])
	waitIDs(t, c, ids(0, 1))
	time.Sleep(50 * time.Millisecond)
	appendFile(t, path, second[40:])
	waitIDs(t, c, ids(0, 2))
}

func TestFileSourceSinkFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	store := &memStore{}
	c := &collector{fail: 3}
	appendFile(t, path, lines(0, 5))
	run(t, NewFileSource(path, store, FileOptions{Poll: time.Millisecond}), c)
	waitIDs(t, c, ids(0, 5))
	c.mu.Lock()
	calls := c.calls
	c.mu.Unlock()
	store.mu.Lock()
	saves := store.saves
	store.mu.Unlock()
	if calls != 4 || saves != 1 {
		t.Errorf("sink calls %d, offset saves %d; want 4 and 1 (nothing committed before the sink accepted)", calls, saves)
	}
}

func TestFileSourceSkipsBadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	c := &collector{}
	o := fastPoll
	o.MaxLineSize = 1024
	src := NewFileSource(path, &memStore{}, o)
	run(t, src, c)
	long := `{"kind":"Event","x":"` + strings.Repeat("A", 100_000) + `"}` + "\n"
	appendFile(t, path, logLine(0)+long[:50_000])
	time.Sleep(30 * time.Millisecond)
	appendFile(t, path, long[50_000:]+"not json\n"+logLine(1)+strings.Repeat("B", 2000)+"\n"+logLine(2))
	waitIDs(t, c, ids(0, 3))
	if got, want := src.Stats(), (FileStats{Events: 3, Overlong: 2, Malformed: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}
