package nodedetect

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/rulestate"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

func newBuiltinEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	rules, err := Builtin()
	if err != nil {
		t.Fatalf("Builtin(): %v", err)
	}
	e, err := New(rules, o)
	if err != nil {
		t.Fatalf("New(Builtin()): %v", err)
	}
	return e
}

func TestBuiltinCompiles(t *testing.T) {
	e := newBuiltinEngine(t, Options{})
	if len(e.Rules()) < 20 {
		t.Errorf("%d built-in rules, want at least 20", len(e.Rules()))
	}
}

func execIn(ctr *wire.Container, at time.Time, exe string, args ...string) wire.Event {
	return wire.Event{Kind: wire.KindExec, Time: at, Container: ctr, Process: wire.Process{PID: 7, Comm: baseName(exe), Exe: exe, Args: args}}
}

var shopWeb = &wire.Container{ID: "c1", Name: "web", Pod: "web-1", Namespace: "shop", Image: "web:1"}

func TestGrouping(t *testing.T) {
	e := newBuiltinEngine(t, Options{GroupWindow: time.Minute})
	meta := func(id string) Meta { return Meta{Node: "n1", Cluster: "prod", EvidenceID: id} }
	nmap := func(at time.Duration) *wire.Event {
		ev := execIn(shopWeb, t0.Add(at), "/usr/bin/nmap", "nmap", "10.0.0.0/24")
		return &ev
	}
	first := e.Process(nmap(0), meta("e1"))
	want := []Alert{{
		RuleID: "network-scanner", Title: "Network scanner executed", Severity: "MEDIUM",
		Technique: detect.Technique{ID: "T1046", Name: "Network Service Discovery"},
		Summary:   "nmap 10.0.0.0/24 in shop/web-1", Node: "n1", Cluster: "prod",
		Container: shopWeb, Exe: "/usr/bin/nmap", Cmdline: "nmap 10.0.0.0/24", PID: 7,
		Events: []string{"e1"}, Count: 1, FirstAt: t0, LastAt: t0,
		Key: "network-scanner|c/c1|/usr/bin/nmap",
	}}
	if d := cmp.Diff(want, first); d != "" {
		t.Fatalf("first alert (-want +got):\n%s", d)
	}
	if got := e.Process(nmap(10*time.Second), meta("e2")); len(got) != 0 {
		t.Errorf("repeat within the window: %v, want no alert", got)
	}
	if got := e.Flush(t0.Add(20 * time.Second)); len(got) != 1 || got[0].Count != 2 || !got[0].Update ||
		!cmp.Equal(got[0].Events, []string{"e1", "e2"}) || !got[0].LastAt.Equal(t0.Add(10*time.Second)) {
		t.Errorf("Flush: %+v, want one update with Count 2 and both events", got)
	}
	if got := e.Flush(t0.Add(30 * time.Second)); len(got) != 0 {
		t.Errorf("Flush without growth: %v, want nothing", got)
	}
	if got := e.Process(nmap(2*time.Minute), meta("e3")); len(got) != 1 || got[0].Update || got[0].Count != 1 {
		t.Errorf("after the window: %+v, want a new alert", got)
	}
	other := &wire.Container{ID: "c2", Name: "api", Pod: "api-1", Namespace: "shop"}
	ev := execIn(other, t0.Add(2*time.Minute), "/usr/bin/nmap", "nmap")
	if got := e.Process(&ev, meta("e4")); len(got) != 1 {
		t.Errorf("other container: %v, want its own alert", got)
	}
}

func TestEvidenceBounded(t *testing.T) {
	e := newBuiltinEngine(t, Options{})
	for i := range 3 * rulestate.MaxEvidence {
		ev := execIn(shopWeb, t0.Add(time.Duration(i)*time.Millisecond), "/usr/bin/nmap", "nmap")
		e.Process(&ev, Meta{EvidenceID: fmt.Sprint(i)})
	}
	got := e.Flush(t0.Add(time.Hour))
	if len(got) != 1 || got[0].Count != 3*rulestate.MaxEvidence || len(got[0].Events) != rulestate.MaxEvidence {
		t.Errorf("Flush: %d alerts, want one with Count %d and %d events", len(got), 3*rulestate.MaxEvidence, rulestate.MaxEvidence)
	}
}

func TestGroupsBounded(t *testing.T) {
	e := newBuiltinEngine(t, Options{MaxGroups: 2})
	var updates int
	for i := range 5 {
		ctr := &wire.Container{ID: fmt.Sprint("c", i)}
		for j := range 2 {
			ev := execIn(ctr, t0.Add(time.Duration(i*2+j)*time.Second), "/usr/bin/nmap", "nmap")
			for _, a := range e.Process(&ev, Meta{}) {
				if a.Update {
					updates++
				}
			}
		}
	}
	if e.groups.Len() != 2 {
		t.Errorf("%d groups, want at most 2", e.groups.Len())
	}
	// Each evicted group had an unreported repeat.
	if updates != 3 {
		t.Errorf("%d updates from evictions, want 3", updates)
	}
}

func TestDownloadStateBounded(t *testing.T) {
	e := newBuiltinEngine(t, Options{MaxContainers: 3})
	for i := range 10 {
		ctr := &wire.Container{ID: fmt.Sprint("c", i)}
		for j := range 2 * maxDownloadsPerContainer {
			ev := execIn(ctr, t0.Add(time.Duration(i)*time.Second), "/usr/bin/curl", "curl", "-o", fmt.Sprintf("/tmp/f%d", j), "http://x/")
			e.Process(&ev, Meta{})
		}
	}
	if n := e.downloads.byCtr.Len(); n != 3 {
		t.Errorf("%d containers remembered, want 3", n)
	}
	e.downloads.byCtr.Each(func(en *rulestate.Entry[*containerDownloads]) {
		if len(en.Val.files) != maxDownloadsPerContainer {
			t.Errorf("%s: %d files, want %d", en.Key, len(en.Val.files), maxDownloadsPerContainer)
		}
	})
	// The newest files of a remembered container are still matched; the
	// evicted containers' are not.
	for _, tc := range []struct {
		ctr  string
		file int
		want bool
	}{{"c9", 2*maxDownloadsPerContainer - 1, true}, {"c9", 0, false}, {"c0", 2*maxDownloadsPerContainer - 1, false}} {
		ev := execIn(&wire.Container{ID: tc.ctr}, t0.Add(time.Minute), fmt.Sprintf("/tmp/f%d", tc.file), "x")
		fired := false
		for _, a := range e.Process(&ev, Meta{}) {
			fired = fired || a.RuleID == "download-and-execute"
		}
		if fired != tc.want {
			t.Errorf("%s /tmp/f%d: download-and-execute %v, want %v", tc.ctr, tc.file, fired, tc.want)
		}
	}
}

func TestUserRuleLimits(t *testing.T) {
	r := Rule{ID: "slow", Title: "T", Severity: "LOW", Technique: detect.Technique{ID: "T1059", Name: "C"}, Kinds: []string{"exec"},
		Match: `[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, a*b*c*d)))).size() > 0`}
	var logs strings.Builder
	e, err := New([]Rule{r}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ev := execIn(shopWeb, t0, "/bin/true", "true")
	if got := e.Process(&ev, Meta{EvidenceID: "e1"}); len(got) != 0 {
		t.Errorf("over-budget rule fired: %v", got)
	}
	// Which limit stops it first depends on the machine's speed.
	if l := logs.String(); !strings.Contains(l, "rule=slow") || !strings.Contains(l, "cost limit exceeded") && !strings.Contains(l, "deadline exceeded") {
		t.Errorf("log %q, want the rule stopped by its cost limit or deadline", l)
	}
}
