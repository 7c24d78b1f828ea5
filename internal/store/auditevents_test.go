package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// auditEvent is an event as an API server would send it, with its JSON.
func auditEvent(t testing.TB, id, user, verb, resource, namespace string, code int, at time.Time) AuditEvent {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"auditID": id, "verb": verb, "user": map[string]any{"username": user},
		"objectRef": map[string]any{"resource": resource, "namespace": namespace}, "responseStatus": map[string]any{"code": code}})
	if err != nil {
		t.Fatal(err)
	}
	return AuditEvent{AuditID: id, Cluster: "prod", At: at, Verb: verb, User: user, Groups: []string{"system:authenticated"},
		SourceIP: "10.0.0.1", UserAgent: "kubectl/v1.34", Resource: resource, Namespace: namespace, Name: "x", Code: code, Event: raw}
}

func TestAuditEvents(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		at := time.UnixMilli(1_800_000_000_000).UTC()
		events := []AuditEvent{
			auditEvent(t, "a1", "alice", "get", "secrets", "shop", 200, at),
			auditEvent(t, "a2", "bob", "create", "pods", "shop", 201, at.Add(time.Second)),
			auditEvent(t, "a3", "alice", "delete", "pods", "dev", 403, at.Add(2*time.Second)),
			auditEvent(t, "a3", "alice", "delete", "pods", "dev", 403, at.Add(2*time.Second)), // resent in the same batch
		}
		events[1].Subresource, events[1].APIGroup, events[1].Impersonated = "exec", "apps", "system:admin"
		n, err := db.RecordAuditEvents(ctx, events)
		if err != nil || n != 3 {
			t.Fatalf("RecordAuditEvents = %d, %v; want 3 new", n, err)
		}
		// A retried batch adds only what is new; the same audit id in
		// another cluster is another event.
		other := auditEvent(t, "a1", "alice", "get", "secrets", "shop", 200, at.Add(3*time.Second))
		other.Cluster = "lab"
		noID := auditEvent(t, "", "carol", "list", "nodes", "", 200, at.Add(4*time.Second))
		n, err = db.RecordAuditEvents(ctx, []AuditEvent{events[0], events[1], other, noID, noID})
		if err != nil || n != 3 {
			t.Fatalf("second RecordAuditEvents = %d, %v; want 3 new (lab's a1 and two without an id)", n, err)
		}

		list := func(f AuditEventFilter) []string {
			t.Helper()
			got, _, err := db.AuditEvents(ctx, f, Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.Cluster+"/"+e.AuditID)
			}
			return ids
		}
		for name, tc := range map[string]struct {
			f    AuditEventFilter
			want []string
		}{
			"all":          {AuditEventFilter{}, []string{"prod/", "prod/", "lab/a1", "prod/a3", "prod/a2", "prod/a1"}},
			"cluster":      {AuditEventFilter{Cluster: "lab"}, []string{"lab/a1"}},
			"user":         {AuditEventFilter{User: "alice", Cluster: "prod"}, []string{"prod/a3", "prod/a1"}},
			"verb":         {AuditEventFilter{Verb: "create"}, []string{"prod/a2"}},
			"resource":     {AuditEventFilter{Resource: "pods"}, []string{"prod/a3", "prod/a2"}},
			"namespace":    {AuditEventFilter{Namespace: "dev"}, []string{"prod/a3"}},
			"name":         {AuditEventFilter{Name: "nope"}, nil},
			"source":       {AuditEventFilter{SourceIP: "10.0.0.1", Verb: "get"}, []string{"lab/a1", "prod/a1"}},
			"since":        {AuditEventFilter{Since: at.Add(2 * time.Second), Cluster: "prod"}, []string{"prod/", "prod/", "prod/a3"}},
			"until":        {AuditEventFilter{Until: at.Add(time.Second)}, []string{"prod/a1"}},
			"client error": {AuditEventFilter{MinCode: 400, MaxCode: 499}, []string{"prod/a3"}},
			"success":      {AuditEventFilter{MaxCode: 299, Resource: "pods"}, []string{"prod/a2"}},
		} {
			if diff := cmp.Diff(tc.want, list(tc.f)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}

		got, _, err := db.AuditEvents(ctx, AuditEventFilter{Verb: "create"}, Page{})
		if err != nil || len(got) != 1 {
			t.Fatalf("create events = %v, %v", got, err)
		}
		want := events[1]
		want.ID = got[0].ID
		if diff := cmp.Diff(want, got[0]); diff != "" {
			t.Errorf("stored event (-want +got):\n%s", diff)
		}

		var all []AuditEvent
		cur := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			page, next, err := db.AuditEvents(ctx, AuditEventFilter{}, Page{Limit: 4, Cursor: cur})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cur = next
		}
		if len(all) != 6 || all[0].ID <= all[5].ID {
			t.Errorf("paged through %d events, want 6 newest first", len(all))
		}
	})
}

func TestAuditEventsHostileText(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		at := time.Now()
		hostile := auditEvent(t, "h1\x00", "eve\xff\x00", "get", "secrets\x00", "ns\xfe", 200, at)
		hostile.Groups = []string{"g\x00", "\xff"}
		hostile.UserAgent = strings.Repeat("é", 5000)
		// An event with a NUL escaped in its JSON and invalid UTF-8 raw.
		hostile.Event = json.RawMessage("{\"auditID\":\"h1\",\"note\":\"a\\u0000b\",\"bad\":\"\xff\"}")

		huge := auditEvent(t, "h2", "eve", "create", "configmaps", "ns", 201, at)
		var fields map[string]any
		if err := json.Unmarshal(huge.Event, &fields); err != nil {
			t.Fatal(err)
		}
		fields["requestObject"] = map[string]any{"data": map[string]string{"blob": strings.Repeat("A", 400<<10)}}
		fields["responseObject"] = map[string]any{"data": map[string]string{"blob": strings.Repeat("B", 400<<10)}}
		huge.Event, _ = json.Marshal(fields)

		hugeScalar := auditEvent(t, "h3", "eve", "create", "configmaps", "ns", 201, at)
		hugeScalar.Event = json.RawMessage(`{"auditID":"h3","annotations2":"` + strings.Repeat("\x01", 300<<10) + `"}`)

		notJSON := auditEvent(t, "h4", "eve", "get", "pods", "ns", 200, at)
		notJSON.Event = json.RawMessage("not json \x00 at all")
		empty := auditEvent(t, "h5", "eve", "get", "pods", "ns", 200, at)
		empty.Event = nil

		n, err := db.RecordAuditEvents(ctx, []AuditEvent{hostile, huge, hugeScalar, notJSON, empty})
		if err != nil || n != 5 {
			t.Fatalf("RecordAuditEvents = %d, %v; want 5", n, err)
		}
		got, _, err := db.AuditEvents(ctx, AuditEventFilter{}, Page{})
		if err != nil || len(got) != 5 {
			t.Fatalf("events = %d, %v", len(got), err)
		}
		byID := map[string]AuditEvent{}
		for _, e := range got {
			if !json.Valid(e.Event) {
				t.Errorf("event %s: stored JSON is not valid: %.200s", e.AuditID, e.Event)
			}
			if len(e.Event) > MaxAuditEventSize {
				t.Errorf("event %s: %d bytes stored, more than %d", e.AuditID, len(e.Event), MaxAuditEventSize)
			}
			byID[e.AuditID] = e
		}
		h := byID["h1"]
		if h.User != "eve\uFFFD" || h.Resource != "secrets" || h.Namespace != "ns\uFFFD" || len(h.UserAgent) > 1000 ||
			!cmp.Equal(h.Groups, []string{"g", "\uFFFD"}) {
			t.Errorf("hostile event stored as %+v", h)
		}
		var big map[string]any
		if err := json.Unmarshal(byID["h2"].Event, &big); err != nil {
			t.Fatal(err)
		}
		if _, ok := big["requestObject"]; ok || big["auditID"] != "h2" || big["verb"] != "create" {
			t.Errorf("oversized event kept its objects or lost its fields: %v", big["bulwarkTruncated"])
		}
		if diff := cmp.Diff([]any{"requestObject", "responseObject"}, big["bulwarkTruncated"]); diff != "" {
			t.Errorf("truncation note (-want +got):\n%s", diff)
		}
		if !strings.Contains(string(byID["h3"].Event), `"bulwarkTruncated":"event"`) {
			t.Errorf("oversized event without objects stored as %.200s", byID["h3"].Event)
		}
		if string(byID["h5"].Event) != `{}` {
			t.Errorf("empty event stored as %s", byID["h5"].Event)
		}
	})
}

func TestPruneAuditEventsAndAlerts(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		if _, err := db.RecordAuditEvents(ctx, []AuditEvent{
			auditEvent(t, "old", "a", "get", "pods", "ns", 200, clk.now().Add(-8*24*time.Hour)),
			auditEvent(t, "new", "a", "get", "pods", "ns", 200, clk.now().Add(-6*24*time.Hour)),
		}); err != nil {
			t.Fatal(err)
		}
		old := testAlert("old", clk.now().Add(-100*24*time.Hour))
		stale := testAlert("stale", clk.now().Add(-100*24*time.Hour))
		stale.LastAt = clk.now().Add(-time.Hour)
		saved, err := db.SaveAlerts(ctx, []Alert{old, stale}, []string{"hook"})
		if err != nil {
			t.Fatal(err)
		}
		// One delivery sent long ago, the other still pending.
		ds, err := db.ClaimDeliveries(ctx, "hook", 1, time.Minute)
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim = %v, %v", ds, err)
		}
		if err := db.DeliverySent(ctx, ds[0].ID); err != nil {
			t.Fatal(err)
		}
		clk.add(31 * 24 * time.Hour)
		pruned, err := db.Prune(ctx, DefaultRetention())
		if err != nil {
			t.Fatal(err)
		}
		// The old alert's delivery goes with it; the stale alert's
		// pending one stays.
		if pruned["audit_events"] != 2 || pruned["alerts"] != 1 {
			t.Errorf("pruned = %v", pruned)
		}
		if _, err := db.Alert(ctx, saved[1].ID); err != nil {
			t.Errorf("alert with a recent event pruned: %v", err)
		}
		if left, err := db.PendingDeliveries(ctx); err != nil || left["hook"] != 1 {
			t.Errorf("pending after prune = %v, %v", left, err)
		}
	})
}

func TestAuditEventsPruneKeepsRecent(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		if _, err := db.RecordAuditEvents(ctx, []AuditEvent{
			auditEvent(t, "old", "a", "get", "pods", "ns", 200, clk.now().Add(-8*24*time.Hour)),
			auditEvent(t, "new", "a", "get", "pods", "ns", 200, clk.now().Add(-6*24*time.Hour)),
		}); err != nil {
			t.Fatal(err)
		}
		pruned, err := db.Prune(ctx, Retention{AuditEvents: 7 * 24 * time.Hour})
		if err != nil || pruned["audit_events"] != 1 {
			t.Fatalf("pruned = %v, %v", pruned, err)
		}
		left, _, _ := db.AuditEvents(ctx, AuditEventFilter{}, Page{})
		if len(left) != 1 || left[0].AuditID != "new" {
			t.Errorf("left after prune: %v", left)
		}
	})
}

// BenchmarkRecordAuditEvents stores batches of 1,000 realistic events in
// SQLite, as the audit webhook receives them, and reports events/s.
func BenchmarkRecordAuditEvents(b *testing.B) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), SQLiteFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const batch = 1000
	users := []string{"alice", "bob", "system:serviceaccount:kube-system:replicaset-controller", "system:node:worker-1"}
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	resources := []string{"pods", "secrets", "configmaps", "deployments", "leases", "events"}
	at := time.Now()
	seq := 0
	events := make([]AuditEvent, batch)
	var total int
	var spent time.Duration
	for b.Loop() {
		for i := range events {
			seq++
			e := auditEvent(b, fmt.Sprintf("%08x-0000-4000-8000-%012x", seq, seq), users[seq%len(users)], verbs[seq%len(verbs)],
				resources[seq%len(resources)], fmt.Sprint("ns", seq%20), 200, at.Add(time.Duration(seq)*time.Millisecond))
			// A typical Metadata/Request-level event is 1–2 KiB.
			e.Event = append(e.Event[:len(e.Event)-1], `,"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:controller\""},"requestURI":"/api/v1/namespaces/ns/pods?limit=500&resourceVersion=0","stage":"ResponseComplete","level":"Metadata","pad":"`+strings.Repeat("x", 800)+`"}`...)
			events[i] = e
		}
		start := time.Now()
		n, err := db.RecordAuditEvents(ctx, events)
		spent += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if n != batch {
			b.Fatalf("%d new events, want %d", n, batch)
		}
		total += n
	}
	b.ReportMetric(float64(total)/spent.Seconds(), "events/s")
}
