//go:build linux

package sensor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/nodedetect"
	"github.com/bulwarkhq/bulwark/internal/sensor/attrib"
	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/track"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// selfSource is a runtime with one container: the benchmark's own
// process, so that the resolver derives real cgroup keys from /proc.
type selfSource struct{ c wire.Container }

func (s selfSource) Tasks(context.Context) ([]attrib.Task, error) {
	return []attrib.Task{{Container: s.c, PID: uint32(os.Getpid())}}, nil
}

// ownCgroup is the cgroup name the kernel side reports for this process:
// the last element of its v1 memory cgroup, or of its v2 path.
func ownCgroup(tb testing.TB) string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		tb.Fatal(err)
	}
	var v2 string
	for line := range strings.Lines(string(data)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[1] == "memory":
			return filepath.Base(f[2])
		case f[0] == "0" && f[1] == "":
			v2 = filepath.Base(f[2])
		}
	}
	return v2
}

// BenchmarkUserSpace measures what the sensor and the server do with each
// kernel event once it is decoded: attribute it to its container (cached),
// keep the process tree and convert it to the wire format, and judge it
// against every built-in runtime rule. The stream is a container's
// processes forking, executing with arguments and exiting, with DNS
// queries and connections between them. Decoding is measured on its own by
// internal/sensor/probe's BenchmarkDecode.
func BenchmarkUserSpace(b *testing.B) {
	cg := ownCgroup(b)
	if cg == "" || cg == "/" {
		b.Skip("the benchmark's process is in the root cgroup: nothing to attribute it by")
	}
	ctr := wire.Container{ID: "3f1c9a7b2d", Name: "api", Runtime: attrib.RuntimeContainerd, Pod: "api-7d9f", Namespace: "shop",
		Image: "registry.example/shop/api:1.4", Digest: "sha256:" + strings.Repeat("ab", 32)}
	resolver := attrib.New(selfSource{ctr}, attrib.Config{})
	if err := resolver.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	if _, ok := resolver.Lookup(context.Background(), uint32(os.Getpid()), 0, cg); !ok {
		b.Fatalf("the resolver does not know cgroup %q", cg)
	}
	tracker := track.New(track.Config{ProcRoot: b.TempDir()})
	rules, err := nodedetect.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	engine, err := nodedetect.New(rules, nodedetect.Options{})
	if err != nil {
		b.Fatal(err)
	}
	base := probe.Event{UID: 1000, Cgroup: cg, MntNS: 4026532900, NetNS: 4026532901}
	at := func(ev probe.Event, kind probe.Kind, pid, ppid uint32) probe.Event {
		ev.Kind, ev.TGID, ev.PID, ev.PPID = kind, pid, pid, ppid
		return ev
	}
	app := base
	app.Comm, app.Filename, app.Args = "gunicorn", "/usr/local/bin/gunicorn", []string{"gunicorn", "app:app", "--workers", "4"}
	stream := []probe.Event{at(app, probe.Exec, 100, 1)}
	for i := range 250 {
		pid := uint32(1000 + 4*i)
		sh := base
		sh.Comm, sh.Filename, sh.Args = "sh", "/bin/sh", []string{"sh", "-c", "convert /tmp/in.png /tmp/out.jpg"}
		conv := base
		conv.Comm, conv.Filename, conv.Args = "convert", "/usr/bin/convert", []string{"convert", "/tmp/in.png", "-resize", "50%", "/tmp/out.jpg"}
		conv.Stdin, conv.Stdout = probe.FileChar, probe.FilePipe
		dns := at(base, probe.DNS, 100, 1)
		dns.Comm = "gunicorn"
		dns.DNS = dnsQuery(fmt.Sprintf("orders-%d.shop.svc.cluster.local", i%7))
		conn := at(base, probe.Connect, 100, 1)
		conn.Comm, conn.Remote = "gunicorn", netip.MustParseAddrPort("10.0.3.4:5432")
		stream = append(stream,
			at(base, probe.Fork, pid, 100), at(sh, probe.Exec, pid, 100),
			at(base, probe.Fork, pid+1, pid), at(conv, probe.Exec, pid+1, pid), at(base, probe.Exit, pid+1, pid),
			at(base, probe.Exit, pid, 100), dns, conn)
	}
	ctx := context.Background()
	start := time.Now()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		ev := stream[n%len(stream)]
		ev.Time = start.Add(time.Duration(n) * time.Microsecond)
		n++
		var c *wire.Container
		if ev.Kind != probe.Fork && ev.Kind != probe.Exit {
			c, _ = resolver.Lookup(ctx, ev.TGID, ev.CgroupID, ev.Cgroup)
		}
		w, ok := tracker.Convert(ev, c)
		if !ok {
			continue
		}
		engine.Process(&w, nodedetect.Meta{Node: "node-1", Cluster: "prod", EvidenceID: "b/1"})
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// dnsQuery is the UDP payload of a query for name, type A.
func dnsQuery(name string) []byte {
	msg := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for label := range strings.SplitSeq(name, ".") {
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	return append(msg, 0, 0, 1, 0, 1)
}
