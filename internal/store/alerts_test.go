package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func testAlert(key string, first time.Time) Alert {
	first = first.Truncate(time.Millisecond).UTC()
	return Alert{Source: SourceAudit, Cluster: "prod", RuleID: "secret-read-by-human", Title: "Secret read by a human", Severity: "high",
		TechniqueID: "T1552.007", TechniqueName: "Container API", Summary: "alice read secret shop/db", Actor: "alice",
		Groups: []string{"dev"}, SourceIP: "10.0.0.1", UserAgent: "kubectl", Verb: "get", Resource: "secrets", Namespace: "shop",
		Name: "db", Events: []string{key + "-e1"}, Count: 1, GroupKey: key, FirstAt: first, LastAt: first}
}

// deliveryKinds lists an alert's deliveries as "output/kind/status".
func deliveryKinds(t *testing.T, db *DB, alertID int64) []string {
	t.Helper()
	ds, err := db.AlertDeliveries(context.Background(), alertID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Output+"/"+d.Kind+"/"+d.Status)
	}
	return out
}

func TestSaveAlerts(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		first := clk.now().Add(-time.Minute)
		a := testAlert("alice/shop/db", first)
		b := testAlert("bob/shop/db", first)
		b.Actor, b.Severity, b.RuleID, b.TechniqueID, b.Namespace = "bob", "critical", "exec-into-pod", "T1609", "kube-system"
		saved, err := db.SaveAlerts(ctx, []Alert{a, b}, []string{"slack", "siem", "slack"})
		if err != nil {
			t.Fatal(err)
		}
		if len(saved) != 2 || saved[0].ID == 0 || saved[1].ID == 0 || !saved[0].CreatedAt.Equal(clk.now()) {
			t.Fatalf("saved = %+v", saved)
		}
		want := a
		want.ID, want.CreatedAt = saved[0].ID, clk.now()
		if diff := cmp.Diff(want, saved[0]); diff != "" {
			t.Errorf("saved alert (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"siem/new/pending", "slack/new/pending"}, deliveryKinds(t, db, saved[0].ID)); diff != "" {
			t.Errorf("deliveries of a new alert (-want +got):\n%s", diff)
		}

		// The same state again changes nothing and notifies no one.
		again, err := db.SaveAlerts(ctx, []Alert{a}, []string{"slack", "siem"})
		if err != nil || len(again) != 1 || again[0].ID != saved[0].ID {
			t.Fatalf("saving again = %+v, %v", again, err)
		}
		if n := len(deliveryKinds(t, db, saved[0].ID)); n != 2 {
			t.Errorf("%d deliveries after an unchanged save, want 2", n)
		}

		// More events of the group update it.
		clk.add(time.Minute)
		grown := a
		grown.Count, grown.LastAt, grown.Events = 3, clk.now(), []string{"e1", "e2", "e3"}
		grown.Title = "ignored on update"
		updated, err := db.SaveAlerts(ctx, []Alert{grown}, []string{"slack", "siem"})
		if err != nil {
			t.Fatal(err)
		}
		got := updated[0]
		if got.ID != saved[0].ID || got.Count != 3 || !got.LastAt.Equal(clk.now()) || len(got.Events) != 3 || got.Title != a.Title {
			t.Errorf("updated alert = %+v", got)
		}
		if diff := cmp.Diff([]string{"siem/new/pending", "slack/new/pending", "siem/update/pending", "slack/update/pending"},
			deliveryKinds(t, db, got.ID)); diff != "" {
			t.Errorf("deliveries after an update (-want +got):\n%s", diff)
		}
		// An older state arriving late does not move it back.
		if _, err := db.SaveAlerts(ctx, []Alert{a}, []string{"slack"}); err != nil {
			t.Fatal(err)
		}
		if now, _ := db.Alert(ctx, got.ID); now.Count != 3 {
			t.Errorf("count after a stale save = %d, want 3", now.Count)
		}
		if n := len(deliveryKinds(t, db, got.ID)); n != 4 {
			t.Errorf("%d deliveries after a stale save, want 4", n)
		}
		// A group that starts again later is a new alert.
		later := testAlert("alice/shop/db", clk.now())
		if s, err := db.SaveAlerts(ctx, []Alert{later}, nil); err != nil || s[0].ID == got.ID {
			t.Errorf("a later group = %+v, %v", s, err)
		}

		if _, err := db.SaveAlerts(ctx, []Alert{{RuleID: "r"}}, nil); err == nil {
			t.Error("an alert without a group key was saved")
		}
		if _, err := db.Alert(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing alert: err = %v", err)
		}

		list := func(f AlertFilter) []string {
			t.Helper()
			as, _, err := db.Alerts(ctx, f, Page{})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, a := range as {
				keys = append(keys, a.Actor+"@"+a.LastAt.Sub(first).String())
			}
			return keys
		}
		for name, tc := range map[string]struct {
			f    AlertFilter
			want []string
		}{
			"all":          {AlertFilter{}, []string{"alice@2m0s", "bob@0s", "alice@2m0s"}},
			"rule":         {AlertFilter{RuleID: "exec-into-pod"}, []string{"bob@0s"}},
			"severity":     {AlertFilter{Severity: "high"}, []string{"alice@2m0s", "alice@2m0s"}},
			"min severity": {AlertFilter{MinSeverity: "CRITICAL"}, []string{"bob@0s"}},
			"actor":        {AlertFilter{Actor: "bob"}, []string{"bob@0s"}},
			"namespace":    {AlertFilter{Namespace: "shop", Cluster: "prod"}, []string{"alice@2m0s", "alice@2m0s"}},
			"technique":    {AlertFilter{TechniqueID: "T1609"}, []string{"bob@0s"}},
			"since":        {AlertFilter{Since: clk.now()}, []string{"alice@2m0s", "alice@2m0s"}},
			"cluster":      {AlertFilter{Cluster: "lab"}, nil},
		} {
			if diff := cmp.Diff(tc.want, list(tc.f)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
		if _, _, err := db.Alerts(ctx, AlertFilter{MinSeverity: "spicy"}, Page{}); err == nil {
			t.Error("unknown minimum severity accepted")
		}
		page, next, err := db.Alerts(ctx, AlertFilter{}, Page{Limit: 2})
		if err != nil || len(page) != 2 || next == "" {
			t.Fatalf("first page: %d, %q, %v", len(page), next, err)
		}
		page, next, err = db.Alerts(ctx, AlertFilter{}, Page{Limit: 2, Cursor: next})
		if err != nil || len(page) != 1 || next != "" || page[0].ID != saved[0].ID {
			t.Fatalf("second page: %+v, %q, %v", page, next, err)
		}
	})
}

func TestSaveAlertsHostileText(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		a := testAlert("k\x00\xff", time.Now())
		a.Actor, a.Summary, a.Groups, a.Events = "system:serviceaccount:\x00evil\xfe", string(make([]byte, 10000)), []string{"\x00"}, make([]string, 2000)
		saved, err := db.SaveAlerts(ctx, []Alert{a}, []string{"o"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Alert(ctx, saved[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.GroupKey != "k\uFFFD" || got.Actor != "system:serviceaccount:evil\uFFFD" || got.Summary != "" || len(got.Events) != maxAlertEvents {
			t.Errorf("stored hostile alert: key %q, actor %q, %d summary bytes, %d events", got.GroupKey, got.Actor, len(got.Summary), len(got.Events))
		}
	})
}

func TestDeliveries(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		saved, err := db.SaveAlerts(ctx, []Alert{testAlert("a", clk.now()), testAlert("b", clk.now())}, []string{"hook", "syslog"})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := db.PendingDeliveries(ctx); err != nil || !cmp.Equal(p, map[string]int{"hook": 2, "syslog": 2}) {
			t.Fatalf("pending = %v, %v", p, err)
		}
		got, err := db.ClaimDeliveries(ctx, "hook", 10, time.Minute)
		if err != nil || len(got) != 2 {
			t.Fatalf("claim = %+v, %v", got, err)
		}
		want := []Delivery{
			{AlertID: saved[0].ID, Output: "hook", Kind: DeliveryNew, Attempts: 1, NextAt: clk.now().Add(time.Minute), Status: DeliveryPending},
			{AlertID: saved[1].ID, Output: "hook", Kind: DeliveryNew, Attempts: 1, NextAt: clk.now().Add(time.Minute), Status: DeliveryPending},
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Delivery{}, "ID")); diff != "" {
			t.Errorf("claimed (-want +got):\n%s", diff)
		}
		if again, err := db.ClaimDeliveries(ctx, "hook", 10, time.Minute); err != nil || len(again) != 0 {
			t.Errorf("claim while leased = %+v, %v", again, err)
		}
		if err := db.DeliverySent(ctx, got[0].ID); err != nil {
			t.Fatal(err)
		}
		// The sender of the second died; after its lease another takes it.
		clk.add(time.Minute)
		retaken, err := db.ClaimDeliveries(ctx, "hook", 10, time.Minute)
		if err != nil || len(retaken) != 1 || retaken[0].ID != got[1].ID || retaken[0].Attempts != 2 {
			t.Fatalf("claim after lease = %+v, %v", retaken, err)
		}
		if err := db.DeliveryFailed(ctx, got[1].ID, errors.New("503 Service Unavailable"), clk.now().Add(time.Hour), false); err != nil {
			t.Fatal(err)
		}
		clk.add(59 * time.Minute)
		if early, _ := db.ClaimDeliveries(ctx, "hook", 10, time.Minute); len(early) != 0 {
			t.Errorf("claimed before its retry time: %+v", early)
		}
		clk.add(time.Minute)
		retry, err := db.ClaimDeliveries(ctx, "hook", 10, time.Minute)
		if err != nil || len(retry) != 1 || retry[0].Error != "503 Service Unavailable" || retry[0].Attempts != 3 {
			t.Fatalf("retry claim = %+v, %v", retry, err)
		}
		if err := db.DeliveryFailed(ctx, retry[0].ID, errors.New("400 Bad Request"), time.Time{}, true); err != nil {
			t.Fatal(err)
		}
		clk.add(24 * time.Hour)
		if after, _ := db.ClaimDeliveries(ctx, "hook", 10, time.Minute); len(after) != 0 {
			t.Errorf("claimed after giving up: %+v", after)
		}
		if err := db.DeliveryFailed(ctx, retry[0].ID, errors.New("late"), clk.now(), false); !errors.Is(err, ErrNotFound) {
			t.Errorf("failing a delivery given up: err = %v", err)
		}
		ds, err := db.AlertDeliveries(ctx, saved[1].ID)
		if err != nil || len(ds) != 2 || ds[0].Status != DeliveryGaveUp || ds[0].Error != "400 Bad Request" {
			t.Errorf("deliveries of the refused alert = %+v, %v", ds, err)
		}
		if p, _ := db.PendingDeliveries(ctx); !cmp.Equal(p, map[string]int{"syslog": 2}) {
			t.Errorf("pending = %v", p)
		}
		if err := db.DeliverySent(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Errorf("sending a missing delivery: err = %v", err)
		}
		// Sent and given-up deliveries go with scan retention; pending
		// ones stay.
		clk.add(31 * 24 * time.Hour)
		pruned, err := db.Prune(ctx, Retention{Scans: 30 * 24 * time.Hour})
		if err != nil || pruned["alert_deliveries"] != 2 {
			t.Errorf("pruned = %v, %v", pruned, err)
		}
		if p, _ := db.PendingDeliveries(ctx); p["syslog"] != 2 {
			t.Errorf("pending after prune = %v", p)
		}
	})
}

func TestClaimDeliveriesIsExclusive(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		const alerts = 150
		var as []Alert
		for i := 0; i < alerts; i++ {
			as = append(as, testAlert(fmt.Sprint("k", i), time.Now().Add(-time.Hour)))
		}
		if _, err := db.SaveAlerts(ctx, as, []string{"hook", "other"}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var claimed []int64
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					ds, err := db.ClaimDeliveries(ctx, "hook", 7, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					for _, d := range ds {
						if d.Output != "hook" {
							t.Errorf("claimed a delivery to %s", d.Output)
						}
						mu.Lock()
						claimed = append(claimed, d.ID)
						mu.Unlock()
						if err := db.DeliverySent(ctx, d.ID); err != nil {
							t.Error(err)
						}
					}
				}
			}()
		}
		wg.Wait()
		sort.Slice(claimed, func(i, j int) bool { return claimed[i] < claimed[j] })
		for i := 1; i < len(claimed); i++ {
			if claimed[i] == claimed[i-1] {
				t.Fatalf("delivery %d claimed twice", claimed[i])
			}
		}
		if len(claimed) != alerts {
			t.Errorf("%d deliveries claimed, want %d", len(claimed), alerts)
		}
		if p, _ := db.PendingDeliveries(ctx); !cmp.Equal(p, map[string]int{"other": alerts}) {
			t.Errorf("pending = %v", p)
		}
	})
}
