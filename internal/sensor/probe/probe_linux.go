package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// hook is one program of bpf/sensor.bpf.c and where it attaches.
type hook struct {
	name string // as logged and returned by Hooks
	prog string // the program's name in the object file
}

// hooks are tried in order; each loads and attaches on its own.
var hooks = []hook{
	{"tp_btf/sched_process_exec", "sensor_exec"},
	{"tp_btf/sched_process_fork", "sensor_fork"},
	{"tp_btf/sched_process_exit", "sensor_exit"},
	{"tp_btf/net_dev_queue", "sensor_dns"},
	{"tp_btf/inet_sock_set_state", "sensor_connect"},
}

// Probe is the loaded and attached sensor. Read is not safe for concurrent
// use; Close may be called from any goroutine.
type Probe struct {
	events *ebpf.Map
	drops  *ebpf.Map // per-CPU count of failed ring buffer reservations
	reader *ringbuf.Reader
	progs  map[string]*ebpf.Program // by hook name
	links  []link.Link
	hooks  []string
}

// Open loads the sensor programs, attaches every one the kernel accepts and
// logs the choice. It fails when none attaches, or when the process may not
// use BPF (it needs root, or CAP_BPF and CAP_PERFMON).
func Open(o Options) (*Probe, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	size := o.RingSize
	if size == 0 {
		size = DefaultRingSize
	}
	if page := os.Getpagesize(); size < page || size%page != 0 || size&(size-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two multiple of the page size %d", size, page)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising the memlock limit for BPF failed: %w", permissionHint(err))
	}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded sensor object failed: %w", err)
	}
	// Set on the spec itself: each program's copy must match the map
	// that replaces its own.
	spec.Maps["events"].MaxEntries = uint32(size)
	events, err := ebpf.NewMap(spec.Maps["events"])
	if err != nil {
		return nil, fmt.Errorf("creating the events ring buffer failed: %w", permissionHint(err))
	}
	drops, err := ebpf.NewMap(spec.Maps["drops"])
	if err != nil {
		events.Close()
		return nil, fmt.Errorf("creating the drop counter map failed: %w", permissionHint(err))
	}
	p := &Probe{events: events, drops: drops, progs: map[string]*ebpf.Program{}}
	shared := map[string]*ebpf.Map{"events": events, "drops": drops}
	var failed []error
	for _, h := range hooks {
		prog, l, err := attach(spec, shared, h)
		if err != nil {
			log.Warn("sensor hook unavailable", "hook", h.name, "err", err)
			failed = append(failed, err)
			continue
		}
		p.progs[h.name] = prog
		p.links = append(p.links, l)
		p.hooks = append(p.hooks, h.name)
	}
	if len(p.hooks) == 0 {
		p.Close()
		return nil, fmt.Errorf("no sensor hook attached: %w", permissionHint(errors.Join(failed...)))
	}
	p.reader, err = ringbuf.NewReader(events)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("opening the events ring buffer failed: %w", err)
	}
	log.Info("sensor probe attached", "hooks", p.hooks, "unavailable", len(failed), "ring_size", size)
	return p, nil
}

// attach loads h's program alone, sharing the maps all programs write,
// and attaches it.
func attach(spec *ebpf.CollectionSpec, shared map[string]*ebpf.Map, h hook) (*ebpf.Program, link.Link, error) {
	ps, ok := spec.Programs[h.prog]
	if !ok {
		return nil, nil, fmt.Errorf("program %s for %s missing from the sensor object", h.prog, h.name)
	}
	one := spec.Copy()
	one.Programs = map[string]*ebpf.ProgramSpec{h.prog: ps.Copy()}
	coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
		MapReplacements: shared,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s failed: %w", h.name, err)
	}
	prog := coll.DetachProgram(h.prog)
	coll.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	if err != nil {
		prog.Close()
		return nil, nil, fmt.Errorf("attaching %s failed: %w", h.name, err)
	}
	return prog, l, nil
}

// permissionHint names the missing privilege when err is a permission error.
func permissionHint(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("BPF needs root or CAP_BPF and CAP_PERFMON: %w", err)
	}
	return err
}

// Hooks returns the hooks that are attached, such as
// "tp_btf/sched_process_exec".
func (p *Probe) Hooks() []string { return append([]string(nil), p.hooks...) }

// pollInterval bounds how long an event can wait in the ring buffer: the
// programs wake the reader only when the ring fills up, to keep their cost
// per event low, so Read also looks at the ring this often.
const pollInterval = 50 * time.Millisecond

// Read waits for the next event. A record that does not decode is returned
// as an error wrapping ErrMalformed, and reading may go on. After Close,
// Read returns an error wrapping os.ErrClosed.
func (p *Probe) Read(ctx context.Context) (Event, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		p.reader.SetDeadline(time.Now().Add(pollInterval))
		rec, err := p.reader.Read()
		switch {
		case err == nil:
			return Decode(rec.RawSample)
		case errors.Is(err, os.ErrDeadlineExceeded):
			continue
		case errors.Is(err, ringbuf.ErrClosed):
			return Event{}, fmt.Errorf("reading sensor events failed: %w", os.ErrClosed)
		default:
			return Event{}, fmt.Errorf("reading sensor events failed: %w", err)
		}
	}
}

// Drops returns how many events the programs lost because the ring buffer
// was full, since Open: the reader fell behind.
func (p *Probe) Drops() (uint64, error) {
	var perCPU []uint64
	if err := p.drops.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("reading the sensor's drop counter failed: %w", err)
	}
	var n uint64
	for _, c := range perCPU {
		n += c
	}
	return n, nil
}

// Close detaches and unloads the programs and frees the ring buffer.
func (p *Probe) Close() error {
	if p.events == nil {
		return nil
	}
	var errs []error
	for _, l := range p.links {
		errs = append(errs, l.Close())
	}
	if p.reader != nil {
		errs = append(errs, p.reader.Close())
	}
	for _, prog := range p.progs {
		errs = append(errs, prog.Close())
	}
	errs = append(errs, p.events.Close(), p.drops.Close())
	p.links, p.progs, p.events, p.drops = nil, nil, nil, nil
	return errors.Join(errs...)
}
