//go:build unix

package nodedetect

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// benchStream is a realistic mix: mostly ordinary execs, DNS queries and
// connections of application containers and the host, with one case
// sequence (attacks and near misses) in a hundred events.
func benchStream(tb testing.TB) []wire.Event {
	containers, cases, events := loadCases(tb)
	ctr := func(name string) *wire.Container {
		c := containers[name]
		return &wire.Container{ID: c["id"].(string), Name: c["name"].(string), Pod: c["pod"].(string), Namespace: c["namespace"].(string), Image: c["image"].(string)}
	}
	ancestors := []wire.Process{{PID: 300, Comm: "gunicorn", Exe: "/usr/local/bin/gunicorn", Args: []string{"gunicorn", "app:app"}}, {PID: 1, Comm: "tini", Exe: "/usr/bin/tini"}}
	ordinary := []wire.Event{
		{Kind: wire.KindExec, Container: ctr("api"), Ancestors: ancestors, Process: wire.Process{PID: 9001, Comm: "sh", Exe: "/bin/sh", Args: []string{"sh", "-c", "convert /tmp/in.png /tmp/out.jpg"}, Stdin: "char", Stdout: "pipe"}},
		{Kind: wire.KindExec, Container: ctr("api"), Ancestors: ancestors, Process: wire.Process{PID: 9002, Comm: "convert", Exe: "/usr/bin/convert", Args: []string{"convert", "/tmp/in.png", "/tmp/out.jpg"}, Stdin: "char", Stdout: "pipe"}},
		{Kind: wire.KindDNS, Container: ctr("api"), Ancestors: ancestors, Process: wire.Process{PID: 300, Comm: "gunicorn", Exe: "/usr/local/bin/gunicorn"}, DNS: &wire.DNSQuery{Name: "orders-db.shop.svc.cluster.local", Type: "A", Server: "10.96.0.10:53"}},
		{Kind: wire.KindDNS, Container: ctr("api"), Ancestors: ancestors, Process: wire.Process{PID: 300, Comm: "gunicorn", Exe: "/usr/local/bin/gunicorn"}, DNS: &wire.DNSQuery{Name: "api.stripe.com", Type: "AAAA", Server: "10.96.0.10:53"}},
		{Kind: wire.KindConnect, Container: ctr("api"), Ancestors: ancestors, Process: wire.Process{PID: 300, Comm: "gunicorn", Exe: "/usr/local/bin/gunicorn"}, Remote: "10.0.3.4:5432"},
		{Kind: wire.KindConnect, Container: ctr("api"), Ancestors: ancestors, Process: wire.Process{PID: 300, Comm: "gunicorn", Exe: "/usr/local/bin/gunicorn"}, Remote: "54.187.216.72:443"},
		{Kind: wire.KindExec, Container: ctr("web"), Process: wire.Process{PID: 9100, Comm: "nginx", Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-s", "reload"}}},
		{Kind: wire.KindExec, Process: wire.Process{PID: 9200, Comm: "runc", Exe: "/usr/bin/runc", Args: []string{"runc", "--root", "/run/containerd/runc/k8s.io", "state", "3f1c9a7b"}}},
		{Kind: wire.KindExec, Process: wire.Process{PID: 9201, Comm: "iptables", Exe: "/usr/sbin/iptables", Args: []string{"iptables", "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"}}},
		{Kind: wire.KindDNS, Process: wire.Process{PID: 700, Comm: "kubelet", Exe: "/usr/bin/kubelet"}, DNS: &wire.DNSQuery{Name: "ec2.us-east-1.amazonaws.com", Type: "A"}},
	}
	var out []wire.Event
	c := 0
	for len(out) < 10_000 {
		if len(out)%100 == 50 {
			out = append(out, events[&cases[c%len(cases)]]...)
			c++
			continue
		}
		out = append(out, ordinary[len(out)%len(ordinary)])
	}
	return out
}

func BenchmarkProcess(b *testing.B) {
	events := benchStream(b)
	e := newBuiltinEngine(b, Options{})
	meta := make([]Meta, len(events))
	for i := range meta {
		meta[i] = Meta{Node: "node-1", Cluster: "prod", EvidenceID: fmt.Sprint(i)}
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	n := 0
	for i := 0; b.Loop(); i++ {
		// Shift the stream so that every iteration sees new time and
		// groups and state age out as in a live cluster.
		shift := time.Duration(i/len(events)) * time.Hour
		ev := &events[i%len(events)]
		ev.Time = t0.Add(shift + time.Duration(i%len(events))*time.Millisecond)
		e.Process(ev, meta[i%len(events)])
		if i%len(events) == len(events)-1 {
			e.Flush(ev.Time.Add(time.Hour))
		}
		n++
	}
	// The machines benchmarks run on are often shared; CPU time says what
	// one core achieves regardless of what else runs.
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n)/cpu.Seconds(), "events/cpu-s")
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
