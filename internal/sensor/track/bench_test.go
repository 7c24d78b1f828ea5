package track

import (
	"testing"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// BenchmarkConvert measures the sensor's per-event cost on a realistic
// mix: per op, one exec with arguments and one DNS query, each with an
// ancestry of five, and the fork and exit around the exec.
func BenchmarkConvert(b *testing.B) {
	e := newEvents()
	tr := New(Config{ProcRoot: b.TempDir()})
	c := &wire.Container{ID: "abc", Name: "web", Pod: "web-0", Namespace: "shop"}
	chain := []struct {
		exe  string
		args []string
	}{
		{"/usr/bin/containerd-shim-runc-v2", []string{"containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", "/run/containerd/containerd.sock"}},
		{"/usr/local/bin/tini", []string{"tini", "--", "entrypoint.sh"}},
		{"/bin/bash", []string{"/bin/bash", "/entrypoint.sh", "serve"}},
		{"/usr/bin/python3", []string{"python3", "-m", "gunicorn", "app:app", "--workers", "4"}},
		{"/usr/bin/python3", []string{"gunicorn: worker [app:app]"}},
	}
	mnt := uint32(hostNS)
	for i, p := range chain {
		pid := uint32(100 + i)
		tr.Convert(e.fork(pid-1, pid, "x", mnt), c)
		tr.Convert(e.exec(pid, pid-1, p.exe, mnt, p.args...), c)
		mnt = containerNS
	}
	const parent = 104
	execArgs := []string{"curl", "-sS", "-H", "Authorization: Bearer x", "https://api.internal.example/v1/orders?limit=100"}
	dns := e.dns(parent, 103, "gunicorn", "api.internal.example.svc.cluster.local", containerNS)
	b.ReportAllocs()
	pid := uint32(1000)
	for b.Loop() {
		pid++
		if pid > 30000 {
			pid = 1000
		}
		for _, ev := range []probe.Event{
			e.fork(parent, pid, "gunicorn", containerNS),
			e.exec(pid, parent, "/usr/bin/curl", containerNS, execArgs...),
			e.exit(pid, parent),
		} {
			tr.Convert(ev, c)
		}
		dns.Time = e.tick()
		if w, ok := tr.Convert(dns, c); !ok || len(w.Ancestors) != 4 {
			b.Fatalf("dns event %v with %d ancestors", ok, len(w.Ancestors))
		}
	}
}

// BenchmarkConvertDNS measures one DNS event with an ancestry of five.
func BenchmarkConvertDNS(b *testing.B) {
	e := newEvents()
	tr := New(Config{ProcRoot: b.TempDir()})
	for pid := uint32(100); pid < 106; pid++ {
		tr.Convert(e.exec(pid, pid-1, "/usr/bin/python3", containerNS, "python3", "-m", "app"), nil)
	}
	dns := e.dns(105, 104, "python3", "api.internal.example.svc.cluster.local", containerNS)
	b.ReportAllocs()
	for b.Loop() {
		dns.Time = e.tick()
		if w, ok := tr.Convert(dns, nil); !ok || len(w.Ancestors) != 5 {
			b.Fatalf("dns event %v with %d ancestors", ok, len(w.Ancestors))
		}
	}
}

// BenchmarkConvertExec measures one exec with arguments and an ancestry of
// five.
func BenchmarkConvertExec(b *testing.B) {
	e := newEvents()
	tr := New(Config{ProcRoot: b.TempDir()})
	for pid := uint32(101); pid < 106; pid++ {
		tr.Convert(e.exec(pid, pid-1, "/usr/bin/python3", containerNS, "python3", "-m", "app"), nil)
	}
	ev := e.exec(106, 105, "/usr/bin/curl", containerNS, "curl", "-sS", "-H", "Accept: application/json", "https://api.internal.example/v1/orders")
	tr.Convert(ev, nil)
	b.ReportAllocs()
	for b.Loop() {
		ev.Time = e.tick()
		if w, ok := tr.Convert(ev, nil); !ok || len(w.Ancestors) != 5 {
			b.Fatalf("exec event %v with %d ancestors", ok, len(w.Ancestors))
		}
	}
}
