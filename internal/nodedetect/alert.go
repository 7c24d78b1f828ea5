package nodedetect

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/rulestate"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

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
	// rulestate.MaxEvidence.
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

// firstAlert describes the first match of a group: the rule and the
// process and container of ev. rulestate.Groups keeps it and completes it
// with the evidence in reportAlert.
func firstAlert(r *compiledRule, ev *wire.Event, meta Meta, summary string) Alert {
	a := Alert{
		RuleID: r.ID, Title: r.Title, Severity: r.Severity, Technique: r.Technique,
		Summary: summary,
		Node:    meta.Node, Cluster: meta.Cluster,
		Exe:     ev.Process.Exe,
		Cmdline: clipString(strings.Join(ev.Process.Args, " "), maxCmdlineBytes),
		PID:     ev.Process.PID, UID: ev.Process.UID,
	}
	if ev.Container != nil {
		c := *ev.Container
		a.Container = &c
	}
	return a
}

// reportAlert completes a group's first alert with its evidence; the copy
// returned shares nothing with the group.
func reportAlert(a Alert, ev rulestate.Evidence, update bool) Alert {
	if a.Container != nil {
		c := *a.Container
		a.Container = &c
	}
	a.Events, a.Count, a.FirstAt, a.LastAt, a.Key = ev.Events, ev.Count, ev.FirstAt, ev.LastAt, ev.Key
	a.Update = update
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
