package detect

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func compileYAML(t testing.TB, doc string, o Options) *Engine {
	t.Helper()
	rules, err := ParseRules([]byte(doc), "test.yaml")
	if err != nil {
		t.Fatalf("ParseRules: %v", err)
	}
	e, err := Compile(rules, o)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

const firstSeenRule = `
rules:
  - id: first-secret-read
    title: First secret read
    severity: LOW
    technique: {id: T1552.007, name: "Unsecured Credentials: Container API"}
    resources: [secrets]
    match: "true"
    state: {kind: first-seen, key: event.user.username, ttl: 1h, max: 3}
`

type summary struct {
	Rule, Key string
	Count     int
	Update    bool
}

func summarize(alerts []Alert) []summary {
	var out []summary
	for _, a := range alerts {
		out = append(out, summary{a.RuleID, a.Key, a.Count, a.Update})
	}
	return out
}

func TestFirstSeen(t *testing.T) {
	e := compileYAML(t, firstSeenRule, Options{})
	read := func(u string, d time.Duration) auditv1.Event {
		return ev("get", "secrets", in("app", "db"), by(authnUser(u)), at(t0.Add(d)))
	}
	steps := []struct {
		event auditv1.Event
		want  []summary
	}{
		{read("alice", 0), []summary{{"first-secret-read", "first-secret-read|alice", 1, false}}},
		{read("alice", time.Minute), nil},
		{read("bob", 2*time.Minute), []summary{{"first-secret-read", "first-secret-read|bob", 1, false}}},
		// 59 minutes after alice was last seen: still known.
		{read("alice", time.Hour), nil},
		// TTL counts from the last sighting.
		{read("alice", 2*time.Hour+time.Second), []summary{{"first-secret-read", "first-secret-read|alice", 1, false}}},
	}
	for i, s := range steps {
		got := summarize(e.Process(context.Background(), one(s.event)))
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d: Process() mismatch (-want +got):\n%s", i, diff)
		}
	}
}

func TestStateBounded(t *testing.T) {
	e := compileYAML(t, firstSeenRule+`
  - id: burst
    title: Burst
    severity: LOW
    technique: {id: T1613, name: Container and Resource Discovery}
    match: "true"
    state: {kind: threshold, key: event.user.username, count: 2, window: 1h, max: 5}
`, Options{MaxGroups: 7})
	events := repeat(10_000, func(i int) auditv1.Event {
		return ev("get", "secrets", in("app", "db"), by(authnUser(fmt.Sprintf("user-%d", i/2))), at(t0.Add(time.Duration(i)*time.Millisecond)))
	})
	alerts := e.Process(context.Background(), events)
	if n := e.rule("first-secret-read").state.Len(); n > 3 {
		t.Errorf("first-seen keys = %d, want at most 3", n)
	}
	if n := e.rule("burst").state.Len(); n > 5 {
		t.Errorf("threshold keys = %d, want at most 5", n)
	}
	if n := e.groups.Len(); n > 7 {
		t.Errorf("groups = %d, want at most 7", n)
	}
	// Every unique user is first seen once, and every pair crosses the
	// threshold once.
	if want := 10_000; len(alerts) != want {
		t.Errorf("Process() = %d alerts, want %d", len(alerts), want)
	}
}

const thresholdRule = `
rules:
  - id: denied
    title: Denied
    severity: MEDIUM
    technique: {id: T1613, name: Container and Resource Discovery}
    match: event.responseStatus.code == 403
    state: {kind: threshold, key: event.user.username, count: 3, window: 1m}
`

func TestThreshold(t *testing.T) {
	denied := func(d time.Duration) auditv1.Event {
		return ev("list", "secrets", in("app", ""), code(403), at(t0.Add(d)))
	}
	key := "denied|" + admin.Username
	tests := []struct {
		name      string
		events    []auditv1.Event
		want      []summary
		wantFlush []summary
	}{
		{"three within the window", []auditv1.Event{denied(0), denied(10 * time.Second), denied(20 * time.Second)},
			[]summary{{"denied", key, 3, false}}, nil},
		{"spread out", []auditv1.Event{denied(0), denied(40 * time.Second), denied(80 * time.Second), denied(120 * time.Second)}, nil, nil},
		{"two only", []auditv1.Event{denied(0), denied(time.Second)}, nil, nil},
		{"keeps counting while hot", []auditv1.Event{denied(0), denied(time.Second), denied(2 * time.Second), denied(3 * time.Second), denied(4 * time.Second)},
			[]summary{{"denied", key, 3, false}}, []summary{{"denied", key, 5, true}}},
		{"successes do not count", []auditv1.Event{denied(0), ev("list", "pods", at(t0.Add(time.Second))), denied(2 * time.Second)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := compileYAML(t, thresholdRule, Options{})
			if diff := cmp.Diff(tt.want, summarize(e.Process(context.Background(), tt.events))); diff != "" {
				t.Errorf("Process() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFlush, summarize(e.Flush(t0.Add(time.Hour)))); diff != "" {
				t.Errorf("Flush() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGrouping(t *testing.T) {
	e := newBuiltinEngine(t)
	key := "pod-exec|alice@example.com|create|pods/exec|app/web"
	execAt := func(d time.Duration, id string) auditv1.Event { return exec("app", "web", at(t0.Add(d)), auditID(id)) }

	got := e.Process(context.Background(), []auditv1.Event{execAt(0, "e1"), execAt(time.Minute, "e2"), execAt(2*time.Minute, "e3")})
	if diff := cmp.Diff([]summary{{"pod-exec", key, 1, false}}, summarize(got)); diff != "" {
		t.Fatalf("Process() mismatch (-want +got):\n%s", diff)
	}
	flushed := e.Flush(t0.Add(3 * time.Minute))
	if diff := cmp.Diff([]summary{{"pod-exec", key, 3, true}}, summarize(flushed)); diff != "" {
		t.Fatalf("Flush() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"e1", "e2", "e3"}, flushed[0].Events); diff != "" {
		t.Errorf("update Events mismatch (-want +got):\n%s", diff)
	}
	if !flushed[0].FirstAt.Equal(t0) || !flushed[0].LastAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("update spans %v to %v, want %v to %v", flushed[0].FirstAt, flushed[0].LastAt, t0, t0.Add(2*time.Minute))
	}
	if got := e.Flush(t0.Add(4 * time.Minute)); len(got) != 0 {
		t.Errorf("second Flush() = %v, want nothing new", summarize(got))
	}
	// Still within the window: joins silently.
	if got := e.Process(context.Background(), one(execAt(4*time.Minute, "e4"))); len(got) != 0 {
		t.Errorf("Process() within the window = %v, want nothing", summarize(got))
	}
	// After the window, without a Flush in between: the old group's last
	// update, then a new alert.
	got = e.Process(context.Background(), one(execAt(6*time.Minute, "e5")))
	if diff := cmp.Diff([]summary{{"pod-exec", key, 4, true}, {"pod-exec", key, 1, false}}, summarize(got)); diff != "" {
		t.Errorf("Process() after the window mismatch (-want +got):\n%s", diff)
	}
	if got := e.Flush(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("Flush() = %v, want nothing", summarize(got))
	}
	if n := e.groups.Len(); n != 0 {
		t.Errorf("%d groups left after the window, want 0", n)
	}
}

func TestGroupEvictionReportsPending(t *testing.T) {
	e, err := Compile(Builtin(), Options{MaxGroups: 2})
	if err != nil {
		t.Fatal(err)
	}
	stream := []auditv1.Event{exec("app", "a"), exec("app", "a"), exec("app", "b"), exec("app", "c")}
	got := summarize(e.Process(context.Background(), stream))
	want := []summary{
		{"pod-exec", "pod-exec|alice@example.com|create|pods/exec|app/a", 1, false},
		{"pod-exec", "pod-exec|alice@example.com|create|pods/exec|app/b", 1, false},
		{"pod-exec", "pod-exec|alice@example.com|create|pods/exec|app/a", 2, true},
		{"pod-exec", "pod-exec|alice@example.com|create|pods/exec|app/c", 1, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Process() mismatch (-want +got):\n%s", diff)
	}
}

func TestStages(t *testing.T) {
	started := exec("app", "web", auditID("s1"))
	completed := exec("app", "web", auditID("s1"), stage(auditv1.StageResponseComplete), code(200), at(t0.Add(time.Hour)))
	tests := []struct {
		name   string
		events []auditv1.Event
		want   int
	}{
		{"started then completed is one session", []auditv1.Event{started, completed}, 1},
		{"completed alone (ResponseStarted omitted by the policy)", []auditv1.Event{completed}, 1},
		{"request received is ignored", []auditv1.Event{exec("app", "web", stage(auditv1.StageRequestReceived))}, 0},
		{"watch started is ignored", []auditv1.Event{ev("watch", "secrets", in("app", ""), by(webPod), stage(auditv1.StageResponseStarted))}, 0},
		{"panic is judged", []auditv1.Event{ev("list", "secrets", in("app", ""), by(webPod), stage(auditv1.StagePanic))}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newBuiltinEngine(t)
			got := e.Process(context.Background(), tt.events)
			got = append(got, e.Flush(t0.Add(2*time.Hour))...)
			if len(got) != tt.want {
				t.Errorf("alerts = %v, want %d", summarize(got), tt.want)
			}
		})
	}
}

func TestProcessStopsOnCancel(t *testing.T) {
	e := newBuiltinEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := e.Process(ctx, []auditv1.Event{exec("app", "web")}); len(got) != 0 {
		t.Errorf("Process(cancelled) = %v, want nothing", summarize(got))
	}
}

func TestHostileRuleIsBounded(t *testing.T) {
	e := compileYAML(t, `
rules:
  - id: quadratic
    title: Quadratic
    severity: LOW
    technique: {id: T1613, name: Container and Resource Discovery}
    match: event.requestURI.split("").map(a, event.requestURI.split("").filter(b, b == a).size()).exists(n, n > 100000)
`, Options{Logger: slog.New(slog.DiscardHandler)})
	long := ev("get", "pods", uri("/api/v1/pods?"+strings.Repeat("x", 20_000)))
	start := time.Now()
	got := e.Process(context.Background(), []auditv1.Event{long, long, long})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Process took %v with a hostile rule", d)
	}
	if len(got) != 0 {
		t.Errorf("Process() = %v, want nothing", summarize(got))
	}
	if n := e.rule("quadratic").errors; n != 3 {
		t.Errorf("quadratic rule failed %d times, want 3 (cost limit or deadline)", n)
	}
}

func TestRulesReturnsDefaults(t *testing.T) {
	e := newBuiltinEngine(t)
	var fs *StateSpec
	for _, r := range e.Rules() {
		if r.ID == "secrets-read-by-serviceaccount" {
			fs = r.State
		}
	}
	want := &StateSpec{Kind: StateFirstSeen, Key: `event.user.username + "|" + event.objectRef.namespace`, TTL: 24 * time.Hour, Max: defaultFirstSeenMax}
	if diff := cmp.Diff(want, fs); diff != "" {
		t.Errorf("state mismatch (-want +got):\n%s", diff)
	}
}
