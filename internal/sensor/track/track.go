// Package track keeps the node sensor's table of processes and turns the
// kernel probe's events into the events the sensor sends to the server.
//
// The table is built from probe Fork, Exec and Exit events, seeded by a
// scan of /proc so that processes older than the sensor have ancestry, and
// filled from /proc for a process first seen sending DNS or connecting
// (its fork was lost). For each process it keeps what the server's
// detections ask about an event's process and its ancestors: the program,
// bounded arguments, user, drift, standard file descriptors, and its
// container key. Exited processes stay a short while, so that an event
// racing the exit still finds its process, and longer while a child in the
// table still names them as parent, so that "nginx → sh → curl" survives
// the shell exiting first.
//
// Ancestry follows the lineage the table saw: a process's parent is the
// process that forked it, even after the kernel reparented it to init or a
// subreaper, so an ancestor's PID may differ from the event's PPID. The walk
// stops at the container boundary: it includes ancestors up to and
// including the first one in another mount namespace (for a container,
// containerd-shim or runc), since what lies above that is the node's
// plumbing, the same for every container, and would crowd out nothing but
// cost bytes on every event.
//
// The package owns the table and the conversion to wire events. It does not
// read the kernel (package probe), attribute processes to containers (the
// caller passes the container) or judge events (the server does).
package track

import (
	"log/slog"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Defaults for Config.
const (
	DefaultProcRoot     = "/proc"
	DefaultMaxProcesses = 16384
	DefaultExitDelay    = 2 * time.Second
)

// Config configures a Tracker. The zero value uses the defaults.
type Config struct {
	// ProcRoot is where the host's procfs is mounted: /proc, or for a
	// sensor in a container the host's /proc mounted elsewhere.
	ProcRoot string
	// CgroupRoot is the cgroup v2 mount, used to find the cgroup ids of
	// processes read from /proc. Empty: /sys/fs/cgroup/unified on a hybrid
	// host, else /sys/fs/cgroup.
	CgroupRoot string
	// MaxProcesses bounds the table. Each entry holds at most
	// wire.MaxArgBytes of arguments, so the worst case is about
	// MaxProcesses × 4.5 KiB; a typical node's processes take a few MiB.
	MaxProcesses int
	// ExitDelay is how long an exited process stays in the table, in event
	// time.
	ExitDelay time.Duration
	Logger    *slog.Logger
}

// ContainerKey is what the kernel says about the container a process runs
// in, the input of container attribution.
type ContainerKey struct {
	// CgroupID is the process's cgroup v2 id and Cgroup the last element
	// of its cgroup path, as probe.Event reports them.
	CgroupID uint64
	Cgroup   string
	// MntNS is the inode of its mount namespace; 0 when unknown.
	MntNS uint32
}

// Stats counts what the tracker did, for the sensor's metrics.
type Stats struct {
	// Processes is the number of processes in the table, Exited the
	// number of those that have exited.
	Processes, Exited int
	// Evicted counts processes removed to keep the table bounded.
	Evicted uint64
	// Loaded counts processes first seen in a DNS or connect event and
	// read from /proc.
	Loaded uint64
	// DNSMalformed counts DNS events dropped because their payload is not
	// a DNS message; DNSNotQuery those dropped because it is a response;
	// DNSTruncated those sent with a name the capture cut short.
	DNSMalformed, DNSNotQuery, DNSTruncated uint64
	// Invalid counts events dropped because they cannot make a valid wire
	// event: unknown kind, no time, a connect without a destination.
	Invalid uint64
}

// Tracker is the process table. It is safe for concurrent use: the sensor
// feeds it from one goroutine, and the /proc scan may run alongside.
type Tracker struct {
	procRoot, cgroupRoot string
	max                  int
	delay                time.Duration
	log                  *slog.Logger

	bootOnce sync.Once
	boot     time.Time
	bootErr  error

	mu sync.Mutex
	// procs holds every process in the table by PID. live is in least
	// recently used order, exited in exit order, and lingering holds
	// exited processes past their delay kept because a child names them.
	procs                   map[uint32]*proc
	live, exited, lingering list
	now                     time.Time // the latest event time seen
	// gen changes whenever a process with children changes or goes, which
	// is when a cached ancestry may be stale.
	gen   uint64
	stats Stats
}

// proc is one process in the table.
type proc struct {
	// info is the process as sent: already cleaned and bounded, shared
	// (with its Args) by the events that carry it.
	info wire.Process
	key  ContainerKey
	// parent is the process that forked this one, if known. A parent
	// removed from the table stays reachable here, without its own
	// parent, until this process goes.
	parent *proc
	// children counts processes whose parent this is.
	children int
	exitAt   time.Time
	state    state
	// ancestry caches the ancestors last computed, for table generation
	// ancestryGen and mount namespace ancestryNS: a busy process sends many
	// queries, its lineage rarely changes.
	ancestry    []wire.Process
	ancestryGen uint64
	ancestryNS  uint32

	list       *list
	prev, next *proc
}

type state uint8

const (
	alive state = iota
	exited
	lingering
	removed
)

// New returns an empty tracker. Fill it from /proc with Scan.
func New(cfg Config) *Tracker {
	t := &Tracker{
		procRoot:   cfg.ProcRoot,
		cgroupRoot: cfg.CgroupRoot,
		max:        cfg.MaxProcesses,
		delay:      cfg.ExitDelay,
		log:        cfg.Logger,
		procs:      make(map[uint32]*proc),
	}
	if t.procRoot == "" {
		t.procRoot = DefaultProcRoot
	}
	if t.cgroupRoot == "" {
		t.cgroupRoot = defaultCgroupRoot()
	}
	if t.max <= 0 {
		t.max = DefaultMaxProcesses
	}
	if t.delay <= 0 {
		t.delay = DefaultExitDelay
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	return t
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Processes = len(t.procs)
	s.Exited = t.exited.n + t.lingering.n
	return s
}

// Entry is what the table knows about a process.
type Entry struct {
	// Process is the process as an event carries it.
	Process wire.Process
	Key     ContainerKey
	// Exited says the process has exited and is kept for a while.
	Exited bool
}

// Lookup returns the table's entry for a process.
func (t *Tracker) Lookup(pid uint32) (Entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.procs[pid]
	if p == nil {
		return Entry{}, false
	}
	return Entry{Process: p.info, Key: p.key, Exited: p.state != alive}, true
}

// insert puts p in the table under its PID, replacing a previous process
// with that PID and evicting one if the table is full.
func (t *Tracker) insert(p *proc) {
	if old := t.procs[p.info.PID]; old != nil {
		t.remove(old)
	}
	for len(t.procs) >= t.max {
		victim := t.exited.front()
		if victim == nil {
			victim = t.lingering.front()
		}
		if victim == nil {
			victim = t.live.front()
		}
		t.remove(victim)
		t.stats.Evicted++
	}
	t.procs[p.info.PID] = p
	p.state = alive
	t.live.pushBack(p)
}

// setParent makes parent p's parent, if parent is a running process.
func (t *Tracker) setParent(p, parent *proc) {
	if parent == nil || parent.state != alive || parent == p || p.parent != nil {
		return
	}
	p.parent = parent
	parent.children++
	t.changed(p)
}

// changed notes that p's process or lineage changed: the ancestries that
// include it are stale.
func (t *Tracker) changed(p *proc) {
	p.ancestry = nil
	if p.children > 0 {
		t.gen++
	}
}

// remove takes p out of the table. Its parent loses a child, and a
// lingering parent left without children goes too.
func (t *Tracker) remove(p *proc) {
	for p != nil && p.state != removed {
		if t.procs[p.info.PID] == p {
			delete(t.procs, p.info.PID)
		}
		if p.list != nil {
			p.list.unlink(p)
		}
		p.state = removed
		t.changed(p)
		parent := p.parent
		p.parent = nil
		p = nil
		if parent != nil {
			parent.children--
			if parent.children == 0 && parent.state == lingering {
				p = parent
			}
		}
	}
}

// exit marks p exited at when.
func (t *Tracker) exit(p *proc, when time.Time) {
	if p.state != alive {
		return
	}
	p.list.unlink(p)
	p.state = exited
	p.exitAt = when
	t.exited.pushBack(p)
}

// advance moves the tracker's clock to when and removes the exited
// processes whose delay has passed.
func (t *Tracker) advance(when time.Time) {
	if when.After(t.now) {
		t.now = when
	}
	for p := t.exited.front(); p != nil && !p.exitAt.Add(t.delay).After(t.now); p = t.exited.front() {
		if p.children == 0 {
			t.remove(p)
			continue
		}
		t.exited.unlink(p)
		p.state = lingering
		t.lingering.pushBack(p)
	}
}

// touch marks a running process as recently used.
func (t *Tracker) touch(p *proc) {
	if p.state == alive && t.live.tail != p {
		t.live.unlink(p)
		t.live.pushBack(p)
	}
}

// list is an intrusive doubly linked list of procs.
type list struct {
	head, tail *proc
	n          int
}

func (l *list) front() *proc { return l.head }

func (l *list) pushBack(p *proc) {
	p.list, p.prev, p.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = p
	} else {
		l.head = p
	}
	l.tail = p
	l.n++
}

func (l *list) unlink(p *proc) {
	if p.list != l {
		return
	}
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		l.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		l.tail = p.prev
	}
	p.list, p.prev, p.next = nil, nil, nil
	l.n--
}
