package fallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
)

// Source reads process events from the proc connector and fanotify. Read
// is not safe for concurrent use; Close may be called from any goroutine.
type Source struct {
	log   *slog.Logger
	nl    *os.File // the netlink socket, non-blocking, in the runtime poller
	raw   syscall.RawConn
	hooks []string
	drops atomic.Uint64
	// incomplete counts forks and execs delivered with fields /proc no
	// longer had.
	incomplete atomic.Uint64

	events   chan item
	done     chan struct{} // closed by Close
	loopDone chan struct{} // closed when the reading goroutine returns
	closing  sync.Once
	closeErr error
	// err is why the reading goroutine stopped; set before events is
	// closed.
	err error

	// Owned by the reading goroutine.
	proc    *procfs
	fan     *fanWatch // nil without fanotify
	tasks   map[uint32]task
	offset  time.Duration // wall clock minus CLOCK_MONOTONIC
	pending []procEvent
}

// item is an event or a malformed message, in the order read.
type item struct {
	e   probe.Event
	err error
}

// maxTasks bounds the task fields kept from exec and fork for the exit
// events; only exits missed to overruns leave entries behind, and the
// cache starts over when it is full.
const maxTasks = 1 << 16

// Open subscribes to the proc connector and, unless o.NoFanotify, sets up
// fanotify, marking the overlays mounted now. It fails when the proc
// connector is refused (it needs CAP_NET_ADMIN in the initial user and pid
// namespaces); fanotify that is refused is logged and left out.
func Open(o Options) (*Source, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	rcvbuf := o.ReceiveBuffer
	if rcvbuf == 0 {
		rcvbuf = DefaultReceiveBuffer
	}
	queue := o.Queue
	if queue == 0 {
		queue = DefaultQueue
	}
	if rcvbuf < 0 || queue < 0 {
		return nil, fmt.Errorf("receive buffer %d and queue %d must not be negative", rcvbuf, queue)
	}
	proc, err := newProcfs(o.HostRoot)
	if err != nil {
		return nil, err
	}
	s := &Source{
		log:      log,
		events:   make(chan item, queue),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
		proc:     proc,
		tasks:    map[uint32]task{},
		offset:   monotonicOffset(),
	}
	if err := s.subscribe(rcvbuf); err != nil {
		return nil, err
	}
	s.hooks = append(s.hooks, HookProcConnector)
	if !o.NoFanotify {
		fan, err := newFanWatch(proc, log)
		if err != nil {
			log.Warn("fanotify unavailable: dropped scripts will not be seen", "err", err)
		} else {
			s.fan = fan
			s.hooks = append(s.hooks, HookFanotify)
		}
	}
	go s.loop()
	log.Info("fallback sensor attached", "hooks", s.hooks, "receive_buffer", rcvbuf)
	return s, nil
}

// subscribe opens the netlink socket, joins the proc connector's group and
// asks the kernel to report process events.
func (s *Source) subscribe(rcvbuf int) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return fmt.Errorf("opening a NETLINK_CONNECTOR socket failed: %w", err)
	}
	// SO_RCVBUFFORCE passes the rmem_max limit (root only); fall back to
	// what an unprivileged setting allows.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			unix.Close(fd)
			return fmt.Errorf("setting the netlink receive buffer to %d bytes failed: %w", rcvbuf, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("joining the proc connector group failed: %w", permissionHint(err))
	}
	if err := unix.Sendto(fd, mcastMessage(procMcastOn, 1), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("subscribing to the proc connector failed: %w", permissionHint(err))
	}
	s.nl = os.NewFile(uintptr(fd), "netlink-proc-connector")
	raw, err := s.nl.SyscallConn()
	if err != nil {
		s.nl.Close()
		return fmt.Errorf("polling the netlink socket failed: %w", err)
	}
	s.raw = raw
	return nil
}

// permissionHint names the missing privilege when err is a permission error.
func permissionHint(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("the proc connector needs root (CAP_NET_ADMIN) in the initial namespaces: %w", err)
	}
	return err
}

// Hooks returns what is attached: HookProcConnector, and HookFanotify
// when fanotify was permitted.
func (s *Source) Hooks() []string { return append([]string(nil), s.hooks...) }

// Drops returns how often events were lost since Open: netlink receive
// buffer overruns (each loses one or more events) and fanotify queue
// overflows.
func (s *Source) Drops() (uint64, error) { return s.drops.Load(), nil }

// Incomplete returns how many fork and exec events since Open were
// delivered with fields left zero because /proc no longer had them:
// almost always a process that exited before its event was read, which a
// burst of events or a busy node makes more likely. Each is logged at
// debug level with what is missing.
func (s *Source) Incomplete() uint64 { return s.incomplete.Load() }

// Read waits for the next event. A message that does not parse is
// returned as an error wrapping ErrMalformed, and reading may go on.
// After Close, Read returns an error wrapping os.ErrClosed.
func (s *Source) Read(ctx context.Context) (probe.Event, error) {
	select {
	case <-s.done:
		return probe.Event{}, fmt.Errorf("reading process events failed: %w", os.ErrClosed)
	default:
	}
	select {
	case it, ok := <-s.events:
		if !ok {
			return probe.Event{}, s.err
		}
		return it.e, it.err
	case <-s.done:
		return probe.Event{}, fmt.Errorf("reading process events failed: %w", os.ErrClosed)
	case <-ctx.Done():
		return probe.Event{}, ctx.Err()
	}
}

// Close unsubscribes, stops reading and closes the descriptors.
func (s *Source) Close() error {
	s.closing.Do(func() {
		close(s.done)
		var errs []error
		// Kernels before 6.6 count listeners and keep reporting until
		// told to stop.
		err := s.raw.Write(func(fd uintptr) bool {
			err := unix.Sendto(int(fd), mcastMessage(procMcastOff, 2), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
			if err != nil && !errors.Is(err, unix.EAGAIN) {
				errs = append(errs, fmt.Errorf("unsubscribing from the proc connector failed: %w", err))
			}
			return true
		})
		errs = append(errs, err, s.nl.Close())
		<-s.loopDone
		if s.fan != nil {
			errs = append(errs, s.fan.close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// loop reads the netlink socket until Close, enriching each event at once,
// while its process is most likely still there.
func (s *Source) loop() {
	defer close(s.loopDone)
	defer close(s.events)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.recv(buf)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOBUFS):
			// The kernel dropped messages for want of buffer space.
			s.drops.Add(1)
			continue
		case isClosed(s.done):
			s.err = fmt.Errorf("reading process events failed: %w", os.ErrClosed)
			return
		default:
			s.err = fmt.Errorf("reading the proc connector failed: %w", err)
			return
		}
		var perr error
		s.pending, perr = parseMessages(s.pending[:0], buf[:n])
		for _, pe := range s.pending {
			e, ok := s.handle(pe)
			if ok && !s.send(item{e: e}) {
				return
			}
		}
		if perr != nil && !s.send(item{err: perr}) {
			return
		}
	}
}

// errNotKernel marks a datagram sent to the socket by a process: it is
// ignored, since anyone may unicast to a netlink port.
var errNotKernel = errors.New("netlink message not from the kernel")

// recv reads one datagram from the kernel; datagrams from processes are
// skipped.
func (s *Source) recv(buf []byte) (int, error) {
	for {
		var n, flags int
		var from unix.Sockaddr
		var rerr error
		err := s.raw.Read(func(fd uintptr) bool {
			n, _, flags, from, rerr = unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
			return !errors.Is(rerr, unix.EAGAIN) && !errors.Is(rerr, unix.EINTR)
		})
		if err != nil {
			return 0, err
		}
		if rerr != nil {
			return 0, rerr
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			s.log.Debug("ignoring a netlink datagram", "err", errNotKernel)
			continue
		}
		if flags&unix.MSG_TRUNC != 0 {
			return 0, fmt.Errorf("%w: netlink datagram larger than %d bytes", ErrMalformed, len(buf))
		}
		return n, nil
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// send queues it for Read; false when the source is closing.
func (s *Source) send(it item) bool {
	select {
	case s.events <- it:
		return true
	case <-s.done:
		return false
	}
}

// handle turns one proc connector event into a probe.Event; ok is false
// for acknowledgements and threads.
func (s *Source) handle(pe procEvent) (probe.Event, bool) {
	e := probe.Event{PID: pe.pid, TGID: pe.tgid, Time: s.eventTime(pe.time)}
	switch pe.what {
	case procEventNone:
		if pe.ackErr != 0 {
			s.log.Warn("the proc connector refused the subscription", "errno", syscall.Errno(pe.ackErr))
		}
		return probe.Event{}, false
	case procEventFork:
		// Threads are clones sharing the thread group; the sensor tracks
		// processes, as the probe does.
		if pe.pid != pe.tgid {
			return probe.Event{}, false
		}
		e.Kind, e.PPID = probe.Fork, pe.parentTGID
		t, g := s.proc.fork(pe.tgid, &e)
		s.noteGaps(&e, g)
		s.remember(pe.tgid, t)
	case procEventExec:
		e.Kind = probe.Exec
		var opens []execOpen
		if s.fan != nil {
			s.fan.watchRoot(pe.tgid)
			if d := s.fan.drain(); d > 0 {
				s.drops.Add(d)
			}
			opens = s.fan.take(pe.tgid)
		}
		t, g := s.proc.exec(pe.tgid, &e, opens)
		s.noteGaps(&e, g)
		s.remember(pe.tgid, t)
	case procEventExit:
		if pe.pid != pe.tgid {
			return probe.Event{}, false
		}
		e.Kind, e.PPID = probe.Exit, pe.parentTGID
		if t, ok := s.tasks[pe.tgid]; ok {
			t.fill(&e)
			delete(s.tasks, pe.tgid)
		} else {
			s.proc.exited(pe.tgid, &e)
		}
		if s.fan != nil {
			s.fan.forget(pe.tgid)
		}
	}
	return e, true
}

// noteGaps counts and logs an event enriched only in part.
func (s *Source) noteGaps(e *probe.Event, g gaps) {
	if g == 0 {
		return
	}
	s.incomplete.Add(1)
	s.log.Debug("process event enriched in part", "kind", e.Kind, "pid", e.TGID, "missing", g.String())
}

func (s *Source) remember(tgid uint32, t task) {
	if len(s.tasks) >= maxTasks {
		clear(s.tasks)
	}
	s.tasks[tgid] = t
}

// eventTime converts the kernel's CLOCK_MONOTONIC stamp to wall-clock time.
func (s *Source) eventTime(ns uint64) time.Time {
	if ns > 1<<63-1 {
		return time.Now()
	}
	return time.Unix(0, int64(ns)).Add(s.offset)
}

// monotonicOffset is wall-clock time minus CLOCK_MONOTONIC, the clock of
// the proc connector's timestamps.
func monotonicOffset() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(time.Now().UnixNano() - ts.Nano())
}
