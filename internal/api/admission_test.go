package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// seedDecisions stores a refusal, a break-glass admission and a plain one.
func seedDecisions(t *testing.T, f *fixture) {
	t.Helper()
	at := time.Now().Add(-time.Minute)
	err := f.db.RecordDecisions(context.Background(), []store.AdmissionDecision{
		{At: at, Cluster: "prod", UID: "u1", Operation: "CREATE", Kind: "Pod", Namespace: "shop", Name: "web", User: "alice",
			Action: store.AdmissionDeny, Rules: []string{"deny-critical-fixable"}, Message: "denied",
			Images: []store.AdmissionImage{{Container: "app", ContainerKind: "container", Reference: "r/app:1", Digest: "sha256:aa",
				Scanned: true, Rules: []string{"deny-critical-fixable"}, Findings: []string{"CVE-2025-4802 (CRITICAL)"}}},
			Duration: 800 * time.Microsecond},
		{At: at.Add(time.Second), Cluster: "prod", UID: "u2", Operation: "CREATE", Kind: "Deployment", Namespace: "shop", Name: "api",
			Allowed: true, Action: store.AdmissionWarn, Rules: []string{"deny-critical-fixable"}, BreakGlass: true, BreakGlassReason: "incident 42",
			Warnings: []string{"break-glass recorded"}},
		{At: at.Add(2 * time.Second), Cluster: "lab", UID: "u3", Operation: "UPDATE", Kind: "Pod", Namespace: "dev", Name: "x",
			Allowed: true, Action: store.AdmissionAllow},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAdmissionDecisions(t *testing.T) {
	f := newFixture(t)
	seedDecisions(t, f)
	for _, tc := range []struct {
		query string
		code  int
		want  []string
	}{
		{"", 200, []string{"u3", "u2", "u1"}},
		{"?cluster=prod", 200, []string{"u2", "u1"}},
		{"?denied=true", 200, []string{"u1"}},
		{"?breakGlass=true", 200, []string{"u2"}},
		{"?action=allow", 200, []string{"u3"}},
		{"?rule=deny-critical-fixable&namespace=shop", 200, []string{"u2", "u1"}},
		{"?action=block", 400, nil},
		{"?denied=maybe", 400, nil},
		{"?limit=0", 400, nil},
	} {
		code, body := f.call(f.admin, "GET", "/api/v1/admission/decisions"+tc.query, nil)
		if code != tc.code {
			t.Errorf("%s: %d %s", tc.query, code, body)
			continue
		}
		if tc.code != 200 {
			continue
		}
		var page struct {
			Items []struct {
				UID string `json:"uid"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range page.Items {
			got = append(got, it.UID)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.query, diff)
		}
	}
	if code, _ := f.call("", "GET", "/api/v1/admission/decisions", nil); code != 401 {
		t.Errorf("without a token: %d", code)
	}
}
