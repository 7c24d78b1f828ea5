// Package alertout sends the alerts detection raised to where people and
// SIEMs look: a generic JSON webhook, a Slack-compatible incoming webhook
// and syslog (RFC 5424 over UDP, TCP or TLS). The Dispatcher drains the
// store's outbox of deliveries, one loop per output, retrying with
// backoff, so an alert is not lost while an output is down; see
// OUTPUTS.md for the configuration, the payloads and the retry rules.
//
// It owns the wire formats, the retry policy and the output
// configuration file. It does not raise alerts or decide which outputs an
// alert goes to (every configured output gets every alert), and it keeps
// no state of its own: what is pending lives in the store.
package alertout

import (
	"context"
	"errors"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Output sends alerts to one destination. Send returns an error wrapping
// ErrRejected when the destination refused the alert in a way a retry
// will not change; any other error is retried.
type Output interface {
	Name() string
	Send(ctx context.Context, a store.Alert, kind string) error
}

// ErrRejected marks a failure retrying cannot fix, such as an HTTP 400:
// the delivery is given up at once.
var ErrRejected = errors.New("output rejected the alert")

// PayloadVersion names the schema of the webhook payload.
const PayloadVersion = "bulwark.alert/v1"

// Payload is the body the generic webhook posts: one alert, new or
// updated (a grouped alert whose count grew). Receivers should key on
// Alert.ID; an update carries the alert's whole current state.
type Payload struct {
	Version string       `json:"version"`
	Kind    string       `json:"kind"`
	Alert   PayloadAlert `json:"alert"`
}

// PayloadAlert is an alert as the webhook payload spells it.
type PayloadAlert struct {
	ID        int64            `json:"id"`
	Cluster   string           `json:"cluster"`
	RuleID    string           `json:"ruleId"`
	Title     string           `json:"title"`
	Severity  string           `json:"severity"`
	Technique PayloadTechnique `json:"technique"`
	Summary   string           `json:"summary"`
	Actor     PayloadActor     `json:"actor"`
	Object    PayloadObject    `json:"object"`
	// Events are the audit ids of the events grouped, up to a bound;
	// Count is their number.
	Events    []string  `json:"events"`
	Count     int       `json:"count"`
	GroupKey  string    `json:"groupKey"`
	FirstAt   time.Time `json:"firstAt"`
	LastAt    time.Time `json:"lastAt"`
	CreatedAt time.Time `json:"createdAt"`
}

// PayloadTechnique is the MITRE ATT&CK technique an alert maps to.
type PayloadTechnique struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// PayloadActor is who made the requests.
type PayloadActor struct {
	Username  string   `json:"username"`
	Groups    []string `json:"groups"`
	SourceIP  string   `json:"sourceIP"`
	UserAgent string   `json:"userAgent"`
}

// PayloadObject is what the requests did, to what.
type PayloadObject struct {
	Verb        string `json:"verb"`
	Resource    string `json:"resource"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
}

// NewPayload spells an alert as the webhook posts it.
func NewPayload(a store.Alert, kind string) Payload {
	groups, events := a.Groups, a.Events
	if groups == nil {
		groups = []string{}
	}
	if events == nil {
		events = []string{}
	}
	return Payload{Version: PayloadVersion, Kind: kind, Alert: PayloadAlert{
		ID: a.ID, Cluster: a.Cluster, RuleID: a.RuleID, Title: a.Title, Severity: a.Severity,
		Technique: PayloadTechnique{ID: a.TechniqueID, Name: a.TechniqueName}, Summary: a.Summary,
		Actor:  PayloadActor{Username: a.Actor, Groups: groups, SourceIP: a.SourceIP, UserAgent: a.UserAgent},
		Object: PayloadObject{Verb: a.Verb, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name},
		Events: events, Count: a.Count, GroupKey: a.GroupKey, FirstAt: a.FirstAt, LastAt: a.LastAt, CreatedAt: a.CreatedAt,
	}}
}

// object spells what an alert's requests touched: "get secrets shop/db".
func object(a store.Alert) string {
	s := a.Verb + " " + a.Resource
	if a.Subresource != "" {
		s += "/" + a.Subresource
	}
	switch {
	case a.Namespace != "" && a.Name != "":
		s += " " + a.Namespace + "/" + a.Name
	case a.Name != "":
		s += " " + a.Name
	case a.Namespace != "":
		s += " in " + a.Namespace
	}
	return s
}
