package detect

import (
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/rulestate"
)

// Alert is a rule's verdict on one or more events of one group.
type Alert struct {
	RuleID, Title, Severity string
	Technique               Technique
	// Summary is the rule's Output for the group's first event, or its
	// title.
	Summary string
	// Actor is the authenticated user; Impersonated the user it acted as,
	// if any.
	Actor        string
	Impersonated string
	Groups       []string
	SourceIP     string // the last of the event's source IPs, the one the API server saw
	UserAgent    string
	// The object of the group's first event.
	Verb, Resource, Subresource, Namespace, Name string
	// Events are the audit IDs of the evidence, the first
	// rulestate.MaxEvidence.
	Events []string
	// Count is how many matches the group holds; a threshold rule's first
	// alert counts the matches that crossed the threshold.
	Count           int
	FirstAt, LastAt time.Time
	// Key identifies the group: the rule and either its state key or the
	// actor and object.
	Key string
	// Update is set on alerts from Flush (or an eviction) that re-report a
	// group with a higher Count.
	Update bool
}

// reportAlert completes the alert of a group's first match with the
// group's evidence; see rulestate.Groups.
func reportAlert(a Alert, ev rulestate.Evidence, update bool) Alert {
	a.Groups = slices.Clone(a.Groups)
	a.Events, a.Count, a.FirstAt, a.LastAt, a.Key = ev.Events, ev.Count, ev.FirstAt, ev.LastAt, ev.Key
	a.Update = update
	return a
}

// groupKey is what makes two matches duplicates.
func groupKey(ruleID, stateKey, actor, impersonated, verb, resource, subresource, namespace, name string) string {
	var b strings.Builder
	b.Grow(len(ruleID) + len(stateKey) + len(actor) + len(impersonated) + len(verb) + len(resource) + len(subresource) + len(namespace) + len(name) + 8)
	b.WriteString(ruleID)
	b.WriteByte('|')
	if stateKey != "" {
		b.WriteString(stateKey)
		return b.String()
	}
	b.WriteString(actor)
	if impersonated != "" {
		b.WriteString(" as ")
		b.WriteString(impersonated)
	}
	b.WriteByte('|')
	b.WriteString(verb)
	b.WriteByte('|')
	b.WriteString(describeResource(resource, subresource))
	b.WriteByte('|')
	b.WriteString(namespace)
	b.WriteByte('/')
	b.WriteString(name)
	return b.String()
}
