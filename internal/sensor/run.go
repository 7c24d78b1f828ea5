package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/sensor/attrib"
	"github.com/bulwarkhq/bulwark/internal/sensor/fallback"
	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/track"
	"github.com/bulwarkhq/bulwark/internal/sensor/transport"
)

// Event sources Config.Source chooses between.
const (
	SourceAuto = "auto" // eBPF, else the proc connector
	SourceBPF  = "bpf"
	SourceProc = "proc"
)

// Config is what `bulwark sensor` runs with.
type Config struct {
	// Transport: the server, its CA, the node's identity, the state
	// directory (credential and disk buffer) and the enrolment token.
	Transport transport.Options
	// Source is SourceAuto, SourceBPF or SourceProc.
	Source string
	// RingSize is the eBPF ring buffer's size in bytes; 0 is the default.
	RingSize int
	// ContainerdSocket is containerd's socket; CRISocket a CRI runtime's
	// (CRI-O), used instead when set. With neither, containers are named
	// only by their cgroup's naming convention.
	ContainerdSocket, CRISocket string
	// ContainerdNamespaces limits attribution to these containerd
	// namespaces; empty means all.
	ContainerdNamespaces []string
	// ProcRoot is where the host's /proc is visible (the sensor runs with
	// the host's pid namespace); default /proc. HostRoot is where the
	// host's root file system is visible, for the fallback's drift
	// checks; default /.
	ProcRoot, HostRoot string
	// StatsEvery is how often the counters are logged; default 1 minute.
	StatsEvery time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Run runs the sensor until ctx ends: it opens the event source, loads the
// node's process tree, and sends events until ctx is cancelled, then
// spends up to ten seconds delivering what it holds; what is left stays in
// the disk buffer for the next start.
func Run(ctx context.Context, c Config) error {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	if c.Transport.Logger == nil {
		c.Transport.Logger = log.With("component", "transport")
	}
	if c.Transport.Registerer == nil {
		c.Transport.Registerer = c.Registerer
	}
	client, err := transport.New(c.Transport)
	if err != nil {
		return fmt.Errorf("starting the sensor's transport: %w", err)
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := client.Close(closing); err != nil {
			log.Warn("not every event was delivered before stopping; the rest stays in the disk buffer", "err", err)
		}
	}()

	src, err := openSource(c, log)
	if err != nil {
		return err
	}
	defer src.Close()
	log.Info("sensor event source attached", "hooks", src.Hooks())

	tracker := track.New(track.Config{ProcRoot: c.ProcRoot, Logger: log.With("component", "track")})
	if n, err := tracker.Scan(ctx); err != nil {
		log.Warn("reading the running processes; ancestry of older processes is incomplete", "err", err)
	} else {
		log.Info("loaded the running processes", "processes", n)
	}

	agent := &Agent{Source: src, Converter: tracker, Sink: client, Logger: log}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if rt, name, err := openRuntime(c); err != nil {
		return err
	} else if rt != nil {
		defer rt.Close()
		resolver := attrib.New(rt, attrib.Config{ProcRoot: c.ProcRoot, Logger: log.With("component", "attrib")})
		if err := resolver.Refresh(ctx); err != nil {
			log.Warn("listing the runtime's containers; retrying on demand", "runtime", name, "err", err)
		}
		go resolver.Run(ctx)
		agent.Attributor = resolver
	} else {
		log.Warn("no container runtime socket: events carry container ids from cgroup names only")
	}
	go logStats(ctx, c.StatsEvery, log, agent, tracker, client)
	return agent.Run(ctx)
}

// containerRuntime is a container runtime attribution can ask.
type containerRuntime interface {
	attrib.Source
	Close() error
}

// openRuntime connects to the CRI runtime or containerd the config names;
// nil when it names neither.
func openRuntime(c Config) (containerRuntime, string, error) {
	switch {
	case c.CRISocket != "":
		rt, err := attrib.DialCRI(c.CRISocket, attrib.CRIOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("connecting to the CRI runtime: %w", err)
		}
		return rt, c.CRISocket, nil
	case c.ContainerdSocket != "":
		rt, err := attrib.DialContainerd(c.ContainerdSocket, attrib.ContainerdOptions{Namespaces: c.ContainerdNamespaces})
		if err != nil {
			return nil, "", fmt.Errorf("connecting to containerd: %w", err)
		}
		return rt, c.ContainerdSocket, nil
	}
	return nil, "", nil
}

// openSource opens the eBPF probe, or the fallback where BPF is refused.
func openSource(c Config, log *slog.Logger) (Source, error) {
	switch c.Source {
	case "", SourceAuto, SourceBPF:
		p, err := probe.Open(probe.Options{Logger: log.With("component", "probe"), RingSize: c.RingSize})
		if err == nil {
			return p, nil
		}
		if c.Source == SourceBPF {
			return nil, fmt.Errorf("loading the eBPF sensor: %w", err)
		}
		log.Warn("eBPF is not available; falling back to the proc connector and fanotify (no DNS or connection events)", "err", err)
	case SourceProc:
	default:
		return nil, fmt.Errorf("unknown event source %q: want %s, %s or %s", c.Source, SourceAuto, SourceBPF, SourceProc)
	}
	f, err := fallback.Open(fallback.Options{Logger: log.With("component", "fallback"), HostRoot: c.HostRoot})
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("opening the proc connector (the sensor needs root): %w", err)
		}
		return nil, fmt.Errorf("opening the proc connector: %w", err)
	}
	return f, nil
}

// logStats logs the sensor's counters now and then.
func logStats(ctx context.Context, every time.Duration, log *slog.Logger, a *Agent, t *track.Tracker, c *transport.Client) {
	if every <= 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		as, ts, cs := a.Stats(), t.Stats(), c.Stats()
		attrs := []any{"read", as.Read, "converted", as.Sent, "malformed", as.Malformed,
			"processes", ts.Processes, "sent", cs.SentEvents, "dropped", cs.Dropped, "rejected", cs.Rejected,
			"spoolBytes", cs.SpoolBytes, "lastError", cs.LastError}
		// The fallback counts executions it could read only in part (the
		// process was gone before /proc was read).
		if in, ok := a.Source.(interface{ Incomplete() uint64 }); ok {
			attrs = append(attrs, "incomplete", in.Incomplete())
		}
		log.Info("sensor stats", attrs...)
	}
}
