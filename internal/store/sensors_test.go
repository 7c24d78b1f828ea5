package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func enrollSensor(t testing.TB, db *DB, cluster, node, hash string) *Sensor {
	t.Helper()
	sn := &Sensor{Cluster: cluster, Node: node, Hash: hash, Prefix: "bws_" + hash[:4], EnrolledBy: "ds"}
	if err := db.EnrollSensor(context.Background(), sn); err != nil {
		t.Fatal(err)
	}
	return sn
}

func sensorEvent(batch string, i int, kind, exe, pod string, at time.Time) SensorEvent {
	e := SensorEvent{Cluster: "prod", Node: "n1", BatchID: batch, Index: i, At: at, Kind: kind, PID: uint32(100 + i), UID: 0, Exe: exe,
		Args: []string{exe, "-c", "id"}, ContainerID: "c-" + pod, ContainerName: "app", Pod: pod, Namespace: "shop", Image: "nginx:1",
		Digest: "sha256:" + strings.Repeat("a", 64), Event: json.RawMessage(`{"kind":"` + kind + `"}`)}
	switch kind {
	case "dns":
		e.DNSName = "evil.example"
	case "connect":
		e.Remote = "10.0.0.9:4444"
	}
	return e
}

func TestSensorEnrolment(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		a := enrollSensor(t, db, "prod", "n1", "hash-a")
		if a.ID == 0 || !a.EnrolledAt.Equal(clk.now()) || a.EnrolledBy != "ds" || !a.LastSeenAt.IsZero() {
			t.Fatalf("enrolled = %+v", a)
		}
		got, err := db.SensorByHash(ctx, "hash-a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("by hash (-want +got):\n%s", diff)
		}
		if ok, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: a.ID, ID: "b1", Version: "v1", Dropped: 3,
			Events: []SensorEvent{sensorEvent("b1", 0, "exec", "/bin/sh", "web", clk.now())}}); err != nil || !ok {
			t.Fatalf("record = %v, %v", ok, err)
		}

		// Enrolling the node again replaces the credential and keeps the
		// identity and its counters.
		clk.add(time.Hour)
		again := enrollSensor(t, db, "prod", "n1", "hash-b")
		if again.ID != a.ID || again.Events != 1 || again.Dropped != 3 || again.Version != "v1" || !again.EnrolledAt.Equal(clk.now()) {
			t.Errorf("re-enrolled = %+v", again)
		}
		if _, err := db.SensorByHash(ctx, "hash-a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the replaced credential: err = %v, want ErrNotFound", err)
		}
		other := enrollSensor(t, db, "prod", "n2", "hash-c")
		lab := enrollSensor(t, db, "lab", "n1", "hash-d")
		if other.ID == a.ID || lab.ID == a.ID {
			t.Errorf("another node got the same id")
		}

		if err := db.RevokeSensor(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.RevokeSensor(ctx, a.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking twice: err = %v, want ErrNotFound", err)
		}
		if got, _ := db.SensorByHash(ctx, "hash-b"); got == nil || got.RevokedAt.IsZero() {
			t.Errorf("revoked sensor = %+v", got)
		}
		if err := db.RevokeSensor(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking a missing sensor: err = %v", err)
		}
		// Enrolling after a revocation makes the sensor active again.
		if back := enrollSensor(t, db, "prod", "n1", "hash-e"); back.ID != a.ID || !back.RevokedAt.IsZero() {
			t.Errorf("re-enrolled after revocation = %+v", back)
		}

		if err := db.RejectSensorBatch(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Sensor(ctx, other.ID); got.Rejected != 1 || got.LastSeenAt.IsZero() {
			t.Errorf("after a rejection: %+v", got)
		}
		if _, err := db.Sensor(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing sensor: err = %v", err)
		}

		names := func(f SensorFilter, p Page) ([]string, string) {
			t.Helper()
			list, next, err := db.Sensors(ctx, f, p)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, s := range list {
				out = append(out, s.Cluster+"/"+s.Node)
			}
			return out, next
		}
		if got, _ := names(SensorFilter{}, Page{}); !cmp.Equal(got, []string{"lab/n1", "prod/n2", "prod/n1"}) {
			t.Errorf("all sensors = %v", got)
		}
		if got, _ := names(SensorFilter{Cluster: "prod", Node: "n2"}, Page{}); !cmp.Equal(got, []string{"prod/n2"}) {
			t.Errorf("prod/n2 = %v", got)
		}
		first, next := names(SensorFilter{}, Page{Limit: 2})
		rest, last := names(SensorFilter{}, Page{Limit: 2, Cursor: next})
		if len(first) != 2 || next == "" || !cmp.Equal(rest, []string{"prod/n1"}) || last != "" {
			t.Errorf("pages = %v %q, %v %q", first, next, rest, last)
		}
	})
}

func TestRecordSensorBatch(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		sn := enrollSensor(t, db, "prod", "n1", "hash-a")
		at := clk.now().Add(-time.Minute).Truncate(time.Millisecond)
		events := []SensorEvent{
			sensorEvent("b1", 0, "exec", "/bin/sh", "web", at),
			sensorEvent("b1", 1, "dns", "/usr/bin/curl", "web", at.Add(time.Second)),
			sensorEvent("b1", 2, "connect", "/usr/bin/nc", "db", at.Add(2*time.Second)),
		}
		events[2].Drift = true
		ok, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: "b1", Version: "v2", Dropped: 7, Events: events})
		if err != nil || !ok {
			t.Fatalf("record = %v, %v", ok, err)
		}
		// The same batch again is a resend: nothing is stored twice.
		clk.add(time.Minute)
		ok, err = db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: "b1", Version: "v2", Dropped: 7, Events: events})
		if err != nil || ok {
			t.Fatalf("resend = %v, %v; want false", ok, err)
		}
		got, _ := db.Sensor(ctx, sn.ID)
		if got.Events != 3 || got.Dropped != 7 || got.Version != "v2" || !got.LastSeenAt.Equal(clk.now()) {
			t.Errorf("sensor after a batch and its resend = %+v", got)
		}
		// Another sensor may use the same batch id.
		other := enrollSensor(t, db, "prod", "n2", "hash-b")
		if ok, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: other.ID, ID: "b1"}); err != nil || !ok {
			t.Errorf("another sensor's batch b1 = %v, %v", ok, err)
		}

		list, _, err := db.SensorEvents(ctx, SensorEventFilter{}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("%d events stored, want 3", len(list))
		}
		want := events[2]
		want.ID = list[0].ID
		if diff := cmp.Diff(want, list[0]); diff != "" {
			t.Errorf("stored event (-want +got):\n%s", diff)
		}
		if id := list[0].EvidenceID(); id != "b1/2" {
			t.Errorf("evidence id = %q", id)
		}

		for _, tc := range []struct {
			f    SensorEventFilter
			want []string
		}{
			{SensorEventFilter{Kind: "exec"}, []string{"b1/0"}},
			{SensorEventFilter{Cluster: "prod", Node: "n1"}, []string{"b1/2", "b1/1", "b1/0"}},
			{SensorEventFilter{Node: "n2"}, nil},
			{SensorEventFilter{Container: "c-db"}, []string{"b1/2"}},
			{SensorEventFilter{Container: "app", Pod: "web"}, []string{"b1/1", "b1/0"}},
			{SensorEventFilter{Namespace: "shop", Exe: "/usr/bin/curl"}, []string{"b1/1"}},
			{SensorEventFilter{DNSName: "evil.example"}, []string{"b1/1"}},
			{SensorEventFilter{Evidence: "b1/1"}, []string{"b1/1"}},
			{SensorEventFilter{Since: at.Add(time.Second), Until: at.Add(2 * time.Second)}, []string{"b1/1"}},
		} {
			list, _, err := db.SensorEvents(ctx, tc.f, Page{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range list {
				ids = append(ids, e.EvidenceID())
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("filter %+v (-want +got):\n%s", tc.f, diff)
			}
		}
		for _, bad := range []string{"b1", "b1/x", "/1", "b1/-1"} {
			if _, _, err := db.SensorEvents(ctx, SensorEventFilter{Evidence: bad}, Page{}); !errors.Is(err, ErrBadEvidence) {
				t.Errorf("evidence %q: err = %v, want ErrBadEvidence", bad, err)
			}
		}
		page1, next, err := db.SensorEvents(ctx, SensorEventFilter{}, Page{Limit: 2})
		if err != nil || len(page1) != 2 || next == "" {
			t.Fatalf("page 1 = %d, %q, %v", len(page1), next, err)
		}
		page2, next, err := db.SensorEvents(ctx, SensorEventFilter{}, Page{Limit: 2, Cursor: next})
		if err != nil || len(page2) != 1 || next != "" || page2[0].EvidenceID() != "b1/0" {
			t.Errorf("page 2 = %v, %q, %v", page2, next, err)
		}
	})
}

func TestRecordSensorBatchHostile(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		sn := enrollSensor(t, db, "prod", "n1", "hash-a")
		e := sensorEvent("b1", 0, "exec", "/bin/\x00sh\xff", "web", clk.now().Add(24*time.Hour))
		e.Args = []string{"a\x00b", strings.Repeat("x", 10000)}
		// Counters a hostile sensor reports saturate instead of failing
		// every later batch.
		for i := range 3 {
			id := fmt.Sprintf("b%d", i)
			if _, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: id, Version: "v\x00", Dropped: math.MaxUint64,
				Events: []SensorEvent{e}}); err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
		}
		got, _ := db.Sensor(ctx, sn.ID)
		if got.Dropped != maxSensorCounter || got.Version != "v" {
			t.Errorf("sensor = %+v", got)
		}
		list, _, err := db.SensorEvents(ctx, SensorEventFilter{}, Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ev := list[0]; ev.Exe != "/bin/sh\uFFFD" || ev.Args[0] != "ab" || len(ev.Args[1]) != 4096 || !ev.At.Equal(clk.now()) {
			t.Errorf("stored hostile event: exe %q, args %q…, at %v", ev.Exe, ev.Args[0], ev.At)
		}
	})
}

func TestPruneSensorEvents(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		sn := enrollSensor(t, db, "prod", "n1", "hash-a")
		if _, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: "old",
			Events: []SensorEvent{sensorEvent("old", 0, "exec", "/bin/sh", "web", clk.now().Add(-time.Hour))}}); err != nil {
			t.Fatal(err)
		}
		clk.add(6 * 24 * time.Hour)
		if _, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: "new",
			Events: []SensorEvent{sensorEvent("new", 0, "exec", "/bin/sh", "web", clk.now())}}); err != nil {
			t.Fatal(err)
		}
		clk.add(2 * 24 * time.Hour)
		pruned, err := db.Prune(ctx, DefaultRetention())
		if err != nil {
			t.Fatal(err)
		}
		if pruned["sensor_events"] != 1 || pruned["sensor_batches"] != 1 {
			t.Errorf("pruned = %v", pruned)
		}
		left, _, _ := db.SensorEvents(ctx, SensorEventFilter{}, Page{})
		if len(left) != 1 || left[0].BatchID != "new" {
			t.Errorf("left = %+v", left)
		}
		// A batch id forgotten with its events is new again.
		if ok, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: "old"}); err != nil || !ok {
			t.Errorf("old batch id after pruning = %v, %v", ok, err)
		}
		if ok, _ := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: "new"}); ok {
			t.Error("a kept batch id was stored again")
		}
	})
}

func TestSensorAlerts(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		runtime := testAlert("sensor/prod/n1/web", clk.now())
		runtime.Source, runtime.Node, runtime.ContainerID, runtime.ContainerName = SourceSensor, "n1", "c-web", "app"
		runtime.Image, runtime.Process, runtime.Resource, runtime.Name = "nginx:1", "/bin/sh -c id", "pods", "web"
		runtime.Events = []string{"b1/0"}
		audit := testAlert("alice", clk.now())
		audit.Source = ""
		saved, err := db.SaveAlerts(ctx, []Alert{runtime, audit}, []string{"siem"})
		if err != nil {
			t.Fatal(err)
		}
		want := runtime
		want.ID, want.CreatedAt = saved[0].ID, clk.now()
		if diff := cmp.Diff(want, saved[0]); diff != "" {
			t.Errorf("runtime alert (-want +got):\n%s", diff)
		}
		if saved[1].Source != SourceAudit {
			t.Errorf("an alert without a source is %q, want audit", saved[1].Source)
		}
		for _, tc := range []struct {
			f    AlertFilter
			want []int64
		}{
			{AlertFilter{Source: SourceSensor}, []int64{saved[0].ID}},
			{AlertFilter{Source: SourceAudit}, []int64{saved[1].ID}},
			{AlertFilter{Node: "n1"}, []int64{saved[0].ID}},
			{AlertFilter{Node: "n2"}, nil},
		} {
			list, _, err := db.Alerts(ctx, tc.f, Page{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, a := range list {
				ids = append(ids, a.ID)
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("filter %+v (-want +got):\n%s", tc.f, diff)
			}
		}
	})
}

// BenchmarkRecordSensorBatch stores batches of 1,000 exec events in
// SQLite, as sensors send them, and reports events/s.
func BenchmarkRecordSensorBatch(b *testing.B) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), SQLiteFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sn := enrollSensor(b, db, "prod", "n1", "hash-a")
	now := time.Now()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("%032x", i)
		events := make([]SensorEvent, 1000)
		for j := range events {
			events[j] = sensorEvent(id, j, "exec", "/usr/bin/curl", fmt.Sprintf("web-%d", j%50), now)
		}
		if _, err := db.RecordSensorBatch(ctx, SensorBatch{SensorID: sn.ID, ID: id, Events: events}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
