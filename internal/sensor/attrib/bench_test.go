package attrib

import (
	"fmt"
	"testing"
	"time"
)

// benchResolver returns a resolver knowing n containers, refreshed, and
// the keys their processes' events carry.
func benchResolver(b *testing.B, n int) (*Resolver, *fakeHost, []keys, []uint32) {
	h := newFakeHost(b)
	var tasks []Task
	var ks []keys
	var pids []uint32
	for i := range n {
		pid, k := h.process(fmt.Sprintf("/kubepods/pod%d/%064x", i, i), "/")
		tasks = append(tasks, podTask(pid, fmt.Sprintf("%064x", i), "p", false))
		ks, pids = append(ks, k), append(pids, pid)
	}
	src := &fakeSource{}
	src.set(nil, tasks...)
	r := h.resolver(src, Config{MinRefreshInterval: time.Hour, NegativeTTL: time.Hour})
	if err := r.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	return r, h, ks, pids
}

// BenchmarkLookup is the hot path: an event of a known container.
func BenchmarkLookup(b *testing.B) {
	r, _, ks, pids := benchResolver(b, 500)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := ks[i%len(ks)]
		if _, ok := r.Lookup(ctx, pids[i%len(pids)], k.ID, k.Name); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkLookupByName is a cgroup v1 host's hot path, where only the
// name tells containers apart.
func BenchmarkLookupByName(b *testing.B) {
	r, _, ks, pids := benchResolver(b, 500)
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := ks[i%len(ks)]
		if _, ok := r.Lookup(ctx, pids[i%len(pids)], 1, k.Name); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkLookupHost is an event of a host process, remembered as one.
func BenchmarkLookupHost(b *testing.B) {
	r, h, _, _ := benchResolver(b, 500)
	pid, k := h.process("/system.slice/sshd.service", "/")
	ctx := b.Context()
	r.Lookup(ctx, pid, k.ID, k.Name)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Lookup(ctx, pid, k.ID, k.Name); ok {
			b.Fatal("host process attributed")
		}
	}
}

// BenchmarkLookupParallel is the hot path from several goroutines.
func BenchmarkLookupParallel(b *testing.B) {
	r, _, ks, pids := benchResolver(b, 500)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := ks[i%len(ks)]
			if _, ok := r.Lookup(ctx, pids[i%len(pids)], k.ID, k.Name); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}
