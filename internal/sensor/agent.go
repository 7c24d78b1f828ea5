// Package sensor is Bulwark's node sensor, `bulwark sensor`: it reads
// process, DNS and connection events from the kernel (the eBPF probe, or
// the proc connector and fanotify where BPF is refused), keeps the node's
// process tree, attributes each event to its container through the
// container runtime, and sends the events to the server, which judges them
// against the runtime rules. Nothing connects in to the node: the sensor
// enrols with a token, then pushes batches over HTTPS with its own
// credential, buffering them on disk while the server is unreachable.
//
// The package wires the parts together and owns the event loop; the parts
// live in its subpackages: probe and fallback (event sources), track
// (process tree and conversion to the wire format), attrib (containers),
// dnsmsg (DNS queries), transport (enrolment, batches, the disk buffer) and
// wire (the messages).
package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Source delivers kernel events: the eBPF probe or the fallback.
type Source interface {
	Read(ctx context.Context) (probe.Event, error)
	// Hooks name what the source is attached to, for the log.
	Hooks() []string
	// Drops counts events the source lost (ring buffer or netlink
	// overruns) since it was opened.
	Drops() (uint64, error)
	Close() error
}

// Attributor names the container a process runs in.
type Attributor interface {
	Lookup(ctx context.Context, pid uint32, cgroupID uint64, cgroupName string) (*wire.Container, bool)
}

// Converter keeps the process tree and turns kernel events into wire
// events; fork and exit events only update the tree.
type Converter interface {
	Convert(ev probe.Event, c *wire.Container) (wire.Event, bool)
}

// Sink takes wire events for the server.
type Sink interface {
	Send(ev wire.Event)
	// ReportDropped reports events lost before they reached the sink.
	ReportDropped(n uint64)
}

// Agent is the sensor's event loop.
type Agent struct {
	Source     Source
	Attributor Attributor // nil: no attribution
	Converter  Converter
	Sink       Sink
	Logger     *slog.Logger
	// DropsEvery is how often the source's drop counter is read; default
	// 5s.
	DropsEvery time.Duration

	read, sent, malformed atomic.Uint64
}

// Stats are the loop's counters.
type Stats struct {
	// Read counts events from the source, Sent the wire events handed to
	// the sink, Malformed the records the source could not decode.
	Read, Sent, Malformed uint64
}

// Stats returns the loop's counters so far.
func (a *Agent) Stats() Stats {
	return Stats{Read: a.read.Load(), Sent: a.sent.Load(), Malformed: a.malformed.Load()}
}

// Run reads events until ctx ends or the source fails. A record the source
// cannot decode is counted as dropped and skipped.
func (a *Agent) Run(ctx context.Context) error {
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}
	every := a.DropsEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.watchDrops(ctx, every, log)
	}()
	defer func() {
		cancel()
		<-done
	}()
	for {
		ev, err := a.Source.Read(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, probe.ErrMalformed):
			a.malformed.Add(1)
			a.Sink.ReportDropped(1)
			log.Warn("skipping a malformed kernel event", "err", err)
			continue
		case err != nil:
			return fmt.Errorf("reading kernel events: %w", err)
		}
		a.read.Add(1)
		a.handle(ctx, ev)
	}
}

// handle attributes and converts one event and sends the result.
func (a *Agent) handle(ctx context.Context, ev probe.Event) {
	var c *wire.Container
	if a.Attributor != nil && ev.Kind != probe.Fork && ev.Kind != probe.Exit {
		c, _ = a.Attributor.Lookup(ctx, ev.TGID, ev.CgroupID, ev.Cgroup)
	}
	w, ok := a.Converter.Convert(ev, c)
	if !ok {
		return
	}
	a.Sink.Send(w)
	a.sent.Add(1)
}

// watchDrops passes the source's lost events on to the sink, so the
// server learns of them with the next batch.
func (a *Agent) watchDrops(ctx context.Context, every time.Duration, log *slog.Logger) {
	var last uint64
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := a.Source.Drops()
		if err != nil {
			log.Warn("reading the kernel event drop counter", "err", err)
			continue
		}
		if n > last {
			log.Warn("kernel events were lost", "lost", n-last, "total", n)
			a.Sink.ReportDropped(n - last)
			last = n
		}
	}
}
