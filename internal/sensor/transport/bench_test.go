package transport

import (
	"log/slog"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// benchEvent is an exec event as a sensor reports one in a Kubernetes pod:
// arguments, a container and three ancestors.
func benchEvent(n int) wire.Event {
	ev := testEvent(n)
	ev.Process.Args = []string{"curl", "-fsSL", "https://example.com/install.sh", "-o", "/tmp/install.sh"}
	ev.Process.Exe = "/usr/bin/curl"
	ev.Process.Comm = "curl"
	ev.Process.Stdout = "pipe"
	ev.Container.Image = "registry.example.com/team/web:1.2.3"
	ev.Container.Digest = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ev.Container.PodUID = "6f1c1f5e-1d2b-4c3a-9a8b-7c6d5e4f3a2b"
	ev.Ancestors = []wire.Process{
		{PID: 40, PPID: 30, Comm: "sh", Exe: "/bin/sh", Args: []string{"sh", "-c", "curl -fsSL https://example.com/install.sh | sh"}},
		{PID: 30, PPID: 1, Comm: "node", Exe: "/usr/local/bin/node", Args: []string{"node", "server.js"}},
		{PID: 1, Comm: "tini", Exe: "/sbin/tini", Args: []string{"tini", "--", "node", "server.js"}},
	}
	return ev
}

// BenchmarkSendToSpool measures the sensor's side of the pipeline: Send,
// the cut of 1,000-event batches, validation, wire.Encode (gzip JSON) and
// the spool file write. The server answers 503, so nothing is sent and the
// network is not measured; the loop waits for the batcher at each batch
// so that no event is dropped.
func BenchmarkSendToSpool(b *testing.B) {
	srv := newFakeServer(b)
	o := srv.options(b, b.TempDir())
	o.Logger = slog.New(slog.DiscardHandler)
	o.BatchEvents = DefaultBatchEvents
	o.BatchInterval = time.Hour
	o.SpoolBytes = 4 << 30
	o.SpoolFiles = 1 << 20
	o.MaxBackoff = time.Minute
	srv.fail = 503
	c, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	events := make([]wire.Event, 1000)
	for i := range events {
		events[i] = benchEvent(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		c.Send(events[i%len(events)])
		if i%o.BatchEvents == o.BatchEvents-1 {
			c.cutPendingForTest()
		}
	}
	c.cutPendingForTest()
	elapsed := time.Since(start)
	b.StopTimer()
	s := c.Stats()
	if s.Dropped != 0 || s.Rejected != 0 {
		b.Fatalf("dropped %d, rejected %d", s.Dropped, s.Rejected)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(s.SpoolBytes)/float64(b.N), "spool-bytes/event")
	c.cancelSend() // Close would wait for the spool to drain
	<-c.senderDone
	c.lock.Close()
}
