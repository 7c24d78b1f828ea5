package controlplane_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/bulwarkhq/bulwark/internal/auditlog"
	"github.com/bulwarkhq/bulwark/internal/controlplane"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// unitCluster is the cluster name the unit tests' events come from.
const unitCluster = "unit"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// openStore opens an empty SQLite store for one test.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "bulwark.db"), nil)
	if err != nil {
		t.Fatalf("opening SQLite store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runPipeline starts a pipeline with the built-in rules; the returned stop
// ends Run, which saves the grouped alerts' new counts before it returns.
func runPipeline(t *testing.T, db *store.DB, flushEvery time.Duration) (p *controlplane.Pipeline, stop func()) {
	t.Helper()
	p, err := controlplane.New(controlplane.Options{Store: db, Rules: detect.Builtin(), FlushEvery: flushEvery})
	if err != nil {
		t.Fatalf("creating pipeline: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Pipeline.Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return p, stop
}

// event is an audit event of user acting on ns/name of resource.
func event(id string, stage auditv1.Stage, at time.Time, verb, resource, subresource, ns, name string, code int32) auditlog.Event {
	return auditv1.Event{
		TypeMeta:                 metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:                    auditv1.LevelRequestResponse,
		AuditID:                  types.UID(id),
		Stage:                    stage,
		RequestURI:               "/api/v1/namespaces/" + ns + "/" + resource + "/" + name,
		Verb:                     verb,
		User:                     authnv1.UserInfo{Username: "mallory", Groups: []string{"system:authenticated"}},
		SourceIPs:                []string{"10.1.2.3"},
		UserAgent:                "curl/8.5.0",
		ObjectRef:                &auditv1.ObjectReference{Resource: resource, Subresource: subresource, Namespace: ns, Name: name, APIVersion: "v1"},
		ResponseStatus:           &metav1.Status{Code: code},
		RequestReceivedTimestamp: metav1.NewMicroTime(at),
		StageTimestamp:           metav1.NewMicroTime(at),
	}
}

// privilegedPod is the ResponseComplete of a privileged pod's creation.
func privilegedPod(id string, at time.Time, name string) auditlog.Event {
	e := event(id, auditv1.StageResponseComplete, at, "create", "pods", "", "app", name, 201)
	e.RequestURI = "/api/v1/namespaces/app/pods"
	e.RequestObject = &runtime.Unknown{Raw: []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"` + name + `"},` +
		`"spec":{"containers":[{"name":"c","image":"busybox","securityContext":{"privileged":true}}]}}`)}
	return e
}

// execStages are the ResponseStarted and ResponseComplete events of one
// exec session: the same audit id twice.
func execStages(id string, at time.Time) []auditlog.Event {
	started := event(id, auditv1.StageResponseStarted, at, "create", "pods", "exec", "app", "web", 101)
	started.RequestURI = "/api/v1/namespaces/app/pods/web/exec?command=sh&stdin=true"
	complete := started
	complete.Stage = auditv1.StageResponseComplete
	complete.StageTimestamp = metav1.NewMicroTime(at.Add(time.Second))
	return []auditlog.Event{started, complete}
}

// alertKey is what the unit tests compare of an alert.
type alertKey struct {
	Rule, Name string
	Count      int
}

func storedAlerts(t *testing.T, db *store.DB) []alertKey {
	t.Helper()
	alerts, _, err := db.Alerts(context.Background(), store.AlertFilter{Cluster: unitCluster}, store.Page{Limit: store.MaxPageSize})
	if err != nil {
		t.Fatalf("listing alerts: %v", err)
	}
	var out []alertKey
	for _, a := range alerts {
		out = append(out, alertKey{a.RuleID, a.Name, a.Count})
	}
	return out
}

func storedAuditIDs(t *testing.T, db *store.DB) []string {
	t.Helper()
	events, _, err := db.AuditEvents(context.Background(), store.AuditEventFilter{Cluster: unitCluster}, store.Page{Limit: store.MaxPageSize})
	if err != nil {
		t.Fatalf("listing audit events: %v", err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.AuditID)
	}
	return out
}

// kube-apiserver sends a batch again when its answer was lost: the events
// are stored once and judged once, so alerts do not double.
func TestSinkDuplicateBatch(t *testing.T) {
	db := openStore(t)
	p, stop := runPipeline(t, db, time.Hour)
	sink := p.Sink(unitCluster)
	batch := []auditlog.Event{privilegedPod("a1", t0, "one"), privilegedPod("a2", t0.Add(time.Second), "two")}
	ctx := context.Background()
	for i := range 2 {
		if err := sink(ctx, batch); err != nil {
			t.Fatalf("sink, delivery %d: %v", i+1, err)
		}
	}
	stop() // saves the groups' counts

	if diff := cmp.Diff([]string{"a2", "a1"}, storedAuditIDs(t, db)); diff != "" {
		t.Errorf("stored audit ids (-want +got):\n%s", diff)
	}
	want := []alertKey{{"privileged-container", "two", 1}, {"privileged-container", "one", 1}}
	if diff := cmp.Diff(want, storedAlerts(t, db)); diff != "" {
		t.Errorf("alerts after the same batch twice (-want +got):\n%s", diff)
	}
}

// A file source restarted from its last committed offset reads a prefix
// of what it sent before, followed by new events: only the new ones are
// judged.
func TestSinkReplayedPrefix(t *testing.T) {
	db := openStore(t)
	p, stop := runPipeline(t, db, time.Hour)
	sink := p.Sink(unitCluster)
	ctx := context.Background()
	if err := sink(ctx, []auditlog.Event{privilegedPod("b1", t0, "one")}); err != nil {
		t.Fatalf("sink, first batch: %v", err)
	}
	if err := sink(ctx, []auditlog.Event{privilegedPod("b1", t0, "one"), privilegedPod("b2", t0.Add(time.Second), "two")}); err != nil {
		t.Fatalf("sink, replayed batch: %v", err)
	}
	stop()
	want := []alertKey{{"privileged-container", "two", 1}, {"privileged-container", "one", 1}}
	if diff := cmp.Diff(want, storedAlerts(t, db)); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

// kube-apiserver logs a streaming request (exec, watch) at ResponseStarted
// and again, with the same audit id, at ResponseComplete. The store keeps
// one event per audit id; the second stage is not a resent event, and the
// other events of its batch must still be judged.
func TestSinkJudgesEventsBesideLaterStages(t *testing.T) {
	db := openStore(t)
	p, stop := runPipeline(t, db, time.Hour)
	sink := p.Sink(unitCluster)
	ctx := context.Background()

	// Both stages in one batch, after an event of another request.
	batch := append([]auditlog.Event{privilegedPod("c1", t0, "one")}, execStages("x1", t0.Add(time.Second))...)
	if err := sink(ctx, batch); err != nil {
		t.Fatalf("sink, first batch: %v", err)
	}
	// The second stage in a later batch, after an event of another request.
	started, complete := execStages("x2", t0.Add(2*time.Second))[0], execStages("x2", t0.Add(2*time.Second))[1]
	if err := sink(ctx, []auditlog.Event{started}); err != nil {
		t.Fatalf("sink, second batch: %v", err)
	}
	if err := sink(ctx, []auditlog.Event{privilegedPod("c2", t0.Add(4*time.Second), "two"), complete}); err != nil {
		t.Fatalf("sink, third batch: %v", err)
	}
	stop()

	if diff := cmp.Diff([]string{"c2", "x2", "x1", "c1"}, storedAuditIDs(t, db)); diff != "" {
		t.Errorf("stored audit ids (-want +got):\n%s", diff)
	}
	// One exec alert for both sessions (one group: same actor and pod), and
	// each privileged pod judged.
	want := []alertKey{{"privileged-container", "two", 1}, {"pod-exec", "web", 2}, {"privileged-container", "one", 1}}
	if diff := cmp.Diff(want, storedAlerts(t, db)); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}
