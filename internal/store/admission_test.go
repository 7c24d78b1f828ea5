package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAdmissionDecisions(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		at := time.UnixMilli(1_700_000_000_000).UTC()
		deny := AdmissionDecision{At: at, Cluster: "prod", UID: "u1", Operation: "CREATE", Kind: "Pod", Namespace: "shop", Name: "web",
			User: "alice", Action: AdmissionDeny, Rules: []string{"deny-critical-fixable"}, Message: "denied: CVE-2025-4802",
			Warnings: []string{}, Images: []AdmissionImage{{Container: "app", ContainerKind: "container", Reference: "r/app:1",
				Digest: "sha256:aa", Scanned: true, Rules: []string{"deny-critical-fixable"}, Findings: []string{"CVE-2025-4802"}}},
			Duration: 1500 * time.Microsecond}
		glass := AdmissionDecision{At: at.Add(time.Second), Cluster: "prod", UID: "u2", Operation: "CREATE", Kind: "Deployment",
			Namespace: "shop", Name: "api", Allowed: true, Action: AdmissionWarn, Rules: []string{"warn-high-fixable"},
			Warnings: []string{"break-glass used"}, BreakGlass: true, BreakGlassReason: "incident 42", Images: []AdmissionImage{}}
		other := AdmissionDecision{At: at.Add(2 * time.Second), Cluster: "lab", UID: "u3\x00" + strings.Repeat("é", 300), Namespace: "dev",
			Allowed: true, Action: AdmissionAllow, Rules: []string{}, Warnings: []string{}, Images: []AdmissionImage{}}
		if err := db.RecordDecisions(ctx, []AdmissionDecision{deny, glass, other}); err != nil {
			t.Fatal(err)
		}
		list := func(f AdmissionFilter) []string {
			t.Helper()
			ds, _, err := db.AdmissionDecisions(ctx, f, Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var uids []string
			for _, d := range ds {
				uids = append(uids, d.UID[:2])
			}
			return uids
		}
		for name, tc := range map[string]struct {
			f    AdmissionFilter
			want []string
		}{
			"all":         {AdmissionFilter{}, []string{"u3", "u2", "u1"}},
			"cluster":     {AdmissionFilter{Cluster: "prod"}, []string{"u2", "u1"}},
			"namespace":   {AdmissionFilter{Namespace: "dev"}, []string{"u3"}},
			"denied":      {AdmissionFilter{Denied: true}, []string{"u1"}},
			"break glass": {AdmissionFilter{BreakGlass: true}, []string{"u2"}},
			"rule":        {AdmissionFilter{Rule: "warn-high-fixable"}, []string{"u2"}},
			"action":      {AdmissionFilter{Action: AdmissionDeny}, []string{"u1"}},
		} {
			if diff := cmp.Diff(tc.want, list(tc.f)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
		ds, _, err := db.AdmissionDecisions(ctx, AdmissionFilter{Denied: true}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		got := ds[0]
		got.ID = 0
		if diff := cmp.Diff(deny, got); diff != "" {
			t.Errorf("stored decision (-want +got):\n%s", diff)
		}
		// Paging.
		page, next, err := db.AdmissionDecisions(ctx, AdmissionFilter{}, Page{Limit: 2})
		if err != nil || len(page) != 2 || next == "" {
			t.Fatalf("first page: %d items, next %q, err %v", len(page), next, err)
		}
		page, next, err = db.AdmissionDecisions(ctx, AdmissionFilter{}, Page{Limit: 2, Cursor: next})
		if err != nil || len(page) != 1 || next != "" || page[0].UID != "u1" {
			t.Fatalf("second page: %+v, next %q, err %v", page, next, err)
		}
	})
}

func TestImageByTag(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		old, err := db.SeeImage(ctx, "sha256:old", ImageRef{Host: "r.example", Repository: "team/app", Tag: "1"}, time.UnixMilli(1000))
		if err != nil {
			t.Fatal(err)
		}
		cur, err := db.SeeImage(ctx, "sha256:new", ImageRef{Host: "r.example", Repository: "team/app", Tag: "1"}, time.UnixMilli(2000))
		if err != nil {
			t.Fatal(err)
		}
		im, err := db.ImageByTag(ctx, "r.example", "team/app", "1")
		if err != nil || im.ID != cur || im.ID == old {
			t.Fatalf("ImageByTag = %+v, %v; want image %d", im, err, cur)
		}
		if _, err := db.ImageByTag(ctx, "r.example", "team/app", "2"); err == nil || !strings.Contains(err.Error(), "r.example") {
			t.Errorf("missing tag: err = %v", err)
		}
	})
}
