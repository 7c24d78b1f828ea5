// Package nodeingest runs Bulwark's workload detection over what node
// sensors send: a sensor's batch (internal/sensor/wire, already decoded
// and validated) is stored with its events for hunting, in one
// transaction with its batch id so that a batch sent again is stored and
// judged once; its events then go through a runtime Detector and the
// alerts are saved with a delivery queued for every output
// (internal/alertout sends them).
//
// The package does not authenticate sensors or decode requests
// (internal/api does) and does not hold detection rules: a Detector comes
// from a factory the server is given (internal/nodedetect provides one).
// Detection state is kept per cluster in this replica's memory, like
// internal/controlplane's.
package nodeingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/rulestate"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Meta is where an event came from: the cluster and node of the sensor
// that sent it (from its credential, not from the event), and the id
// alerts cite it by ("<batch id>/<index>", see store.EvidenceID).
type Meta struct {
	Cluster    string
	Node       string
	EvidenceID string
}

// Detector judges one cluster's sensor events in the order they arrive.
// Process returns the alerts an event raised or grew; Flush returns
// grouped alerts whose counts moved since they were last returned. A
// Detector is called by one goroutine at a time.
type Detector interface {
	Process(ev *wire.Event, meta Meta) []store.Alert
	Flush(now time.Time) []store.Alert
}

// Options configure a Pipeline.
type Options struct {
	Store *store.DB
	// NewDetector makes the Detector of a cluster; nil stores events
	// without judging them.
	NewDetector func(cluster string) (Detector, error)
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

// Pipeline stores and judges sensor batches. Its methods are safe for
// concurrent use; a cluster's events are judged one batch at a time.
type Pipeline struct {
	o   Options
	log *slog.Logger

	detectors rulestate.Clusters[Detector]

	events         *prometheus.CounterVec
	batches        *prometheus.CounterVec
	dropped        prometheus.Counter
	alerts         *prometheus.CounterVec
	detectorErrors prometheus.Counter
	duration       prometheus.Histogram
}

// Batch results, the values of the batches metric's result label.
const (
	resultAccepted  = "accepted"
	resultDuplicate = "duplicate"
	resultRejected  = "rejected"
)

// New returns a Pipeline.
func New(o Options) (*Pipeline, error) {
	if o.Store == nil {
		return nil, errors.New("nodeingest: no store")
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
	p := &Pipeline{o: o, log: o.Logger.With("component", "nodeingest"),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_sensor_events_total",
			Help: "Node sensor events stored, by kind."}, []string{"kind"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_sensor_batches_total",
			Help: "Node sensor batches received, by result: accepted, duplicate (sent again; stored once) or rejected (invalid)."},
			[]string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulwark_sensor_dropped_events_total",
			Help: "Events node sensors reported they lost (ring buffer overruns, a full buffer)."}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_sensor_alerts_total",
			Help: "Runtime alerts raised over node sensor events, by rule and severity."}, []string{"rule", "severity"}),
		detectorErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulwark_sensor_detector_errors_total",
			Help: "Clusters whose runtime detector could not be made; their events are stored but not judged."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bulwark_sensor_batch_duration_seconds",
			Help: "Time to store and judge one node sensor batch.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{p.events, p.batches, p.dropped, p.alerts, p.detectorErrors, p.duration} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering sensor ingest metrics: %w", err)
			}
		}
	}
	return p, nil
}

// ErrWrongNode is wrapped by the error of a batch whose node is not the
// node its sensor enrolled for.
var ErrWrongNode = fmt.Errorf("%w: the batch's node is not the sensor's", wire.ErrInvalid)

// Ingest stores a sensor's batch and judges its events, reporting false
// when the batch was stored before (a resend: nothing is stored or judged
// again). A batch of another node is rejected (counted, and an error
// wrapping wire.ErrInvalid returned); a failure to store is returned for
// the sensor to send the batch again. Alerts that cannot be saved are
// logged, the events being safe.
func (p *Pipeline) Ingest(ctx context.Context, sn *store.Sensor, b *wire.Batch) (bool, error) {
	start := time.Now()
	if b.Node != sn.Node {
		err := fmt.Errorf("%w: batch of node %q sent with the credential of node %q", ErrWrongNode, clip(b.Node), sn.Node)
		p.Reject(ctx, sn, err)
		return false, err
	}
	rows := make([]store.SensorEvent, len(b.Events))
	for i := range b.Events {
		row, err := storeEvent(sn, b.ID, i, &b.Events[i])
		if err != nil {
			return false, err
		}
		rows[i] = row
	}
	stored, err := p.o.Store.RecordSensorBatch(ctx, store.SensorBatch{SensorID: sn.ID, ID: b.ID, Version: b.Sensor, Dropped: b.Dropped, Events: rows})
	if err != nil {
		return false, fmt.Errorf("storing batch %s of sensor %s/%s: %w", b.ID, sn.Cluster, sn.Node, err)
	}
	if !stored {
		p.batches.WithLabelValues(resultDuplicate).Inc()
		return false, nil
	}
	p.batches.WithLabelValues(resultAccepted).Inc()
	p.dropped.Add(float64(b.Dropped))
	for i := range b.Events {
		p.events.WithLabelValues(b.Events[i].Kind).Inc()
	}
	if b.Dropped > 0 {
		p.log.Warn("sensor lost events", "cluster", sn.Cluster, "node", sn.Node, "dropped", b.Dropped)
	}
	p.judge(ctx, sn, b)
	p.duration.Observe(time.Since(start).Seconds())
	return true, nil
}

// judge runs a stored batch's events through the cluster's detector.
func (p *Pipeline) judge(ctx context.Context, sn *store.Sensor, b *wire.Batch) {
	if p.o.NewDetector == nil {
		return
	}
	locked, err := p.detector(sn.Cluster)
	if err != nil {
		p.detectorErrors.Inc()
		p.log.Error("making the runtime detector; events stored but not judged", "cluster", sn.Cluster, "events", len(b.Events), "err", err)
		return
	}
	var alerts []store.Alert
	locked.Lock()
	for i := range b.Events {
		meta := Meta{Cluster: sn.Cluster, Node: sn.Node, EvidenceID: store.EvidenceID(b.ID, i)}
		for _, a := range locked.E.Process(&b.Events[i], meta) {
			if a.Node == "" {
				a.Node = sn.Node
			}
			alerts = append(alerts, a)
		}
	}
	locked.Unlock()
	p.save(ctx, sn.Cluster, alerts)
}

// Reject counts a batch of a sensor the server refused, with the reason.
func (p *Pipeline) Reject(ctx context.Context, sn *store.Sensor, reason error) {
	p.batches.WithLabelValues(resultRejected).Inc()
	p.log.Warn("rejected a sensor batch", "cluster", sn.Cluster, "node", sn.Node, "sensor", sn.ID, "reason", reason)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.o.Store.RejectSensorBatch(ctx, sn.ID); err != nil {
		p.log.Error("counting a rejected sensor batch", "sensor", sn.ID, "err", err)
	}
}

// detector returns the detector of a cluster, making it on first use; a
// failure is retried with the next batch.
func (p *Pipeline) detector(cluster string) (*rulestate.Engine[Detector], error) {
	return p.detectors.Get(cluster, func() (Detector, error) {
		d, err := p.o.NewDetector(cluster)
		if err != nil {
			return nil, fmt.Errorf("runtime detector of cluster %s: %w", cluster, err)
		}
		return d, nil
	})
}

// save stores alerts of a cluster and queues their deliveries.
func (p *Pipeline) save(ctx context.Context, cluster string, alerts []store.Alert) {
	if len(alerts) == 0 {
		return
	}
	for i := range alerts {
		// The cluster is the sensor's, whatever a detector says.
		alerts[i].Source, alerts[i].Cluster = store.SourceSensor, cluster
		p.alerts.WithLabelValues(alerts[i].RuleID, alerts[i].Severity).Inc()
	}
	if _, err := p.o.Store.SaveAlerts(context.WithoutCancel(ctx), alerts, p.o.Outputs); err != nil {
		p.log.Error("saving runtime alerts", "cluster", cluster, "alerts", len(alerts), "err", err)
		return
	}
	for _, a := range alerts {
		p.log.Warn("runtime alert", "cluster", cluster, "node", a.Node, "rule", a.RuleID, "severity", a.Severity, "technique", a.TechniqueID,
			"namespace", a.Namespace, "pod", a.Name, "container", a.ContainerName, "process", a.Process, "count", a.Count)
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
	grown := map[string][]store.Alert{}
	p.detectors.Each(func(cluster string, d Detector) { grown[cluster] = d.Flush(now) })
	for cluster, alerts := range grown {
		p.save(ctx, cluster, alerts)
	}
}

// storeEvent is the stored form of a batch's event i.
func storeEvent(sn *store.Sensor, batchID string, i int, e *wire.Event) (store.SensorEvent, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return store.SensorEvent{}, fmt.Errorf("encoding event %d of batch %s: %w", i, batchID, err)
	}
	row := store.SensorEvent{Cluster: sn.Cluster, Node: sn.Node, BatchID: batchID, Index: i, At: e.Time, Kind: e.Kind, PID: e.Process.PID,
		UID: e.Process.UID, Exe: e.Process.Exe, Args: e.Process.Args, Drift: e.Process.Drift, Remote: e.Remote, Event: data}
	if row.Remote == "" {
		// An exec'd process whose standard streams are a socket: the
		// peer is what a reverse shell hunt looks for.
		row.Remote = e.Process.Remote
	}
	if c := e.Container; c != nil {
		row.ContainerID, row.ContainerName, row.Pod, row.Namespace, row.Image, row.Digest = c.ID, c.Name, c.Pod, c.Namespace, c.Image, c.Digest
	}
	if e.DNS != nil {
		row.DNSName = e.DNS.Name
	}
	return row, nil
}

// clip shortens a hostile value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
