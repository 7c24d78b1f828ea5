// Package controlplane runs Bulwark's control-plane threat detection:
// Kubernetes audit events from a source (internal/auditlog) are stored for
// hunting, run through the detection rules (internal/detect), and the
// alerts are saved with a delivery queued for every output
// (internal/alertout sends them).
//
// Detection state (first-seen identities, counts in a window, alert
// groups) is kept per cluster in this replica's memory: events of one
// cluster should reach one replica.
package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/bulwarkhq/bulwark/internal/auditlog"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/rulestate"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Options configure a Pipeline.
type Options struct {
	Store *store.DB
	// Rules are compiled once per cluster.
	Rules         []detect.Rule
	EngineOptions detect.Options
	// Outputs name the alert outputs a delivery is queued for.
	Outputs []string
	// Wake is called after alerts were saved (the dispatcher's Wake).
	Wake func()
	// FlushEvery is how often grouped alerts' new counts are saved;
	// default 10s.
	FlushEvery time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Pipeline stores and judges audit events. Its methods are safe for
// concurrent use; events of one cluster are judged one batch at a time,
// in the order they arrive.
type Pipeline struct {
	o   Options
	log *slog.Logger

	engines rulestate.Clusters[*clusterEngine]

	events *prometheus.CounterVec
	alerts *prometheus.CounterVec
	judge  prometheus.Histogram
}

type clusterEngine struct {
	e      *detect.Engine
	judged *recentSet
}

// judgedMemory is how many (audit id, stage) pairs a cluster's engine
// remembers to tell a resent event from a new one: far more than the
// batches kube-apiserver may retry (at most 400 events each by default).
const judgedMemory = 1 << 16

// recentSet is a set of the last n keys added.
type recentSet struct {
	keys map[string]struct{}
	ring []string
	next int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{keys: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add adds key, forgetting the oldest key when full, and reports whether
// key was new.
func (s *recentSet) add(key string) bool {
	if _, ok := s.keys[key]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.keys, old)
	}
	s.ring[s.next] = key
	s.next = (s.next + 1) % len(s.ring)
	s.keys[key] = struct{}{}
	return true
}

// New compiles the rules once to check them and returns a Pipeline.
func New(o Options) (*Pipeline, error) {
	if o.Store == nil {
		return nil, errors.New("controlplane: no store")
	}
	if _, err := detect.Compile(o.Rules, o.EngineOptions); err != nil {
		return nil, err
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 10 * time.Second
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{o: o, log: o.Logger.With("component", "controlplane"),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_audit_events_total",
			Help: "Kubernetes audit events received, by cluster and whether they were new (duplicates are dropped)."}, []string{"cluster", "result"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_alerts_total",
			Help: "Control-plane alerts raised, by rule and severity."}, []string{"rule", "severity"}),
		judge: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bulwark_audit_batch_duration_seconds",
			Help: "Time to store and judge one batch of audit events.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.events, p.alerts, p.judge} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering control-plane metrics: %w", err)
			}
		}
	}
	return p, nil
}

// engine returns the detection engine of a cluster.
func (p *Pipeline) engine(cluster string) (*rulestate.Engine[*clusterEngine], error) {
	return p.engines.Get(cluster, func() (*clusterEngine, error) {
		e, err := detect.Compile(p.o.Rules, p.o.EngineOptions)
		if err != nil {
			return nil, err
		}
		return &clusterEngine{e: e, judged: newRecentSet(judgedMemory)}, nil
	})
}

// Sink returns the sink for a cluster's events: it stores them (durably,
// before the source may forget them), then judges them and saves the
// alerts. A failure to store is returned, so the source retries; alerts
// that cannot be saved are logged, the events being safe.
func (p *Pipeline) Sink(cluster string) auditlog.Sink {
	return func(ctx context.Context, events []auditlog.Event) error {
		start := time.Now()
		locked, err := p.engine(cluster)
		if err != nil {
			return err
		}
		// One batch at a time per cluster: the rules see events in order.
		locked.Lock()
		defer locked.Unlock()
		ce := locked.E
		rows := make([]store.AuditEvent, 0, len(events))
		for i := range events {
			rows = append(rows, storeEvent(cluster, &events[i]))
		}
		n, err := p.o.Store.RecordAuditEvents(ctx, rows)
		if err != nil {
			return fmt.Errorf("storing %d audit events: %w", len(events), err)
		}
		p.events.WithLabelValues(cluster, "new").Add(float64(n))
		p.events.WithLabelValues(cluster, "duplicate").Add(float64(len(events) - n))
		// Events judged before are a batch sent again after a failed
		// answer. The store's count cannot tell which they are: it keeps
		// one event per audit id, and kube-apiserver logs streaming
		// requests and watches twice under one id (ResponseStarted, then
		// ResponseComplete), in one batch or two, so an event it already
		// holds may be a new stage that the rules must see (a watch is
		// judged at ResponseComplete). Judging a resent event twice would
		// grow its alert's count; after a restart, when this memory is
		// gone, SaveAlerts still stores an alert group once.
		fresh := events // copied only once an event is left out
		copied := false
		for i := range events {
			id := events[i].AuditID
			isNew := id == "" || ce.judged.add(string(id)+"/"+string(events[i].Stage))
			switch {
			case !isNew && !copied:
				fresh, copied = append(make([]auditlog.Event, 0, len(events)), events[:i]...), true
			case isNew && copied:
				fresh = append(fresh, events[i])
			}
		}
		alerts := ce.e.Process(ctx, fresh)
		p.save(ctx, cluster, alerts)
		p.judge.Observe(time.Since(start).Seconds())
		return nil
	}
}

// save stores alerts and queues their deliveries.
func (p *Pipeline) save(ctx context.Context, cluster string, alerts []detect.Alert) {
	if len(alerts) == 0 {
		return
	}
	rows := make([]store.Alert, 0, len(alerts))
	for _, a := range alerts {
		rows = append(rows, storeAlert(cluster, a))
		p.alerts.WithLabelValues(a.RuleID, a.Severity).Inc()
	}
	if _, err := p.o.Store.SaveAlerts(context.WithoutCancel(ctx), rows, p.o.Outputs); err != nil {
		p.log.Error("saving alerts", "cluster", cluster, "alerts", len(rows), "err", err)
		return
	}
	for _, a := range alerts {
		p.log.Warn("control-plane alert", "cluster", cluster, "rule", a.RuleID, "severity", a.Severity, "technique", a.Technique.ID,
			"actor", a.Actor, "verb", a.Verb, "resource", a.Resource, "namespace", a.Namespace, "name", a.Name, "count", a.Count)
	}
	p.o.Wake()
}

// Run saves grouped alerts' new counts every FlushEvery until ctx is done.
func (p *Pipeline) Run(ctx context.Context) error {
	rulestate.FlushEvery(ctx, p.o.FlushEvery, p.flush)
	return nil
}

func (p *Pipeline) flush(ctx context.Context) {
	now := time.Now()
	grown := map[string][]detect.Alert{}
	p.engines.Each(func(cluster string, ce *clusterEngine) { grown[cluster] = ce.e.Flush(now) })
	for cluster, alerts := range grown {
		p.save(ctx, cluster, alerts)
	}
}

func storeEvent(cluster string, e *auditv1.Event) store.AuditEvent {
	row := store.AuditEvent{AuditID: string(e.AuditID), Cluster: cluster, At: e.StageTimestamp.Time, Verb: e.Verb,
		User: e.User.Username, Groups: e.User.Groups, UserAgent: e.UserAgent}
	if row.At.IsZero() {
		row.At = e.RequestReceivedTimestamp.Time
	}
	if len(e.SourceIPs) > 0 {
		row.SourceIP = e.SourceIPs[0]
	}
	if r := e.ObjectRef; r != nil {
		row.Resource, row.Subresource, row.Namespace, row.Name, row.APIGroup = r.Resource, r.Subresource, r.Namespace, r.Name, r.APIGroup
	}
	if e.ResponseStatus != nil {
		row.Code = int(e.ResponseStatus.Code)
	}
	if e.ImpersonatedUser != nil {
		row.Impersonated = e.ImpersonatedUser.Username
	}
	if data, err := json.Marshal(e); err == nil {
		row.Event = data
	}
	return row
}

func storeAlert(cluster string, a detect.Alert) store.Alert {
	return store.Alert{Cluster: cluster, RuleID: a.RuleID, Title: a.Title, Severity: a.Severity, TechniqueID: a.Technique.ID,
		TechniqueName: a.Technique.Name, Summary: a.Summary, Actor: a.Actor, Groups: a.Groups, SourceIP: a.SourceIP, UserAgent: a.UserAgent,
		Verb: a.Verb, Resource: a.Resource, Subresource: a.Subresource, Namespace: a.Namespace, Name: a.Name, Events: a.Events,
		Count: a.Count, GroupKey: a.Key, FirstAt: a.FirstAt, LastAt: a.LastAt}
}
