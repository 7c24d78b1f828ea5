package nodedetect

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// maxAlertEvents bounds the evidence ids an alert carries.
const maxAlertEvents = 20

// maxCmdlineBytes bounds an alert's command line.
const maxCmdlineBytes = 1024

// Alert is a rule's verdict on one or more events of one group.
type Alert struct {
	RuleID, Title, Severity string
	Technique               detect.Technique
	// Summary is the rule's Output for the group's first event, or its
	// title.
	Summary string
	// Node and Cluster the event came from.
	Node, Cluster string
	// Container is where the process of the group's first event ran; nil
	// for a process of the host.
	Container *wire.Container
	// The process of the group's first event.
	Exe, Cmdline string
	PID, UID     uint32
	// Events are the evidence ids of the matches, the first
	// maxAlertEvents.
	Events []string
	// Count is how many matches the group holds; a threshold rule's first
	// alert counts the matches that crossed the threshold.
	Count           int
	FirstAt, LastAt time.Time
	// Key identifies the group: the rule and either its state key or the
	// container (or node) and program.
	Key string
	// Update is set on alerts from Flush (or an eviction) that re-report a
	// group with a higher Count.
	Update bool
}

// group is an open alert group.
type group struct {
	alert    Alert
	reported int // Count when last returned
}

func newGroup(r *compiledRule, ev *wire.Event, meta Meta, summary, key string) *group {
	a := Alert{
		RuleID: r.ID, Title: r.Title, Severity: r.Severity, Technique: r.Technique,
		Summary: summary,
		Node:    meta.Node, Cluster: meta.Cluster,
		Exe:     ev.Process.Exe,
		Cmdline: clipString(strings.Join(ev.Process.Args, " "), maxCmdlineBytes),
		PID:     ev.Process.PID, UID: ev.Process.UID,
		FirstAt: ev.Time, LastAt: ev.Time,
		Key: key,
	}
	if ev.Container != nil {
		c := *ev.Container
		a.Container = &c
	}
	return &group{alert: a}
}

func (g *group) add(id string, t time.Time, weight int) {
	g.alert.Count += weight
	if id != "" && len(g.alert.Events) < maxAlertEvents {
		g.alert.Events = append(g.alert.Events, id)
	}
	if t.After(g.alert.LastAt) {
		g.alert.LastAt = t
	}
	if t.Before(g.alert.FirstAt) {
		g.alert.FirstAt = t
	}
}

func (g *group) grew() bool { return g.alert.Count > g.reported }

// snapshot is the alert to return now; the group keeps growing
// independently of it.
func (g *group) snapshot(update bool) Alert {
	a := g.alert
	a.Events = slices.Clone(a.Events)
	if a.Container != nil {
		c := *a.Container
		a.Container = &c
	}
	a.Update = update
	g.reported = a.Count
	return a
}

// groupKey is what makes two matches duplicates: the rule and the state
// key of a stateful rule, else the rule, the container (or host) and the
// program.
func groupKey(ruleID, stateKey, scope, exe string) string {
	if stateKey != "" {
		return ruleID + "|" + stateKey
	}
	return ruleID + "|" + scope + "|" + exe
}

// clipString shortens s to at most n bytes, at a character boundary.
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
