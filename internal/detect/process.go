package detect

import (
	"context"
	"math/bits"
	"slices"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// streamingSubresources are the connect subresources whose requests last as
// long as the session: they are judged at ResponseStarted.
var streamingSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true, "proxy": true}

var noEvent auditv1.Event

// Process judges events, in order, against every rule and returns the
// alerts to deliver now: one for each new group, plus updates of groups
// that had to be evicted to make room. Matches that join an open group
// return nothing here; Flush reports them. A cancelled ctx stops Process
// between events; the alerts so far are returned.
func (e *Engine) Process(ctx context.Context, events []auditv1.Event) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	for i := range events {
		if i%256 == 0 && ctx.Err() != nil {
			break
		}
		out = e.processOne(ctx, &events[i], out)
	}
	// Let go of the caller's events.
	e.view.reset(&noEvent)
	return out
}

// judged reports whether ev is the one event of its request that rules see;
// see the package documentation on stages.
func (e *Engine) judged(ev *auditv1.Event) bool {
	streaming := ev.ObjectRef != nil && streamingSubresources[ev.ObjectRef.Subresource]
	switch ev.Stage {
	case auditv1.StageResponseStarted:
		if !streaming {
			return false
		}
		if ev.AuditID != "" {
			if _, seen := e.streaming.Get(string(ev.AuditID)); !seen {
				e.streaming.Add(string(ev.AuditID), struct{}{})
			}
		}
		return true
	case auditv1.StageResponseComplete, auditv1.StagePanic:
		if streaming && ev.AuditID != "" {
			if n, seen := e.streaming.Get(string(ev.AuditID)); seen {
				e.streaming.Remove(n)
				return false
			}
		}
		return true
	}
	return false
}

func (e *Engine) eventTime(ev *auditv1.Event) time.Time {
	switch {
	case !ev.StageTimestamp.IsZero():
		return ev.StageTimestamp.Time
	case !ev.RequestReceivedTimestamp.IsZero():
		return ev.RequestReceivedTimestamp.Time
	}
	return e.opts.Now()
}

func (e *Engine) processOne(ctx context.Context, ev *auditv1.Event, out []Alert) []Alert {
	if !e.judged(ev) {
		return out
	}
	var resource, subresource string
	if ev.ObjectRef != nil {
		resource, subresource = ev.ObjectRef.Resource, ev.ObjectRef.Subresource
	}
	rules := e.index.candidates(ev.Verb, resource, subresource)
	if len(rules) == 0 {
		return out
	}
	e.view.reset(ev)
	var t time.Time
	for _, r := range rules {
		ok, err := EvalBool(ctx, r.match, &e.view, r.limited)
		if err != nil {
			e.evalError(r, "match", ev, err)
			continue
		}
		if !ok {
			continue
		}
		if t.IsZero() {
			t = e.eventTime(ev)
		}
		weight := 1
		var stateKey string
		if r.State != nil {
			if stateKey, err = EvalString(ctx, r.key, &e.view, r.limited); err != nil {
				e.evalError(r, "state.key", ev, err)
				continue
			}
			if weight = r.state.Observe(stateKey, t); weight == 0 {
				continue
			}
		}
		out = e.fire(ctx, r, ev, t, stateKey, weight, out)
	}
	return out
}

// fire adds a match to its group, opening one (and returning its alert)
// when there is none within the window.
func (e *Engine) fire(ctx context.Context, r *compiledRule, ev *auditv1.Event, t time.Time, stateKey string, weight int, out []Alert) []Alert {
	var ns, name, resource, subresource string
	if o := ev.ObjectRef; o != nil {
		ns, name, resource, subresource = o.Namespace, o.Name, o.Resource, o.Subresource
	}
	var impersonated string
	if ev.ImpersonatedUser != nil {
		impersonated = ev.ImpersonatedUser.Username
	}
	key := groupKey(r.ID, stateKey, ev.User.Username, impersonated, ev.Verb, resource, subresource, ns, name)
	out, joined := e.groups.Join(key, string(ev.AuditID), t, weight, out)
	if joined {
		return out
	}
	summary := r.Title
	if r.output != nil {
		s, err := EvalString(ctx, r.output, &e.view, r.limited)
		if err != nil {
			e.evalError(r, "output", ev, err)
		} else if s != "" {
			summary = s
		}
	}
	var sourceIP string
	if len(ev.SourceIPs) > 0 {
		sourceIP = ev.SourceIPs[len(ev.SourceIPs)-1]
	}
	first := Alert{
		RuleID: r.ID, Title: r.Title, Severity: r.Severity, Technique: r.Technique,
		Summary:      summary,
		Actor:        ev.User.Username,
		Impersonated: impersonated,
		Groups:       slices.Clone(ev.User.Groups),
		SourceIP:     sourceIP,
		UserAgent:    ev.UserAgent,
		Verb:         ev.Verb, Resource: resource, Subresource: subresource, Namespace: ns, Name: name,
	}
	return e.groups.Open(key, first, string(ev.AuditID), t, weight, out)
}

// Flush returns an update for every group whose Count grew since it was
// last reported, ordered by first event, and forgets the groups whose
// window has closed at now.
func (e *Engine) Flush(now time.Time) []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.groups.Flush(now, nil)
}

// evalError logs a rule's runtime failure on the 1st, 2nd, 4th, 8th, …
// occurrence, so that a rule broken for every event cannot flood the log.
// The rule is not disabled: an attacker who can make a rule fail must not
// be able to switch it off.
func (e *Engine) evalError(r *compiledRule, field string, ev *auditv1.Event, err error) {
	r.errors++
	if bits.OnesCount64(r.errors) != 1 {
		return
	}
	e.opts.Logger.Warn("detection rule failed", "rule", r.ID, "field", field, "auditID", string(ev.AuditID), "failures", r.errors, "err", err)
}
