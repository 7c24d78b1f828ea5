package sensor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// scriptedSource returns its events (or errors) in order, then blocks.
type scriptedSource struct {
	mu    sync.Mutex
	items []any // probe.Event or error
	drops uint64
}

func (s *scriptedSource) Read(ctx context.Context) (probe.Event, error) {
	s.mu.Lock()
	if len(s.items) > 0 {
		it := s.items[0]
		s.items = s.items[1:]
		s.mu.Unlock()
		if err, ok := it.(error); ok {
			return probe.Event{}, err
		}
		return it.(probe.Event), nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return probe.Event{}, ctx.Err()
}

func (s *scriptedSource) Hooks() []string { return []string{"scripted"} }

func (s *scriptedSource) Drops() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drops, nil
}

func (s *scriptedSource) Close() error { return nil }

type recordingSink struct {
	mu      sync.Mutex
	events  []wire.Event
	dropped uint64
}

func (r *recordingSink) Send(ev wire.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}
func (r *recordingSink) ReportDropped(n uint64) {
	r.mu.Lock()
	r.dropped += n
	r.mu.Unlock()
}

func (r *recordingSink) snapshot() ([]wire.Event, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wire.Event(nil), r.events...), r.dropped
}

// pidConverter turns exec events into wire events named by pid; fork and
// exit produce nothing, as the tracker does.
type pidConverter struct{}

func (pidConverter) Convert(ev probe.Event, c *wire.Container) (wire.Event, bool) {
	if ev.Kind != probe.Exec {
		return wire.Event{}, false
	}
	return wire.Event{Kind: wire.KindExec, Process: wire.Process{PID: ev.TGID}, Container: c}, true
}

// byPID attributes even pids to one container and odd pids to the host.
type byPID struct{ calls []uint32 }

func (a *byPID) Lookup(_ context.Context, pid uint32, _ uint64, _ string) (*wire.Container, bool) {
	a.calls = append(a.calls, pid)
	if pid%2 == 0 {
		return &wire.Container{ID: fmt.Sprint("c", pid)}, true
	}
	return nil, false
}

func TestAgentAttributesConvertsAndCountsLosses(t *testing.T) {
	src := &scriptedSource{drops: 0, items: []any{
		probe.Event{Kind: probe.Fork, TGID: 10},
		probe.Event{Kind: probe.Exec, TGID: 10},
		fmt.Errorf("record 7: %w", probe.ErrMalformed),
		probe.Event{Kind: probe.Exec, TGID: 11},
		probe.Event{Kind: probe.Exit, TGID: 10},
	}}
	sink := &recordingSink{}
	attr := &byPID{}
	a := &Agent{Source: src, Attributor: attr, Converter: pidConverter{}, Sink: sink, DropsEvery: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("two events", func() bool { evs, _ := sink.snapshot(); return len(evs) == 2 })
	src.mu.Lock()
	src.drops = 5
	src.mu.Unlock()
	// One malformed record and five lost in the ring.
	waitFor("the losses", func() bool { _, d := sink.snapshot(); return d == 6 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	evs, _ := sink.snapshot()
	want := []wire.Event{
		{Kind: wire.KindExec, Process: wire.Process{PID: 10}, Container: &wire.Container{ID: "c10"}},
		{Kind: wire.KindExec, Process: wire.Process{PID: 11}},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	// Fork and exit only feed the process tree: no lookup for them.
	if diff := cmp.Diff([]uint32{10, 11}, attr.calls); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{Read: 4, Sent: 2, Malformed: 1}, a.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestAgentStopsOnSourceFailure(t *testing.T) {
	broken := errors.New("ring buffer closed")
	a := &Agent{Source: &scriptedSource{items: []any{broken}}, Converter: pidConverter{}, Sink: &recordingSink{}}
	if err := a.Run(context.Background()); !errors.Is(err, broken) {
		t.Fatalf("Run = %v, want %v", err, broken)
	}
}
