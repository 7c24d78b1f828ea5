package alertout

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// backends runs fn against an SQLite store and one on a real PostgreSQL
// server; dsn is empty for SQLite.
func backends(t *testing.T, fn func(t *testing.T, db *store.DB, open func() *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), store.SQLiteFile)
		open := func() *store.DB {
			db, err := store.OpenSQLite(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		fn(t, open(), open)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := testenv.SharedPostgres(t).Database(t)
		open := func() *store.DB {
			db, err := store.OpenPostgres(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		fn(t, open(), open)
	})
}

func alertsFor(n int, prefix string) []store.Alert {
	var out []store.Alert
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := 0; i < n; i++ {
		a := sampleAlert()
		a.ID, a.GroupKey, a.FirstAt, a.LastAt, a.Count = 0, fmt.Sprintf("%s-%d", prefix, i), first, first, 1
		out = append(out, a)
	}
	return out
}

// fastRetries makes backoffs short enough for a test.
var fastRetries = DispatcherOptions{Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Poll: 50 * time.Millisecond, SendTimeout: 2 * time.Second}

func start(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// sent reads bulwark_alert_deliveries_total{output, result} from d.
func sent(t *testing.T, d *Dispatcher, output, result string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(d.deliveries); err != nil {
		t.Fatal(err)
	}
	return value(t, reg, "bulwark_alert_deliveries_total", map[string]string{"output": output, "result": result})
}

// value reads one series from reg: a counter's or a gauge's value, 0
// when the series does not exist.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// eventually polls cond for up to 15 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// okReceiver answers 2xx only once up is set, 503 before, and records
// only what it accepted.
type okReceiver struct {
	mu       sync.Mutex
	up       bool
	refused  int
	accepted []Payload
}

func (r *okReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var p Payload
	if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.up {
		r.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	r.accepted = append(r.accepted, p)
	w.WriteHeader(http.StatusAccepted)
}

func (r *okReceiver) state() (refused int, accepted []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.accepted {
		accepted = append(accepted, fmt.Sprintf("%s:%d:%d", p.Kind, p.Alert.ID, p.Alert.Count))
	}
	sort.Strings(accepted)
	return r.refused, accepted
}

func TestDispatcherRetriesUntilTheOutputIsBack(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		recv := &okReceiver{}
		srv := httptest.NewServer(recv)
		defer srv.Close()
		hook, err := NewWebhook("hook", srv.URL, WebhookOptions{})
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		opts := fastRetries
		opts.Registerer = reg
		d, err := NewDispatcher(db, []Output{hook}, opts)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := db.SaveAlerts(ctx, alertsFor(5, "down"), d.Outputs())
		if err != nil {
			t.Fatal(err)
		}
		start(t, d)
		d.Wake()
		eventually(t, "several refused attempts", func() bool { n, _ := recv.state(); return n >= 10 })
		// A grouped alert grows while the output is down.
		grown := saved[0]
		grown.Count, grown.LastAt = 4, grown.LastAt.Add(time.Second)
		if _, err := db.SaveAlerts(ctx, []store.Alert{grown}, d.Outputs()); err != nil {
			t.Fatal(err)
		}
		if p, _ := db.PendingDeliveries(ctx); p["hook"] != 6 {
			t.Errorf("pending while down = %v, want 6", p)
		}
		recv.mu.Lock()
		recv.up = true
		recv.mu.Unlock()
		eventually(t, "the outbox to drain", func() bool { p, _ := db.PendingDeliveries(ctx); return p["hook"] == 0 })
		var want []string
		for _, a := range saved {
			count := 1
			if a.ID == saved[0].ID {
				count = 4 // sent after the update: the current state
			}
			want = append(want, fmt.Sprintf("new:%d:%d", a.ID, count))
		}
		want = append(want, fmt.Sprintf("update:%d:4", saved[0].ID))
		sort.Strings(want)
		// Nothing more arrives later.
		time.Sleep(300 * time.Millisecond)
		_, got := recv.state()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
		if n := sent(t, d, "hook", resultSent); n != 6 {
			t.Errorf("sent counter = %v, want 6", n)
		}
		if n := sent(t, d, "hook", resultRetried); n < 10 {
			t.Errorf("retried counter = %v, want at least 10", n)
		}
		eventually(t, "the pending gauge to read 0", func() bool {
			return value(t, reg, "bulwark_alert_outbox_pending", map[string]string{"output": "hook"}) == 0
		})
	})
}

func TestDispatcherGivesUpOnRejection(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		recv := &httpReceiver{status: http.StatusBadRequest}
		srv := httptest.NewServer(recv)
		defer srv.Close()
		hook, _ := NewWebhook("hook", srv.URL, WebhookOptions{})
		d, err := NewDispatcher(db, []Output{hook}, fastRetries)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := db.SaveAlerts(ctx, alertsFor(1, "bad"), d.Outputs())
		if err != nil {
			t.Fatal(err)
		}
		start(t, d)
		eventually(t, "the delivery to be given up", func() bool { p, _ := db.PendingDeliveries(ctx); return p["hook"] == 0 })
		time.Sleep(300 * time.Millisecond)
		if bodies, _ := recv.received(); len(bodies) != 1 {
			t.Errorf("%d requests for a rejected alert, want 1", len(bodies))
		}
		ds, err := db.AlertDeliveries(ctx, saved[0].ID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries = %+v, %v", ds, err)
		}
		if ds[0].Status != store.DeliveryGaveUp || !strings.Contains(ds[0].Error, "400 Bad Request") || ds[0].Attempts != 1 {
			t.Errorf("delivery = %+v", ds[0])
		}
	})
}

func TestDispatcherGivesUpAfterMaxAttempts(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		recv := &httpReceiver{status: http.StatusBadGateway}
		srv := httptest.NewServer(recv)
		defer srv.Close()
		hook, _ := NewWebhook("hook", srv.URL, WebhookOptions{})
		opts := fastRetries
		opts.MaxAttempts = 3
		d, err := NewDispatcher(db, []Output{hook}, opts)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := db.SaveAlerts(ctx, alertsFor(1, "flaky"), d.Outputs())
		if err != nil {
			t.Fatal(err)
		}
		start(t, d)
		eventually(t, "the delivery to be given up", func() bool { p, _ := db.PendingDeliveries(ctx); return p["hook"] == 0 })
		ds, _ := db.AlertDeliveries(ctx, saved[0].ID)
		if len(ds) != 1 || ds[0].Status != store.DeliveryGaveUp || ds[0].Attempts != 3 || !strings.Contains(ds[0].Error, "502") {
			t.Errorf("deliveries = %+v", ds)
		}
	})
}

func TestDispatcherSyslogDownThenBack(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		// Reserve a port, then leave it closed: the receiver is down.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		out, err := NewSyslog("siem", SyslogTCP, addr, SyslogOptions{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		d, err := NewDispatcher(db, []Output{out}, fastRetries)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := db.SaveAlerts(ctx, alertsFor(4, "syslog"), d.Outputs())
		if err != nil {
			t.Fatal(err)
		}
		start(t, d)
		eventually(t, "failed attempts", func() bool {
			return sent(t, d, "siem", resultRetried) >= 8
		})
		recv := newSyslogReceiver(t)
		l, err = net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go recv.serveStream(l)
		recv.wait(4)
		// Nothing more arrives later.
		time.Sleep(300 * time.Millisecond)
		msgs := recv.messages()
		var got, want []string
		for _, m := range msgs {
			got = append(got, parseSyslog(t, m).Params["id"])
		}
		for _, a := range saved {
			want = append(want, fmt.Sprint(a.ID))
		}
		sort.Strings(got)
		sort.Strings(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("alerts received (-want +got):\n%s", diff)
		}
	})
}

func TestTwoDispatchersDeliverOnce(t *testing.T) {
	backends(t, func(t *testing.T, db *store.DB, open func() *store.DB) {
		if db.Dialect() != "postgres" {
			t.Skip("replicas share a PostgreSQL database")
		}
		ctx := context.Background()
		recv := &okReceiver{up: true}
		srv := httptest.NewServer(recv)
		defer srv.Close()
		var ds []*Dispatcher
		for i := 0; i < 2; i++ {
			hook, _ := NewWebhook("hook", srv.URL, WebhookOptions{})
			opts := fastRetries
			opts.Batch = 3
			d, err := NewDispatcher(open(), []Output{hook}, opts)
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		for _, d := range ds {
			start(t, d)
		}
		const n = 60
		var want []string
		for i := 0; i < n; i += 10 {
			saved, err := db.SaveAlerts(ctx, alertsFor(10, fmt.Sprint("burst", i)), []string{"hook"})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range saved {
				want = append(want, fmt.Sprintf("new:%d:1", a.ID))
			}
			for _, d := range ds {
				d.Wake()
			}
		}
		sort.Strings(want)
		eventually(t, "every alert delivered", func() bool { _, got := recv.state(); return len(got) >= n })
		time.Sleep(300 * time.Millisecond)
		_, got := recv.state()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
		var perReplica []float64
		for _, d := range ds {
			perReplica = append(perReplica, sent(t, d, "hook", resultSent))
		}
		t.Logf("sent per replica: %v", perReplica)
	})
}

func TestNewDispatcherRejectsDuplicateNames(t *testing.T) {
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, _ := NewWebhook("same", "http://127.0.0.1:1", WebhookOptions{})
	b, _ := NewSlack("same", "http://127.0.0.1:1", WebhookOptions{})
	if _, err := NewDispatcher(db, []Output{a, b}, DispatcherOptions{}); err == nil {
		t.Error("two outputs with one name accepted")
	}
}

func TestBackoff(t *testing.T) {
	d := &Dispatcher{o: DispatcherOptions{Backoff: 5 * time.Second, MaxBackoff: 10 * time.Minute}}
	for _, tc := range []struct {
		attempts int
		base     time.Duration
	}{{1, 5 * time.Second}, {2, 10 * time.Second}, {4, 40 * time.Second}, {8, 10 * time.Minute}, {150, 10 * time.Minute}} {
		got := d.backoff(tc.attempts)
		if got < tc.base*8/10 || got > tc.base*12/10 {
			t.Errorf("backoff after %d attempts = %v, want %v ±20%%", tc.attempts, got, tc.base)
		}
	}
}
