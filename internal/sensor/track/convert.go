package track

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/sensor/dnsmsg"
	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Convert records ev in the table and, for an Exec, DNS or Connect event,
// returns the wire event reporting it, attributed to container c (nil for
// a process of the host). Fork and Exit events only update the table and
// return false; so do events that cannot be reported, which Stats counts:
// a DNS payload that is not a query, an event without a time or kind.
//
// Every returned event passes wire.Event.Validate. Its Process and
// Ancestors share Args slices with the table and with other events: they
// must not be modified.
func (t *Tracker) Convert(ev probe.Event, c *wire.Container) (wire.Event, bool) {
	var q *wire.DNSQuery
	if ev.Kind == probe.DNS {
		// Parsed outside the lock: the payload is the event's own.
		var ok bool
		if q, ok = t.question(ev); !ok {
			return wire.Event{}, false
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Time.IsZero() {
		t.stats.Invalid++
		return wire.Event{}, false
	}
	t.advance(ev.Time)
	switch ev.Kind {
	case probe.Fork:
		t.fork(ev)
		return wire.Event{}, false
	case probe.Exit:
		if p := t.procs[ev.TGID]; p != nil {
			t.exit(p, ev.Time)
		}
		return wire.Event{}, false
	case probe.Exec:
		p := t.exec(ev)
		return wire.Event{Kind: wire.KindExec, Time: ev.Time, Process: p.info, Ancestors: t.ancestors(p, ev.MntNS), Container: c}, true
	case probe.DNS:
		p := t.sender(ev)
		return wire.Event{Kind: wire.KindDNS, Time: ev.Time, Process: sender(p, ev), Ancestors: t.ancestors(p, ev.MntNS), Container: c, DNS: q}, true
	case probe.Connect:
		if !ev.Remote.IsValid() {
			t.stats.Invalid++
			return wire.Event{}, false
		}
		p := t.sender(ev)
		return wire.Event{Kind: wire.KindConnect, Time: ev.Time, Process: sender(p, ev), Ancestors: t.ancestors(p, ev.MntNS), Container: c, Remote: addrPort(ev.Remote)}, true
	}
	t.stats.Invalid++
	return wire.Event{}, false
}

// question decodes a DNS event's payload. A query the capture cut inside
// its name is kept with the labels before the cut and an empty type: a
// very long name is what DNS tunnelling looks like, so it must not vanish.
func (t *Tracker) question(ev probe.Event) (*wire.DNSQuery, bool) {
	msg, err := dnsmsg.Parse(ev.DNS)
	count := func(n *uint64) {
		t.mu.Lock()
		*n++
		t.mu.Unlock()
	}
	switch {
	case err != nil && !(errors.Is(err, dnsmsg.ErrTruncated) && msg.Truncated):
		count(&t.stats.DNSMalformed)
		return nil, false
	case !msg.Query:
		count(&t.stats.DNSNotQuery)
		return nil, false
	case msg.Truncated:
		count(&t.stats.DNSTruncated)
	}
	q := &wire.DNSQuery{Name: msg.Name, Type: msg.Type, Truncated: msg.Truncated}
	if ev.Remote.IsValid() {
		q.Server = addrPort(ev.Remote)
	}
	return q, true
}

// fork adds the new process ev reports. Until it executes a program it
// runs its parent's, with its parent's file descriptors.
func (t *Tracker) fork(ev probe.Event) {
	parent := t.procs[ev.PPID]
	p := &proc{key: key(ev)}
	if parent != nil && parent.state == alive {
		p.info = parent.info
	}
	p.info.PID, p.info.PPID, p.info.UID = ev.TGID, ev.PPID, ev.UID
	p.info.Comm = clean(ev.Comm, wire.MaxString)
	p.info.Start = ev.Time
	t.insert(p)
	t.setParent(p, parent)
}

// exec records the program a process now runs and returns the process.
func (t *Tracker) exec(ev probe.Event) *proc {
	p := t.procs[ev.TGID]
	if p == nil || p.state != alive {
		// The fork was lost, or predates the table.
		p = &proc{}
		p.info.PID = ev.TGID
		t.insert(p)
	} else {
		t.touch(p)
	}
	t.setParent(p, t.procs[ev.PPID])
	p.key = key(ev)
	t.changed(p)
	args, truncated := cleanArgs(ev.Args, ev.ArgsTruncated)
	p.info = wire.Process{
		PID:           ev.TGID,
		PPID:          ev.PPID,
		UID:           ev.UID,
		Comm:          clean(ev.Comm, wire.MaxString),
		Exe:           clean(ev.Filename, wire.MaxString),
		Args:          args,
		ArgsTruncated: truncated,
		Drift:         ev.Drift,
		Stdin:         fileType(ev.Stdin),
		Stdout:        fileType(ev.Stdout),
		Stderr:        fileType(ev.Stderr),
		Start:         ev.Time,
	}
	if ev.Remote.IsValid() {
		p.info.Remote = addrPort(ev.Remote)
	}
	return p
}

// sender returns the process that sent a DNS query or opened a
// connection, adding it to the table if it is not there: from /proc, or if
// that fails from the event alone.
func (t *Tracker) sender(ev probe.Event) *proc {
	if p := t.procs[ev.TGID]; p != nil {
		t.touch(p)
		if p.info.Comm != ev.Comm && p.state == alive {
			// prctl(PR_SET_NAME) renamed it; ancestors should say so too.
			p.info.Comm = clean(ev.Comm, wire.MaxString)
			t.changed(p)
		}
		return p
	}
	p := &proc{key: key(ev)}
	if info, k, err := t.readProc(ev.TGID); err == nil && info.Comm == ev.Comm && !info.Start.After(ev.Time) {
		// The comm and start time guard against a PID reused since.
		p.info, p.key.MntNS = info, k.MntNS
		t.stats.Loaded++
	} else {
		p.info.PID, p.info.UID = ev.TGID, ev.UID
	}
	p.info.PPID = ev.PPID
	p.info.Comm = clean(ev.Comm, wire.MaxString)
	t.insert(p)
	t.setParent(p, t.procs[ev.PPID])
	return p
}

// sender returns p as the sender of ev: the table's program and
// arguments, the kernel's current ids and name.
func sender(p *proc, ev probe.Event) wire.Process {
	info := p.info
	info.PID, info.PPID, info.UID = ev.TGID, ev.PPID, ev.UID
	if info.Comm != ev.Comm {
		info.Comm = clean(ev.Comm, wire.MaxString)
	}
	return info
}

// ancestors returns p's ancestry, nearest first, up to wire.MaxAncestors,
// ending with the first ancestor outside mount namespace mntns.
func (t *Tracker) ancestors(p *proc, mntns uint32) []wire.Process {
	if p.ancestry != nil && p.ancestryGen == t.gen && p.ancestryNS == mntns {
		return p.ancestry
	}
	var chain [wire.MaxAncestors]*proc
	n := 0
	for a := p.parent; a != nil && n < len(chain); a = a.parent {
		chain[n] = a
		n++
		if mntns != 0 && a.key.MntNS != 0 && a.key.MntNS != mntns {
			break
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]wire.Process, n)
	for i, a := range chain[:n] {
		out[i] = a.info
		t.touch(a)
	}
	p.ancestry, p.ancestryGen, p.ancestryNS = out, t.gen, mntns
	return out
}

func key(ev probe.Event) ContainerKey {
	return ContainerKey{CgroupID: ev.CgroupID, Cgroup: ev.Cgroup, MntNS: ev.MntNS}
}

// addrPort formats an address as the wire wants it: "IP:port", without a
// zone (the kernel gives none, and a zone is not an address).
func addrPort(ap netip.AddrPort) string {
	return netip.AddrPortFrom(ap.Addr().WithZone("").Unmap(), ap.Port()).String()
}

// fileType names a file type as the wire does; a type the wire does not
// know (a newer probe) is "other".
func fileType(f probe.FileType) string {
	if f > probe.FileOther {
		return probe.FileOther.String()
	}
	return f.String()
}

// cleanCut makes s fit a wire text field of at most max bytes: invalid UTF-8
// becomes U+FFFD, control characters \xNN, and it is cut at a character
// boundary. cut says it was cut.
func cleanCut(s string, max int) (string, bool) {
	i := 0
	for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		if len(s) <= max {
			return s, false
		}
		return s[:max], true
	}
	if i > max {
		return s[:max], true
	}
	var b strings.Builder
	b.Grow(min(len(s)+8, max))
	b.WriteString(s[:i])
	var esc [4]byte
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = string(utf8.RuneError)
		case r < 0x20 || r == 0x7f:
			const hex = "0123456789abcdef"
			esc = [4]byte{'\\', 'x', hex[r>>4], hex[r&0xf]}
			piece = string(esc[:])
		}
		if b.Len()+len(piece) > max {
			return b.String(), true
		}
		b.WriteString(piece)
		i += size
	}
	return b.String(), false
}

func clean(s string, max int) string {
	s, _ = cleanCut(s, max)
	return s
}

// cleanArgs bounds arguments to wire.MaxArgs and wire.MaxArgBytes, cleaning
// each, and says whether any were cut. Clean arguments within the bounds
// are returned as they are.
func cleanArgs(args []string, truncated bool) ([]string, bool) {
	if len(args) <= wire.MaxArgs {
		n := 0
		clean := true
		for _, a := range args {
			n += len(a)
			for i := 0; i < len(a) && clean; i++ {
				clean = a[i] >= 0x20 && a[i] < 0x7f
			}
		}
		if clean && n <= wire.MaxArgBytes {
			return args, truncated
		}
	}
	if len(args) > wire.MaxArgs {
		args, truncated = args[:wire.MaxArgs], true
	}
	out := make([]string, 0, len(args))
	budget := wire.MaxArgBytes
	for _, a := range args {
		c, cut := cleanCut(a, budget)
		if cut {
			if c != "" {
				out = append(out, c)
			}
			return out, true
		}
		out = append(out, c)
		budget -= len(c)
	}
	return out, truncated
}
