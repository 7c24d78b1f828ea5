package detect

import (
	"slices"
	"strings"
	"time"
)

// maxAlertEvents bounds the audit IDs an alert carries as evidence.
const maxAlertEvents = 20

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
	// Events are the audit IDs of the evidence, the first maxAlertEvents.
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

// group is an open alert group.
type group struct {
	alert    Alert
	reported int // Count when last returned
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

// snapshot is the alert to return now; the group keeps growing
// independently of it.
func (g *group) snapshot(update bool) Alert {
	a := g.alert
	a.Groups = slices.Clone(a.Groups)
	a.Events = slices.Clone(a.Events)
	a.Update = update
	g.reported = a.Count
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
