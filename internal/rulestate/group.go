package rulestate

import (
	"slices"
	"sort"
	"time"
)

// MaxEvidence bounds the evidence ids a group keeps.
const MaxEvidence = 20

// Evidence is what a group has gathered: the part of an alert that grows
// with every match.
type Evidence struct {
	// Key identifies the group.
	Key string
	// Events are the evidence ids of the matches, the first MaxEvidence.
	Events []string
	// Count is how many matches the group holds, each weighted as its rule
	// fired.
	Count           int
	FirstAt, LastAt time.Time
}

func (ev *Evidence) add(id string, t time.Time, weight int) {
	ev.Count += weight
	if id != "" && len(ev.Events) < MaxEvidence {
		ev.Events = append(ev.Events, id)
	}
	if t.After(ev.LastAt) {
		ev.LastAt = t
	}
	if t.Before(ev.FirstAt) {
		ev.FirstAt = t
	}
}

// Groups are the open alert groups of an engine. Matches of the same key
// within the window after a group's first match join it instead of
// raising a new alert. A is the engine's alert type; the engine keeps the
// description of the group's first match in it, and report completes a
// copy of it with the evidence when the group is reported.
type Groups[A any] struct {
	open   *LRU[*group[A]]
	window time.Duration
	report func(first A, ev Evidence, update bool) A
}

type group[A any] struct {
	first    A
	ev       Evidence
	reported int // Count when last reported
}

// NewGroups returns empty groups, at most max open at once, each open for
// window after its first match. report builds the alert of a group: first
// as given to Open, the evidence (whose Events the alert may keep), and
// whether it re-reports a group.
func NewGroups[A any](max int, window time.Duration, report func(first A, ev Evidence, update bool) A) *Groups[A] {
	return &Groups[A]{open: NewLRU[*group[A]](max), window: window, report: report}
}

// Len is the number of open groups.
func (gs *Groups[A]) Len() int { return gs.open.Len() }

// Join adds a match at t to the open group key and reports whether it
// did. A group whose window has closed at t is dropped instead, with an
// update appended to out if it grew since last reported; the caller then
// opens a new one.
func (gs *Groups[A]) Join(key, id string, t time.Time, weight int, out []A) ([]A, bool) {
	e, ok := gs.open.Get(key)
	if !ok {
		return out, false
	}
	g := e.Val
	if t.Sub(g.ev.FirstAt) < gs.window {
		g.ev.add(id, t, weight)
		return out, true
	}
	if g.grew() {
		out = append(out, gs.snapshot(g, true))
	}
	gs.open.Remove(e)
	return out, false
}

// Open starts group key, which must not be open, with its first match and
// appends its alert to out, after an update of the group evicted to make
// room if that one grew since last reported.
func (gs *Groups[A]) Open(key string, first A, id string, t time.Time, weight int, out []A) []A {
	g := &group[A]{first: first, ev: Evidence{Key: key, FirstAt: t, LastAt: t}}
	g.ev.add(id, t, weight)
	if _, evicted := gs.open.Add(key, g); evicted != nil && evicted.Val.grew() {
		out = append(out, gs.snapshot(evicted.Val, true))
	}
	return append(out, gs.snapshot(g, false))
}

// Flush appends an update for every group that grew since it was last
// reported, ordered by first match and then key, and forgets the groups
// whose window has closed at now.
func (gs *Groups[A]) Flush(now time.Time, out []A) []A {
	var grown []*group[A]
	gs.open.Each(func(e *Entry[*group[A]]) {
		if e.Val.grew() {
			grown = append(grown, e.Val)
		}
		if now.Sub(e.Val.ev.FirstAt) >= gs.window {
			gs.open.Remove(e)
		}
	})
	sort.SliceStable(grown, func(i, j int) bool {
		a, b := &grown[i].ev, &grown[j].ev
		if !a.FirstAt.Equal(b.FirstAt) {
			return a.FirstAt.Before(b.FirstAt)
		}
		return a.Key < b.Key
	})
	for _, g := range grown {
		out = append(out, gs.snapshot(g, true))
	}
	return out
}

func (g *group[A]) grew() bool { return g.ev.Count > g.reported }

// snapshot is the alert to return now; the group keeps growing
// independently of it.
func (gs *Groups[A]) snapshot(g *group[A], update bool) A {
	ev := g.ev
	ev.Events = slices.Clone(ev.Events)
	g.reported = ev.Count
	return gs.report(g.first, ev, update)
}
