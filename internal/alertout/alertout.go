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
	"strings"
	"time"
	"unicode"

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

// PayloadVersion names the schema of the webhook payload. It changes
// only when a field is removed, renamed or changes meaning; fields added
// to it (source and runtime were) keep the version, so receivers must
// ignore fields they do not know.
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
	ID int64 `json:"id"`
	// Source is what the alert was raised over: "audit" (Kubernetes
	// audit events) or "sensor" (a node sensor's runtime events).
	Source    string           `json:"source"`
	Cluster   string           `json:"cluster"`
	RuleID    string           `json:"ruleId"`
	Title     string           `json:"title"`
	Severity  string           `json:"severity"`
	Technique PayloadTechnique `json:"technique"`
	Summary   string           `json:"summary"`
	// Actor is who made the requests; for a sensor alert its username
	// is the process's user ("uid 0") and the rest is empty.
	Actor PayloadActor `json:"actor"`
	// Object is what the requests did, to what; for a sensor alert it
	// is the pod ("pods", namespace, name) when the process ran in one.
	Object PayloadObject `json:"object"`
	// Runtime says where a sensor alert happened; audit alerts have
	// none.
	Runtime *PayloadRuntime `json:"runtime,omitempty"`
	// Events are the ids of the events grouped (audit ids, or sensor
	// evidence ids), up to a bound; Count is their number.
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

// PayloadRuntime is where a sensor alert happened: the node, the
// container and its image, and the process's command line. A process
// outside any container has no container fields.
type PayloadRuntime struct {
	Node          string `json:"node,omitempty"`
	ContainerID   string `json:"containerId,omitempty"`
	ContainerName string `json:"containerName,omitempty"`
	Image         string `json:"image,omitempty"`
	Process       string `json:"process,omitempty"`
}

// maxProcess bounds the command line an output carries whole; the store
// keeps no more, but an Output takes any store.Alert and a command line
// comes from a container.
const maxProcess = 4000

// maxProcessText bounds the command line in one-line texts (Slack's
// fallback, the syslog message), which name it rather than quote it all.
const maxProcessText = 500

// NewPayload spells an alert as the webhook posts it.
func NewPayload(a store.Alert, kind string) Payload {
	groups, events := a.Groups, a.Events
	if groups == nil {
		groups = []string{}
	}
	if events == nil {
		events = []string{}
	}
	p := Payload{Version: PayloadVersion, Kind: kind, Alert: PayloadAlert{
		ID: a.ID, Source: source(a), Cluster: a.Cluster, RuleID: a.RuleID, Title: a.Title, Severity: a.Severity,
		Technique: PayloadTechnique{ID: a.TechniqueID, Name: a.TechniqueName}, Summary: a.Summary,
		Actor:  PayloadActor{Username: a.Actor, Groups: groups, SourceIP: a.SourceIP, UserAgent: a.UserAgent},
		Object: PayloadObject{Verb: a.Verb, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name},
		Events: events, Count: a.Count, GroupKey: a.GroupKey, FirstAt: a.FirstAt, LastAt: a.LastAt, CreatedAt: a.CreatedAt,
	}}
	if isSensor(a) {
		rt := PayloadRuntime{Node: a.Node, ContainerID: a.ContainerID, ContainerName: a.ContainerName, Image: a.Image,
			Process: cut(a.Process, maxProcess)}
		if rt != (PayloadRuntime{}) {
			p.Alert.Runtime = &rt
		}
	}
	return p
}

// source is what an alert was raised over; alerts stored before sensors
// existed have none and are audit alerts.
func source(a store.Alert) string {
	if a.Source == "" {
		return store.SourceAudit
	}
	return a.Source
}

func isSensor(a store.Alert) bool { return a.Source == store.SourceSensor }

// describe says in one line what an alert saw: for an audit alert who
// did what to which object ("alice get secrets shop/db"), for a sensor
// alert which process ran where ("/bin/sh -c id (uid 0) at pod shop/web,
// container app, image nginx:1.27, node n1").
func describe(a store.Alert) string {
	if !isSensor(a) {
		return a.Actor + " " + object(a)
	}
	s := clip(a.Process, maxProcessText)
	if s == "" {
		s = "a process"
	}
	if a.Actor != "" {
		s += " (" + oneLine(a.Actor) + ")"
	}
	if where := runtimePlace(a); where != "" {
		s += " at " + where
	}
	return s
}

// runtimePlace spells where a sensor alert happened: "pod shop/web,
// container app, image nginx:1.27, node n1", or "node n1 (no
// container)" for a process on the host.
func runtimePlace(a store.Alert) string {
	var parts []string
	if a.Name != "" {
		parts = append(parts, "pod "+podRef(a))
	}
	if c := containerRef(a); c != "" {
		parts = append(parts, "container "+c)
	}
	if a.Image != "" {
		parts = append(parts, "image "+oneLine(a.Image))
	}
	if a.Node != "" {
		node := "node " + oneLine(a.Node)
		if a.ContainerID == "" && a.ContainerName == "" && a.Name == "" {
			node += " (no container)"
		}
		parts = append(parts, node)
	}
	return strings.Join(parts, ", ")
}

// podRef is "namespace/name" of a sensor alert's pod, or "" outside one.
func podRef(a store.Alert) string {
	if a.Name == "" {
		return ""
	}
	if a.Namespace == "" {
		return oneLine(a.Name)
	}
	return oneLine(a.Namespace + "/" + a.Name)
}

// containerRef names a sensor alert's container: its name, else the
// first 12 characters of its id as container runtimes abbreviate it.
func containerRef(a store.Alert) string {
	if a.ContainerName != "" {
		return oneLine(a.ContainerName)
	}
	return oneLine(cut(a.ContainerID, 12))
}

// clip is hostile text on one line, cut to n bytes with an ellipsis
// saying it was.
func clip(s string, n int) string {
	if len(s) <= n {
		return oneLine(s)
	}
	return oneLine(cut(s, n)) + " …"
}

// oneLine makes hostile text safe to show on one line: control
// characters (C0, DEL, C1, line and paragraph separators) become spaces
// and bidirectional overrides, which can make a command line read as
// another, are dropped. Invalid UTF-8 becomes U+FFFD.
func oneLine(s string) string {
	return strings.Map(safeRune, s)
}

func safeRune(r rune) rune {
	switch {
	case r < 0x20, r >= 0x7f && r < 0xa0, r == '\u2028', r == '\u2029':
		return ' '
	case unicode.Is(unicode.Bidi_Control, r):
		return -1
	}
	return r
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
