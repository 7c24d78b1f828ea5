package api

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// seedAlerts stores three audit events and two alerts, with a delivery.
func seedAlerts(t *testing.T, f *fixture) (alertIDs []int64) {
	t.Helper()
	ctx := context.Background()
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	event := func(id, user, verb, resource string, code int) store.AuditEvent {
		return store.AuditEvent{AuditID: id, Cluster: "prod", At: at, Verb: verb, User: user, Groups: []string{"system:authenticated"},
			SourceIP: "10.0.0.7", UserAgent: "kubectl/v1.34.0", Resource: resource, Namespace: "shop", Name: "web", Code: code,
			Event: json.RawMessage(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"` + id + `"}`)}
	}
	if _, err := f.db.RecordAuditEvents(ctx, []store.AuditEvent{
		event("a1", "mallory", "create", "pods", 201), event("a2", "mallory", "get", "secrets", 403), event("a3", "alice", "list", "pods", 200),
	}); err != nil {
		t.Fatal(err)
	}
	alerts, err := f.db.SaveAlerts(ctx, []store.Alert{
		{Cluster: "prod", RuleID: "pod-exec", Title: "Exec into a pod", Severity: "HIGH", TechniqueID: "T1609", TechniqueName: "Container Administration Command",
			Summary: "mallory exec'd into shop/web", Actor: "mallory", SourceIP: "10.0.0.7", Verb: "create", Resource: "pods", Subresource: "exec",
			Namespace: "shop", Name: "web", Events: []string{"a1"}, Count: 1, GroupKey: "k1", FirstAt: at, LastAt: at},
		{Cluster: "lab", RuleID: "cluster-admin-binding", Title: "Binding to cluster-admin", Severity: "CRITICAL", TechniqueID: "T1098.006",
			TechniqueName: "Additional Container Cluster Roles", Actor: "eve", Resource: "clusterrolebindings", Name: "pwn", Events: []string{"b1"},
			Count: 3, GroupKey: "k2", FirstAt: at, LastAt: at.Add(time.Minute)},
	}, []string{"siem"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		alertIDs = append(alertIDs, a.ID)
	}
	return alertIDs
}

func TestAlertsAndAuditEvents(t *testing.T) {
	f := newFixture(t)
	ids := seedAlerts(t, f)
	analyst, viewer := f.token("hunter", store.RoleAnalyst), f.token("watcher", store.RoleViewer)

	list := func(token, path string) (int, []string) {
		t.Helper()
		code, body := f.call(token, "GET", path, nil)
		var page struct {
			Items []struct {
				AuditID string `json:"auditID"`
				Rule    string `json:"rule"`
			} `json:"items"`
		}
		if code == 200 {
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
		}
		var out []string
		for _, it := range page.Items {
			out = append(out, it.AuditID+it.Rule)
		}
		return code, out
	}
	for _, tc := range []struct {
		token, path string
		code        int
		want        []string
	}{
		{analyst, "/api/v1/k8s-audit/events", 200, []string{"a3", "a2", "a1"}},
		{analyst, "/api/v1/k8s-audit/events?user=mallory&verb=get", 200, []string{"a2"}},
		{analyst, "/api/v1/k8s-audit/events?minCode=400", 200, []string{"a2"}},
		{analyst, "/api/v1/k8s-audit/events?since=2000-01-01T00:00:00Z&resource=pods", 200, []string{"a3", "a1"}},
		{analyst, "/api/v1/k8s-audit/events?since=yesterday", 400, nil},
		{analyst, "/api/v1/k8s-audit/events?minCode=-1", 400, nil},
		{viewer, "/api/v1/k8s-audit/events", 403, nil},
		{viewer, "/api/v1/alerts", 200, []string{"cluster-admin-binding", "pod-exec"}},
		{viewer, "/api/v1/alerts?minSeverity=CRITICAL", 200, []string{"cluster-admin-binding"}},
		{viewer, "/api/v1/alerts?technique=T1609&cluster=prod", 200, []string{"pod-exec"}},
		{viewer, "/api/v1/alerts?actor=nobody", 200, nil},
		{viewer, "/api/v1/alerts?severity=BAD", 400, nil},
	} {
		code, got := list(tc.token, tc.path)
		if code != tc.code {
			t.Errorf("GET %s = %d, want %d", tc.path, code, tc.code)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", tc.path, diff)
		}
	}
	code, body := f.call(viewer, "GET", fmt.Sprintf("/api/v1/alerts/%d", ids[0]), nil)
	var one struct {
		Rule        string `json:"rule"`
		Remediation string `json:"remediation"`
		Deliveries  []struct {
			Output, Status string
		} `json:"deliveries"`
	}
	if code != 200 || json.Unmarshal(body, &one) != nil || one.Rule != "pod-exec" || len(one.Deliveries) != 1 || one.Deliveries[0].Output != "siem" {
		t.Errorf("GET alert: %d %s", code, body)
	}
	if one.Remediation == "" {
		t.Error("the alert of a loaded rule has no remediation")
	}
	if code, _ := f.call(viewer, "GET", "/api/v1/alerts/999999", nil); code != 404 {
		t.Errorf("missing alert: %d", code)
	}
	code, body = f.call(viewer, "GET", "/api/v1/detection/rules", nil)
	if code != 200 || !json.Valid(body) || len(body) < 1000 {
		t.Errorf("detection rules: %d %.200s", code, body)
	}
}

func TestIngestAudit(t *testing.T) {
	f := newFixture(t)
	ingest, viewer := f.token("kube-audit", store.RoleIngest), f.token("watcher", store.RoleViewer)
	for _, tc := range []struct {
		token, path string
		code        int
	}{
		{ingest, "/api/v1/ingest/k8s-audit/prod", 200},
		{f.admin, "/api/v1/ingest/k8s-audit/lab", 200},
		{viewer, "/api/v1/ingest/k8s-audit/prod", 403},
		{"", "/api/v1/ingest/k8s-audit/prod", 401},
		{ingest, "/api/v1/ingest/k8s-audit/Not_A_Label", 400},
	} {
		if code, body := f.call(tc.token, "POST", tc.path, `{}`); code != tc.code {
			t.Errorf("POST %s = %d %s, want %d", tc.path, code, body, tc.code)
		}
	}
	// An ingest token reads nothing.
	for _, path := range []string{"/api/v1/alerts", "/api/v1/images", "/api/v1/k8s-audit/events", "/metrics"} {
		if code, _ := f.call(ingest, "GET", path, nil); code != 403 {
			t.Errorf("GET %s with an ingest token = %d, want 403", path, code)
		}
	}
	f.sched.mu.Lock()
	defer f.sched.mu.Unlock()
	if diff := cmp.Diff([]string{"prod", "lab"}, f.sched.ingested); diff != "" {
		t.Errorf("ingested clusters (-want +got):\n%s", diff)
	}
}
