package admission

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func newTestReviewer(t testing.TB, p Policy, facts *fakeFacts, record func(Decision)) *Reviewer {
	t.Helper()
	r, err := NewReviewer(Options{Policy: p, Facts: facts, NamespaceLabels: namespaceLabels, Record: record,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("NewReviewer: %v", err)
	}
	return r
}

// outcome is the part of a Decision the table compares exactly.
type outcome struct {
	Allowed    bool
	Action     string
	Rules      []string
	BreakGlass bool
	DryRun     bool
}

func withPolicy(mod func(*Policy)) Policy {
	p := DefaultPolicy()
	mod(&p)
	return p
}

func TestReview(t *testing.T) {
	pod := func(ns string, images ...string) object {
		return object{kind: "Pod", namespace: ns, name: "web", containers: containers(images...)}
	}
	allRules := []string{"deny-critical-fixable", "warn-high-fixable", "audit-vulnerable"}
	future := testNow.Add(30 * 24 * time.Hour)
	tests := []struct {
		name         string
		policy       Policy
		scanDelay    time.Duration
		req          func(t *testing.T) *admissionv1.AdmissionRequest
		want         outcome
		wantMessage  []string // substrings of Decision.Message
		wantWarnings []string // each a substring of some warning
		noWarnings   bool
	}{
		{
			name: "deny critical fixable in enforced namespace",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want: outcome{Action: ActionDeny, Rules: allRules},
			wantMessage: []string{"Bulwark denied Pod prod/web", "rule deny-critical-fixable", "image " + imgVuln, "container c0",
				"CVE-2025-4802 (CRITICAL, fixed in 2.36-9+deb12u11) in libc6", "bulwark.io/break-glass=<reason>"},
			wantWarnings: []string{"warn-high-fixable: " + imgVuln + " has CVE-2025-4802, CVE-2024-0001"},
		},
		{
			name: "clean image admitted",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgClean), nil)
			},
			want:       outcome{Allowed: true, Action: ActionAllow},
			noWarnings: true,
		},
		{
			name: "warn outside enforced namespaces",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("dev", imgVuln), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn, Rules: []string{"warn-high-fixable", "audit-vulnerable"}},
			wantWarnings: []string{"bulwark: warn-high-fixable"},
		},
		{
			name: "audit is allowed without warnings",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgLow), nil)
			},
			want:       outcome{Allowed: true, Action: ActionAudit, Rules: []string{"audit-vulnerable"}},
			noWarnings: true,
		},
		{
			name: "many findings are counted",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgMany), nil)
			},
			want:        outcome{Action: ActionDeny, Rules: []string{"deny-critical-fixable", "warn-high-fixable"}},
			wantMessage: []string{"CVE-2025-1009 (CRITICAL, fixed in 2) in pkg and 5 more"},
		},
		{
			name: "namespace exemption",
			policy: withPolicy(func(p *Policy) {
				p.Exemptions = []Exemption{{Namespace: "prod", Reason: "migration", Expires: future}}
			}),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want:       outcome{Allowed: true, Action: ActionAllow},
			noWarnings: true,
		},
		{
			name: "image glob exemption crosses slashes",
			policy: withPolicy(func(p *Policy) {
				p.Exemptions = []Exemption{{Image: "registry.example/*/vuln:*", Reason: "vendor image", Expires: future}}
			}),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want: outcome{Allowed: true, Action: ActionAllow},
		},
		{
			name: "vulnerability exemption removes it from the rules",
			policy: withPolicy(func(p *Policy) {
				p.Exemptions = []Exemption{{Vulnerability: "cve-2025-4802", Reason: "not reachable", Expires: future}}
			}),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn, Rules: []string{"warn-high-fixable", "audit-vulnerable"}},
			wantWarnings: []string{"has CVE-2024-0001"},
		},
		{
			name: "vulnerability exemption by alias, other namespace does not count",
			policy: withPolicy(func(p *Policy) {
				p.Exemptions = []Exemption{
					{Vulnerability: "DSA-5999-1", Image: imgVuln, Reason: "not reachable", Expires: future},
					{Namespace: "dev", Reason: "sandbox", Expires: future},
				}
			}),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want: outcome{Allowed: true, Action: ActionWarn, Rules: []string{"warn-high-fixable", "audit-vulnerable"}},
		},
		{
			name: "expired exemption is ignored",
			policy: withPolicy(func(p *Policy) {
				p.Exemptions = []Exemption{{Namespace: "prod", Reason: "migration", Expires: testNow.Add(-time.Hour)}}
			}),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want: outcome{Action: ActionDeny, Rules: allRules},
		},
		{
			name: "break-glass on the workload's metadata",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, object{kind: "Deployment", namespace: "prod", name: "web",
					annotations: map[string]string{"bulwark.io/break-glass": "INC-42 outage"}, containers: containers(imgVuln)}, nil)
			},
			want:         outcome{Allowed: true, Action: ActionDeny, Rules: allRules, BreakGlass: true},
			wantMessage:  []string{"break-glass, not enforced: Bulwark denied Deployment prod/web"},
			wantWarnings: []string{"break-glass used and recorded (INC-42 outage)", "would have been denied by rule deny-critical-fixable"},
		},
		{
			name: "break-glass on the pod template",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, object{kind: "StatefulSet", namespace: "prod", name: "db",
					templateAnnotations: map[string]string{"bulwark.io/break-glass": "INC-43"}, containers: containers(imgVuln)}, nil)
			},
			want:         outcome{Allowed: true, Action: ActionDeny, Rules: allRules, BreakGlass: true},
			wantWarnings: []string{"break-glass used and recorded (INC-43)"},
		},
		{
			name:   "dry run never denies",
			policy: withPolicy(func(p *Policy) { p.DryRun = true }),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want: outcome{Allowed: true, Action: ActionDeny, Rules: allRules, DryRun: true},
			wantWarnings: []string{
				"bulwark: dry run: would have been denied by rule deny-critical-fixable: " + imgVuln + " has CVE-2025-4802",
			},
		},
		{
			name: "unscanned allow-warn",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgUnscanned), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn},
			wantWarnings: []string{"bulwark: " + imgUnscanned + " is not scanned yet; allowed"},
		},
		{
			name: "unresolved digest counts as unscanned",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgNoDigest), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn},
			wantWarnings: []string{imgNoDigest + " is not scanned yet"},
		},
		{
			name:   "unscanned deny",
			policy: withPolicy(func(p *Policy) { p.Unscanned = UnscannedDeny }),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("dev", imgUnscanned), nil)
			},
			want:        outcome{Action: ActionDeny, Rules: []string{"unscanned"}},
			wantMessage: []string{"rule unscanned: image " + imgUnscanned + " (container c0) has not been scanned by Bulwark yet"},
		},
		{
			name:      "unscanned scan within budget, then judged",
			policy:    withPolicy(func(p *Policy) { p.Unscanned = UnscannedScan; p.ScanBudget = 2 * time.Second }),
			scanDelay: 10 * time.Millisecond,
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgUnscanned), nil)
			},
			want:        outcome{Action: ActionDeny, Rules: []string{"deny-critical-fixable", "warn-high-fixable"}},
			wantMessage: []string{"CVE-2025-4802"},
		},
		{
			name:      "unscanned scan misses its budget",
			policy:    withPolicy(func(p *Policy) { p.Unscanned = UnscannedScan; p.ScanBudget = 50 * time.Millisecond }),
			scanDelay: 5 * time.Second,
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgUnscanned), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn},
			wantWarnings: []string{"not scanned within 50ms; allowed"},
		},
		{
			name:   "unscanned scan not supported",
			policy: withPolicy(func(p *Policy) { p.Unscanned = UnscannedScan }),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", "registry.example/unknown/x:1"), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn},
			wantWarnings: []string{"x:1 could not be scanned inline; allowed"},
		},
		{
			name: "more than 100 distinct images are denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				var ims []string
				for i := range maxImages + 1 {
					ims = append(ims, fmt.Sprintf("registry.example/unknown/x:%d", i))
				}
				return request(t, admissionv1.Create, pod("dev", ims...), nil)
			},
			want:        outcome{Action: ActionDeny, Rules: []string{"image-limit"}},
			wantMessage: []string{"rule image-limit: the object names 101 distinct images"},
		},
		{
			name: "ephemeral container subresource judges only the new container",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				old := pod("prod", imgClean)
				o := old
				o.ephemeral = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: imgVuln}}}
				req := request(t, admissionv1.Update, o, &old)
				req.SubResource = "ephemeralcontainers"
				return req
			},
			want:        outcome{Action: ActionDeny, Rules: allRules},
			wantMessage: []string{"container debug"},
		},
		{
			name: "ephemeral container subresource ignores the pod's other containers",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				old := pod("prod", imgVuln)
				o := old
				o.ephemeral = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: imgClean}}}
				req := request(t, admissionv1.Update, o, &old)
				req.SubResource = "ephemeralcontainers"
				return req
			},
			want:       outcome{Allowed: true, Action: ActionAllow},
			noWarnings: true,
		},
		{
			name: "init containers are reviewed",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				o := pod("prod", imgClean)
				o.initContainers = []corev1.Container{{Name: "init", Image: imgVuln}}
				return request(t, admissionv1.Create, o, nil)
			},
			want:        outcome{Action: ActionDeny, Rules: allRules},
			wantMessage: []string{"(container init)"},
		},
		{
			name: "update leaving a denied image unchanged is not denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				o := object{kind: "Deployment", namespace: "prod", name: "web", containers: containers(imgVuln)}
				return request(t, admissionv1.Update, o, &o)
			},
			want:         outcome{Allowed: true, Action: ActionWarn, Rules: allRules},
			wantWarnings: []string{"violates deny-critical-fixable (not enforced"},
		},
		{
			name: "update to a denied image is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				old := object{kind: "Deployment", namespace: "prod", name: "web", containers: containers(imgClean)}
				o := old
				o.containers = containers(imgVuln)
				return request(t, admissionv1.Update, o, &old)
			},
			want: outcome{Action: ActionDeny, Rules: allRules},
		},
		{
			name: "pod of a kube-system controller is not denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				o := pod("prod", imgVuln)
				o.ownedByController = true
				req := request(t, admissionv1.Create, o, nil)
				req.UserInfo.Username = "system:serviceaccount:kube-system:replicaset-controller"
				return req
			},
			want: outcome{Allowed: true, Action: ActionWarn, Rules: allRules},
		},
		{
			name: "pod claiming an owner but created by a user is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				o := pod("prod", imgVuln)
				o.ownedByController = true
				return request(t, admissionv1.Create, o, nil)
			},
			want: outcome{Action: ActionDeny, Rules: allRules},
		},
		{
			name: "DELETE is allowed",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				req := request(t, admissionv1.Delete, pod("prod", imgVuln), nil)
				req.OldObject, req.Object = req.Object, runtime.RawExtension{}
				return req
			},
			want:       outcome{Allowed: true, Action: ActionAllow},
			noWarnings: true,
		},
		{
			name: "unknown kind is allowed",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				req := request(t, admissionv1.Create, pod("prod", imgVuln), nil)
				req.Kind = metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Pod"}
				return req
			},
			want:       outcome{Allowed: true, Action: ActionAllow},
			noWarnings: true,
		},
		{
			name: "other pod subresources are allowed",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				req := request(t, admissionv1.Update, pod("prod", imgVuln), nil)
				req.SubResource = "status"
				return req
			},
			want: outcome{Allowed: true, Action: ActionAllow},
		},
		{
			name: "malformed object is allowed with a warning",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				req := request(t, admissionv1.Create, pod("prod", imgVuln), nil)
				req.Object.Raw = []byte(`{"spec":{"containers":"nope"}}`)
				return req
			},
			want:         outcome{Allowed: true, Action: ActionError},
			wantMessage:  []string{"could not complete the review"},
			wantWarnings: []string{"bulwark: review failed, allowed: decoding Pod"},
		},
		{
			name: "failing facts lookup is allowed with a warning",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgBroken), nil)
			},
			want:         outcome{Allowed: true, Action: ActionError},
			wantWarnings: []string{"could not check " + imgBroken + ": store unavailable"},
		},
		{
			name: "a failing rule is skipped, others still apply",
			policy: withPolicy(func(p *Policy) {
				p.Rules = append(p.Rules, Rule{ID: "broken", Action: ActionDeny, Violation: `vulnerabilities[100].id == "x"`})
			}),
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pod("prod", imgVuln), nil)
			},
			want:         outcome{Action: ActionDeny, Rules: allRules},
			wantWarnings: []string{"bulwark: rule broken failed and was skipped"},
		},
		{
			name: "too many warnings are summarised",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				var ims []string
				for _, c := range "abcdefghij" {
					ims = append(ims, "registry.example/unknown/"+string(c)+":1")
				}
				return request(t, admissionv1.Create, pod("prod", ims...), nil)
			},
			want:         outcome{Allowed: true, Action: ActionWarn},
			wantWarnings: []string{"bulwark: 5 more warnings"},
		},
		{
			name: "match sees the workload and image",
			policy: Policy{Rules: []Rule{{ID: "no-latest", Action: ActionDeny,
				Match:     `workload.kind == "Job" && image.tag == "1.0" && image.containerKind == "container" && operation == "CREATE" && user.name == "alice"`,
				Violation: `image.repository == "team/clean"`}}},
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, object{kind: "Job", namespace: "dev", name: "j", containers: containers(imgClean)}, nil)
			},
			want:        outcome{Action: ActionDeny, Rules: []string{"no-latest"}},
			wantMessage: []string{"rule no-latest: image " + imgClean + " (container c0) violates it"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			if p.Rules == nil && p.Exemptions == nil && !p.DryRun && p.Unscanned == "" {
				p = DefaultPolicy()
			}
			facts := newFakeFacts()
			facts.scanDelay = tc.scanDelay
			var recorded []Decision
			r := newTestReviewer(t, p, facts, func(d Decision) { recorded = append(recorded, d) })
			req := tc.req(t)
			resp, d := r.Review(context.Background(), req)
			got := outcome{Allowed: d.Allowed, Action: d.Action, Rules: d.Rules, BreakGlass: d.BreakGlass, DryRun: d.DryRun}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nmessage: %s\nwarnings: %q", diff, d.Message, d.Warnings)
			}
			for _, s := range tc.wantMessage {
				if !strings.Contains(d.Message, s) {
					t.Errorf("message %q does not contain %q", d.Message, s)
				}
			}
			for _, s := range tc.wantWarnings {
				if !containsSubstring(d.Warnings, s) {
					t.Errorf("warnings %q: none contains %q", d.Warnings, s)
				}
			}
			if tc.noWarnings && len(d.Warnings) > 0 {
				t.Errorf("warnings = %q, want none", d.Warnings)
			}
			checkInvariants(t, req, resp, d)
			if len(recorded) != 1 {
				t.Fatalf("Record called %d times, want 1", len(recorded))
			}
			if diff := cmp.Diff(d, recorded[0]); diff != "" {
				t.Errorf("recorded decision differs (-returned +recorded):\n%s", diff)
			}
		})
	}
}

func containsSubstring(list []string, s string) bool {
	for _, l := range list {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// checkInvariants holds for every review: the response mirrors the
// decision and stays within what kube-apiserver and kubectl show well.
func checkInvariants(t *testing.T, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse, d Decision) {
	t.Helper()
	if resp.UID != req.UID {
		t.Errorf("response UID %q, want %q", resp.UID, req.UID)
	}
	if resp.Allowed != d.Allowed {
		t.Errorf("response Allowed %v, decision %v", resp.Allowed, d.Allowed)
	}
	if !d.Allowed && (resp.Result == nil || resp.Result.Code != 403 || resp.Result.Message != d.Message) {
		t.Errorf("denied response result = %+v, want 403 with the decision message", resp.Result)
	}
	if len(d.Message) > maxMessageLength {
		t.Errorf("message is %d bytes, want at most %d", len(d.Message), maxMessageLength)
	}
	if len(resp.Warnings) > maxWarnings {
		t.Errorf("%d warnings, want at most %d: %q", len(resp.Warnings), maxWarnings, resp.Warnings)
	}
	for _, w := range resp.Warnings {
		if len(w) > maxWarningLength {
			t.Errorf("warning is %d bytes, want at most %d: %q", len(w), maxWarningLength, w)
		}
	}
}

func TestReviewKinds(t *testing.T) {
	r := newTestReviewer(t, DefaultPolicy(), newFakeFacts(), nil)
	for kind := range kindGroups {
		t.Run(kind, func(t *testing.T) {
			for _, tc := range []struct {
				image   string
				allowed bool
			}{{imgVuln, false}, {imgClean, true}} {
				req := request(t, admissionv1.Create, object{kind: kind, namespace: "prod", name: "w", containers: containers(imgClean, tc.image)}, nil)
				resp, d := r.Review(context.Background(), req)
				if d.Allowed != tc.allowed {
					t.Errorf("%s with %s: allowed = %v, want %v (%s)", kind, tc.image, d.Allowed, tc.allowed, d.Message)
				}
				if len(d.Images) != 2 || d.Images[1].Reference != tc.image || !d.Images[1].Scanned || d.Images[1].Digest == "" {
					t.Errorf("%s: images = %+v", kind, d.Images)
				}
				if !tc.allowed && !strings.Contains(d.Message, "Bulwark denied "+kind+" prod/w") {
					t.Errorf("%s: message %q does not name the object", kind, d.Message)
				}
				checkInvariants(t, req, resp, d)
			}
		})
	}
}

func TestPrecomputeFillsTheCache(t *testing.T) {
	facts := newFakeFacts()
	r := newTestReviewer(t, DefaultPolicy(), facts, nil)
	if err := r.Precompute(context.Background(), facts.images[imgVuln]); err != nil {
		t.Fatal(err)
	}
	cp := r.policy.Load()
	if n := cp.cache.len(); n != 1 {
		t.Fatalf("cache has %d entries after Precompute, want 1", n)
	}
	r.Review(context.Background(), request(t, admissionv1.Create, object{kind: "Pod", namespace: "prod", name: "p", containers: containers(imgVuln)}, nil))
	if n := cp.cache.len(); n != 1 {
		t.Errorf("cache has %d entries after a review of the same image, want 1 (a hit)", n)
	}
	// A new scan result is a new key.
	rescanned := *facts.images[imgVuln]
	rescanned.ScannedAt = testNow
	if err := r.Precompute(context.Background(), &rescanned); err != nil {
		t.Fatal(err)
	}
	if n := cp.cache.len(); n != 2 {
		t.Errorf("cache has %d entries after a rescan, want 2", n)
	}
}

func TestVerdictCacheIsBounded(t *testing.T) {
	c := newVerdictCache(2)
	for _, k := range []string{"a", "b", "a", "c"} {
		c.put(k, &imageVerdict{})
	}
	if _, ok := c.get("b"); ok {
		t.Error("b should have been evicted (least recently used)")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%s missing", k)
		}
	}
}

func TestReviewPanicsAreAllowed(t *testing.T) {
	r := newTestReviewer(t, DefaultPolicy(), newFakeFacts(), nil)
	r.nsLabels = func(context.Context, string) (map[string]string, error) { panic("boom") }
	req := request(t, admissionv1.Create, object{kind: "Pod", namespace: "prod", name: "p", containers: containers(imgVuln)}, nil)
	resp, d := r.Review(context.Background(), req)
	if !resp.Allowed || d.Action != ActionError || resp.UID != req.UID {
		t.Errorf("after a panic: allowed=%v action=%s uid=%s, want allowed, error, %s", resp.Allowed, d.Action, resp.UID, req.UID)
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		in   string
		want imageRef
	}{
		{"nginx", imageRef{registry: "docker.io", repository: "library/nginx", tag: "latest"}},
		{"team/app:1", imageRef{registry: "docker.io", repository: "team/app", tag: "1"}},
		{"localhost:5000/app@sha256:ab", imageRef{registry: "localhost:5000", repository: "app", digest: "sha256:ab"}},
		{"ghcr.io/a/b:2@sha256:cd", imageRef{registry: "ghcr.io", repository: "a/b", tag: "2", digest: "sha256:cd"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, parseReference(tc.in), cmp.AllowUnexported(imageRef{})); diff != "" {
			t.Errorf("parseReference(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"registry.example/team/*", "registry.example/team/sub/app:1", true},
		{"registry.example/team/*", "registry.example/other/app:1", false},
		{"*:latest", "nginx:latest", true},
		{"app:?", "app:1", true},
		{"app:?", "app:12", false},
		{"a*b*c", "aXbYbZc", true},
		{"", "", true},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
