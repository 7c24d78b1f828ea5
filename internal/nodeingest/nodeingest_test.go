package nodeingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.SQLiteFile), nil)
	if err != nil {
		t.Fatalf("opening SQLite store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func enroll(t testing.TB, db *store.DB, cluster, node string) *store.Sensor {
	t.Helper()
	sn := &store.Sensor{Cluster: cluster, Node: node, Hash: "hash-" + cluster + "-" + node}
	if err := db.EnrollSensor(context.Background(), sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

// shellDetector stands in for the runtime rules (internal/nodedetect has
// its own tests): it raises one alert per container that runs /bin/sh,
// grouped, and lets Flush report the group's count once it grew.
type shellDetector struct {
	mu      *sync.Mutex
	seen    *[]string // evidence ids Process was given, across clusters
	cluster string
	groups  map[string]*store.Alert
	flushed map[string]int
}

func (d *shellDetector) Process(ev *wire.Event, meta nodeingest.Meta) []store.Alert {
	d.mu.Lock()
	*d.seen = append(*d.seen, meta.Cluster+":"+meta.EvidenceID)
	d.mu.Unlock()
	if ev.Kind != wire.KindExec || ev.Process.Exe != "/bin/sh" || ev.Container == nil {
		return nil
	}
	key := meta.Node + "/" + ev.Container.ID
	if a := d.groups[key]; a != nil {
		a.Count++
		a.LastAt = ev.Time
		a.Events = append(a.Events, meta.EvidenceID)
		return nil
	}
	a := &store.Alert{Cluster: "ignored", RuleID: "shell-in-container", Title: "Shell in a container", Severity: "high", TechniqueID: "T1059.004",
		Summary: "a shell ran", Resource: "pods", Namespace: ev.Container.Namespace, Name: ev.Container.Pod, ContainerID: ev.Container.ID,
		ContainerName: ev.Container.Name, Image: ev.Container.Image, Process: ev.Process.Exe, Events: []string{meta.EvidenceID}, Count: 1,
		GroupKey: key, FirstAt: ev.Time, LastAt: ev.Time}
	d.groups[key] = a
	d.flushed[key] = 1
	return []store.Alert{*a}
}

func (d *shellDetector) Flush(time.Time) []store.Alert {
	var out []store.Alert
	for k, a := range d.groups {
		if a.Count > d.flushed[k] {
			d.flushed[k] = a.Count
			out = append(out, *a)
		}
	}
	return out
}

type harness struct {
	db       *store.DB
	p        *nodeingest.Pipeline
	reg      *prometheus.Registry
	mu       sync.Mutex
	seen     []string
	wakes    int
	failNext bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{db: openStore(t), reg: prometheus.NewRegistry()}
	p, err := nodeingest.New(nodeingest.Options{Store: h.db, Outputs: []string{"siem", "slack"}, Registerer: h.reg, FlushEvery: time.Hour,
		Wake: func() { h.mu.Lock(); h.wakes++; h.mu.Unlock() },
		NewDetector: func(cluster string) (nodeingest.Detector, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.failNext {
				h.failNext = false
				return nil, errors.New("rules do not compile")
			}
			return &shellDetector{mu: &h.mu, seen: &h.seen, cluster: cluster, groups: map[string]*store.Alert{}, flushed: map[string]int{}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	return h
}

// metric returns a counter's value (0 when it has none yet).
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func execEvent(at time.Time, exe, container string) wire.Event {
	return wire.Event{Kind: wire.KindExec, Time: at, Process: wire.Process{PID: 42, UID: 0, Exe: exe, Args: []string{exe, "-i"}, Remote: "10.0.0.9:4444"},
		Container: &wire.Container{ID: container, Name: "app", Pod: "web-1", Namespace: "shop", Image: "nginx:1.27"}}
}

func batch(n int, node string, events ...wire.Event) *wire.Batch {
	return &wire.Batch{ID: fmt.Sprintf("%032x", n), Node: node, Sensor: "v1.2.3", SentAt: t0, Events: events}
}

func TestPipelineStoresAndJudges(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sn := enroll(t, h.db, "prod", "n1")
	b := batch(1, "n1",
		execEvent(t0, "/bin/sh", "c1"),
		wire.Event{Kind: wire.KindDNS, Time: t0.Add(time.Second), Process: wire.Process{PID: 43, Exe: "/usr/bin/curl"},
			DNS: &wire.DNSQuery{Name: "evil.example", Type: "A"}},
		execEvent(t0.Add(2*time.Second), "/bin/sh", "c1"))
	b.Dropped = 5
	stored, err := h.p.Ingest(ctx, sn, b)
	if err != nil || !stored {
		t.Fatalf("Ingest = %v, %v", stored, err)
	}

	events, _, err := h.db.SensorEvents(ctx, store.SensorEventFilter{}, store.Page{})
	if err != nil || len(events) != 3 {
		t.Fatalf("stored events = %d, %v", len(events), err)
	}
	dns := events[1]
	if dns.Cluster != "prod" || dns.Node != "n1" || dns.Kind != "dns" || dns.DNSName != "evil.example" || dns.EvidenceID() != b.ID+"/1" {
		t.Errorf("dns event = %+v", dns)
	}
	if sh := events[0]; sh.ContainerID != "c1" || sh.Pod != "web-1" || sh.Remote != "10.0.0.9:4444" || len(sh.Event) == 0 {
		t.Errorf("exec event = %+v", sh)
	}
	got, _ := h.db.Sensor(ctx, sn.ID)
	if got.Events != 3 || got.Dropped != 5 || got.Version != "v1.2.3" {
		t.Errorf("sensor = %+v", got)
	}

	alerts, _, err := h.db.Alerts(ctx, store.AlertFilter{Source: store.SourceSensor}, store.Page{})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts = %+v, %v", alerts, err)
	}
	a := alerts[0]
	if a.Cluster != "prod" || a.Node != "n1" || a.ContainerID != "c1" || a.Resource != "pods" || a.Name != "web-1" || a.Count != 1 {
		t.Errorf("alert = %+v", a)
	}
	if diff := cmp.Diff([]string{b.ID + "/0"}, a.Events); diff != "" {
		t.Errorf("evidence (-want +got):\n%s", diff)
	}
	ds, err := h.db.AlertDeliveries(ctx, a.ID)
	if err != nil || len(ds) != 2 || ds[0].Kind != store.DeliveryNew {
		t.Errorf("deliveries = %+v, %v", ds, err)
	}
	if h.wakes != 1 {
		t.Errorf("dispatcher woken %d times, want 1", h.wakes)
	}

	// A resend is neither stored nor judged again.
	stored, err = h.p.Ingest(ctx, sn, b)
	if err != nil || stored {
		t.Fatalf("resend: Ingest = %v, %v", stored, err)
	}
	if n := len(h.seen); n != 3 {
		t.Errorf("detector saw %d events, want 3", n)
	}
	if got, _ := h.db.Sensor(ctx, sn.ID); got.Events != 3 {
		t.Errorf("events after a resend = %d", got.Events)
	}

	// The grouped alert's new count is saved by the flush on stop.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- h.p.Run(runCtx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a, _ := h.db.Alert(ctx, a.ID); a.Count != 2 || len(a.Events) != 2 {
		t.Errorf("alert after flush = %+v", a)
	}
	if ds, _ := h.db.AlertDeliveries(ctx, a.ID); len(ds) != 4 {
		t.Errorf("%d deliveries after the update, want 4", len(ds))
	}

	for _, m := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"bulwark_sensor_events_total", []string{"kind", "exec"}, 2},
		{"bulwark_sensor_events_total", []string{"kind", "dns"}, 1},
		{"bulwark_sensor_batches_total", []string{"result", "accepted"}, 1},
		{"bulwark_sensor_batches_total", []string{"result", "duplicate"}, 1},
		{"bulwark_sensor_dropped_events_total", nil, 5},
		{"bulwark_sensor_alerts_total", []string{"rule", "shell-in-container"}, 2},
	} {
		if got := h.metric(t, m.name, m.labels...); got != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
		}
	}
}

func TestPipelineRejectsAnotherNodesBatch(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sn := enroll(t, h.db, "prod", "n1")
	_, err := h.p.Ingest(ctx, sn, batch(2, "n2", execEvent(t0, "/bin/sh", "c1")))
	if !errors.Is(err, nodeingest.ErrWrongNode) || !errors.Is(err, wire.ErrInvalid) {
		t.Fatalf("err = %v, want ErrWrongNode", err)
	}
	if events, _, _ := h.db.SensorEvents(ctx, store.SensorEventFilter{}, store.Page{}); len(events) != 0 {
		t.Errorf("%d events stored from another node's batch", len(events))
	}
	if got, _ := h.db.Sensor(ctx, sn.ID); got.Rejected != 1 {
		t.Errorf("rejected = %d", got.Rejected)
	}
	if got := h.metric(t, "bulwark_sensor_batches_total", "result", "rejected"); got != 1 {
		t.Errorf("rejected metric = %v", got)
	}
}

func TestPipelineStoresWhenTheDetectorFails(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sn := enroll(t, h.db, "lab", "n1")
	h.failNext = true
	if ok, err := h.p.Ingest(ctx, sn, batch(3, "n1", execEvent(t0, "/bin/sh", "c1"))); err != nil || !ok {
		t.Fatalf("Ingest = %v, %v", ok, err)
	}
	if events, _, _ := h.db.SensorEvents(ctx, store.SensorEventFilter{}, store.Page{}); len(events) != 1 {
		t.Errorf("%d events stored, want 1", len(events))
	}
	if alerts, _, _ := h.db.Alerts(ctx, store.AlertFilter{}, store.Page{}); len(alerts) != 0 {
		t.Errorf("alerts without a detector: %+v", alerts)
	}
	if got := h.metric(t, "bulwark_sensor_detector_errors_total"); got != 1 {
		t.Errorf("detector errors = %v", got)
	}
	// The next batch gets a detector.
	if _, err := h.p.Ingest(ctx, sn, batch(4, "n1", execEvent(t0, "/bin/sh", "c2"))); err != nil {
		t.Fatal(err)
	}
	if alerts, _, _ := h.db.Alerts(ctx, store.AlertFilter{Cluster: "lab"}, store.Page{}); len(alerts) != 1 {
		t.Errorf("alerts after the detector came = %d, want 1", len(alerts))
	}
}

func TestPipelineWithoutDetection(t *testing.T) {
	db := openStore(t)
	p, err := nodeingest.New(nodeingest.Options{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	sn := enroll(t, db, "prod", "n1")
	if ok, err := p.Ingest(context.Background(), sn, batch(5, "n1", execEvent(t0, "/bin/sh", "c1"))); err != nil || !ok {
		t.Fatalf("Ingest = %v, %v", ok, err)
	}
	if events, _, _ := db.SensorEvents(context.Background(), store.SensorEventFilter{}, store.Page{}); len(events) != 1 {
		t.Errorf("%d events stored, want 1", len(events))
	}
	if _, err := nodeingest.New(nodeingest.Options{}); err == nil {
		t.Error("New without a store succeeded")
	}
}

// BenchmarkIngest stores and judges batches of 1,000 exec events in
// SQLite and reports events/s.
func BenchmarkIngest(b *testing.B) {
	db := openStore(b)
	p, err := nodeingest.New(nodeingest.Options{Store: db, NewDetector: func(string) (nodeingest.Detector, error) {
		var mu sync.Mutex
		var seen []string
		return &shellDetector{mu: &mu, seen: &seen, groups: map[string]*store.Alert{}, flushed: map[string]int{}}, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	sn := enroll(b, db, "prod", "n1")
	events := make([]wire.Event, 1000)
	for i := range events {
		events[i] = execEvent(t0.Add(time.Duration(i)*time.Millisecond), "/usr/bin/curl", fmt.Sprintf("c%d", i%50))
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := p.Ingest(ctx, sn, batch(i, "n1", events...)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
