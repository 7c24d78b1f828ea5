package rulestate

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func keys[V any](l *LRU[V]) []string {
	var out []string
	l.Each(func(e *Entry[V]) { out = append(out, e.Key) })
	return out
}

func TestLRU(t *testing.T) {
	l := NewLRU[int](3)
	for i, k := range []string{"a", "b", "c"} {
		if _, ev := l.Add(k, i); ev != nil {
			t.Fatalf("Add(%s) evicted %s below max", k, ev.Key)
		}
	}
	if e, ok := l.Get("a"); !ok || e.Val != 0 {
		t.Fatalf("Get(a) = %v, %v", e, ok)
	}
	if _, ev := l.Add("d", 3); ev == nil || ev.Key != "b" {
		t.Fatalf("Add(d) evicted %v, want the least recently used b", ev)
	}
	if d := cmp.Diff([]string{"c", "a", "d"}, keys(l)); d != "" {
		t.Errorf("order, oldest first (-want +got):\n%s", d)
	}
	c, _ := l.Get("c")
	l.Remove(c)
	l.Remove(c) // removing twice must not corrupt the list
	if _, ok := l.Get("c"); ok || l.Len() != 2 {
		t.Errorf("after Remove(c): Len %d, c held %v", l.Len(), ok)
	}
	l.Each(func(e *Entry[int]) { l.Remove(e) })
	if l.Len() != 0 || l.Oldest() != nil {
		t.Errorf("Each removing every entry left %d", l.Len())
	}
	for i, k := range []string{"x", "y", "z"} {
		l.Add(k, i)
	}
	l.Expire("x", func(v int) bool { return true })
	if d := cmp.Diff([]string{"x", "y", "z"}, keys(l)); d != "" {
		t.Errorf("Expire stopped at the kept key (-want +got):\n%s", d)
	}
	l.Expire("", func(v int) bool { return v < 2 })
	if d := cmp.Diff([]string{"z"}, keys(l)); d != "" {
		t.Errorf("Expire of stale entries (-want +got):\n%s", d)
	}
}

func TestFirstSeen(t *testing.T) {
	s := FirstSeen(2, time.Hour)
	for _, tc := range []struct {
		key  string
		at   time.Duration
		want int
	}{{"a", 0, 1}, {"a", time.Minute, 0}, {"b", 0, 1}, {"c", 0, 1}, {"a", 2 * time.Minute, 1}, {"a", 2*time.Minute + 2*time.Hour, 1}} {
		if got := s.Observe(tc.key, t0.Add(tc.at)); got != tc.want {
			t.Errorf("Observe(%s, +%s) = %d, want %d", tc.key, tc.at, got, tc.want)
		}
	}
	if s.Len() > 2 {
		t.Errorf("%d keys, want at most 2", s.Len())
	}
}

func TestThreshold(t *testing.T) {
	s := Threshold(10, 3, time.Minute)
	var weights []int
	for _, at := range []time.Duration{0, 10, 20, 30, 200, 210, 220} {
		weights = append(weights, s.Observe("k", t0.Add(at*time.Second)))
	}
	if d := cmp.Diff([]int{0, 0, 3, 1, 0, 0, 3}, weights); d != "" {
		t.Errorf("weights (-want +got):\n%s", d)
	}
	e, _ := s.counters.Get("k")
	if n := len(e.Val.times); n > 3 {
		t.Errorf("keeps %d times, want at most 3", n)
	}
	// Keys idle for longer than the window are forgotten, so a stream of
	// one-off keys cannot hold the state at its maximum.
	for i := range 20 {
		s.Observe(fmt.Sprint("once", i), t0.Add(time.Duration(i)*time.Hour))
	}
	if s.Len() != 1 {
		t.Errorf("%d keys after idle keys expired, want 1", s.Len())
	}
}

type alert struct {
	Name string
	Evidence
	Update bool
}

func newGroups(max int) *Groups[alert] {
	return NewGroups(max, 5*time.Minute, func(a alert, ev Evidence, update bool) alert {
		a.Evidence, a.Update = ev, update
		return a
	})
}

func match(gs *Groups[alert], key, id string, at time.Duration, out []alert) []alert {
	t := t0.Add(at)
	out, joined := gs.Join(key, id, t, 1, out)
	if joined {
		return out
	}
	return gs.Open(key, alert{Name: key}, id, t, 1, out)
}

func TestGroups(t *testing.T) {
	gs := newGroups(2)
	var got []alert
	got = match(gs, "a", "e1", 0, got)
	got = match(gs, "a", "e2", time.Minute, got)
	got = match(gs, "b", "e3", 2*time.Minute, got)
	want := []alert{
		{Name: "a", Evidence: Evidence{Key: "a", Events: []string{"e1"}, Count: 1, FirstAt: t0, LastAt: t0}},
		{Name: "b", Evidence: Evidence{Key: "b", Events: []string{"e3"}, Count: 1, FirstAt: t0.Add(2 * time.Minute), LastAt: t0.Add(2 * time.Minute)}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Join/Open (-want +got):\n%s", d)
	}
	// A third group evicts a, which grew since reported: its update comes
	// first.
	got = match(gs, "c", "e4", 3*time.Minute, nil)
	want = []alert{
		{Name: "a", Evidence: Evidence{Key: "a", Events: []string{"e1", "e2"}, Count: 2, FirstAt: t0, LastAt: t0.Add(time.Minute)}, Update: true},
		{Name: "c", Evidence: Evidence{Key: "c", Events: []string{"e4"}, Count: 1, FirstAt: t0.Add(3 * time.Minute), LastAt: t0.Add(3 * time.Minute)}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("eviction (-want +got):\n%s", d)
	}
	match(gs, "c", "e5", 4*time.Minute, nil)
	match(gs, "b", "e6", 4*time.Minute, nil)
	got = gs.Flush(t0.Add(7*time.Minute), nil)
	want = []alert{
		{Name: "b", Evidence: Evidence{Key: "b", Events: []string{"e3", "e6"}, Count: 2, FirstAt: t0.Add(2 * time.Minute), LastAt: t0.Add(4 * time.Minute)}, Update: true},
		{Name: "c", Evidence: Evidence{Key: "c", Events: []string{"e4", "e5"}, Count: 2, FirstAt: t0.Add(3 * time.Minute), LastAt: t0.Add(4 * time.Minute)}, Update: true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Flush (-want +got):\n%s", d)
	}
	if gs.Len() != 1 {
		t.Errorf("%d groups open after b's window closed, want 1", gs.Len())
	}
	if got := gs.Flush(t0.Add(7*time.Minute), nil); len(got) != 0 {
		t.Errorf("second Flush reported %v, want nothing new", got)
	}
	// A match after the window opens a new group.
	got = match(gs, "c", "e7", 9*time.Minute, nil)
	if len(got) != 1 || got[0].Update || got[0].Count != 1 {
		t.Errorf("match after the window: %+v, want one new alert", got)
	}
}

func TestGroupEvidenceBounded(t *testing.T) {
	gs := newGroups(1)
	for i := range 3 * MaxEvidence {
		match(gs, "k", fmt.Sprint("e", i), time.Duration(i)*time.Millisecond, nil)
	}
	got := gs.Flush(t0, nil)
	if len(got) != 1 || got[0].Count != 3*MaxEvidence || len(got[0].Events) != MaxEvidence {
		t.Errorf("Flush: %+v, want one update counting %d with %d events", got, 3*MaxEvidence, MaxEvidence)
	}
}

func BenchmarkThreshold(b *testing.B) {
	s := Threshold(10_000, 5, time.Minute)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Observe(keys[i%len(keys)], t0.Add(time.Duration(i)*time.Millisecond))
	}
}

func BenchmarkGroups(b *testing.B) {
	gs := newGroups(10_000)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		match(gs, keys[i%len(keys)], "e", time.Duration(i)*time.Millisecond, nil)
	}
}
