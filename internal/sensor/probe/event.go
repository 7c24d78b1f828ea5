package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Kind is what an Event reports.
type Kind uint8

// The kinds of events, numbered as enum event_kind in bpf/sensor.bpf.c.
const (
	Exec Kind = 1 // a process executed a new program
	Fork Kind = 2 // a new process was created
	Exit Kind = 3 // a process ended
	DNS  Kind = 4 // a process sent a UDP datagram to port 53
	// Connect: a process opened an outbound TCP connection (its SYN left
	// the host or went over loopback).
	Connect Kind = 5
)

// FileType is what one of a process's standard file descriptors refers to
// when it executes a program.
type FileType uint8

// The file types, numbered as enum file_type in bpf/sensor.bpf.c.
const (
	FileNone   FileType = 0 // not open, or not read
	FileReg    FileType = 1 // a regular file
	FilePipe   FileType = 2 // a pipe or FIFO
	FileChar   FileType = 3 // a character device: a terminal, /dev/null
	FileTCP    FileType = 4 // a TCP socket
	FileUDP    FileType = 5 // a UDP socket
	FileUnix   FileType = 6 // a Unix domain socket
	FileSocket FileType = 7 // another kind of socket
	FileOther  FileType = 8 // a directory, block device, anonymous inode …
)

func (f FileType) String() string {
	switch f {
	case FileNone:
		return ""
	case FileReg:
		return "file"
	case FilePipe:
		return "pipe"
	case FileChar:
		return "char"
	case FileTCP:
		return "tcp"
	case FileUDP:
		return "udp"
	case FileUnix:
		return "unix"
	case FileSocket:
		return "socket"
	case FileOther:
		return "other"
	}
	return fmt.Sprintf("file(%d)", uint8(f))
}

func (k Kind) String() string {
	switch k {
	case Exec:
		return "exec"
	case Fork:
		return "fork"
	case Exit:
		return "exit"
	case DNS:
		return "dns"
	case Connect:
		return "connect"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Event is one record from the kernel.
type Event struct {
	Kind Kind
	// Time is when the kernel saw the event, converted from the monotonic
	// clock to wall-clock time.
	Time time.Time
	// PID is the thread id, TGID the process id (what user space calls the
	// PID), PPID the parent's process id; UID is the real user id.
	PID, TGID, PPID, UID uint32
	// Comm is the task's command name (15 bytes at most); Filename is the
	// path the program was executed as (Exec only).
	Comm, Filename string
	// CgroupID is the task's cgroup v2 id. Cgroup is the last element of
	// its cgroup v2 path (for a container, usually its scope or id), or,
	// when that is the root as on cgroup v1 hosts, of its v1 memory
	// controller path.
	CgroupID uint64
	Cgroup   string
	// MntNS and NetNS are the inode numbers of the task's mount and network
	// namespaces.
	MntNS, NetNS uint32
	// Drift is set on Exec when the executable is in an overlayfs upper
	// layer: it was written or modified after the container started.
	Drift bool
	// DNS is the UDP payload of a DNS query, up to 256 bytes (DNS only).
	DNS []byte
	// Args are the program's arguments, argv[0] first (Exec only), cut
	// at a size bound; ArgsTruncated says some were cut.
	Args          []string
	ArgsTruncated bool
	// Stdin, Stdout and Stderr say what file descriptors 0, 1 and 2 refer
	// to when the program starts (Exec only).
	Stdin, Stdout, Stderr FileType
	// Remote is the peer of the connection: for Connect its destination,
	// for Exec the peer of the first of fd 0, 1, 2 that is a connected
	// TCP or UDP socket (a reverse shell's listener).
	Remote netip.AddrPort
}

// The layout of struct event in bpf/sensor.bpf.c.
const (
	offKind     = 0
	offDrift    = 1
	offDataLen  = 2
	offPID      = 4
	offTGID     = 8
	offPPID     = 12
	offUID      = 16
	offMntNS    = 20
	offNetNS    = 24
	offTime     = 32
	offCgroupID = 40
	offComm     = 48
	offCgroup   = offComm + commLen
	offData     = offCgroup + cgroupLen
	commLen     = 16
	cgroupLen   = 64
	dataLen     = 256
	eventSize   = offData + dataLen
)

// ErrMalformed marks a ring buffer record that is not a valid event.
var ErrMalformed = errors.New("malformed sensor event")

// Decode parses one ring buffer record. Records come from the kernel in
// host byte order; anything that does not match the layout written by
// bpf/sensor.bpf.c is an error wrapping ErrMalformed.
func Decode(raw []byte) (Event, error) {
	if len(raw) != eventSize {
		return Event{}, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(raw), eventSize)
	}
	ne := binary.NativeEndian
	e := Event{
		Kind:     Kind(raw[offKind]),
		PID:      ne.Uint32(raw[offPID:]),
		TGID:     ne.Uint32(raw[offTGID:]),
		PPID:     ne.Uint32(raw[offPPID:]),
		UID:      ne.Uint32(raw[offUID:]),
		MntNS:    ne.Uint32(raw[offMntNS:]),
		NetNS:    ne.Uint32(raw[offNetNS:]),
		CgroupID: ne.Uint64(raw[offCgroupID:]),
		Comm:     cString(raw[offComm : offComm+commLen]),
		Cgroup:   cString(raw[offCgroup : offCgroup+cgroupLen]),
	}
	if e.Kind < Exec || e.Kind > DNS {
		return Event{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, raw[offKind])
	}
	switch raw[offDrift] {
	case 0:
	case 1:
		e.Drift = true
	default:
		return Event{}, fmt.Errorf("%w: drift flag %d", ErrMalformed, raw[offDrift])
	}
	if e.Drift && e.Kind != Exec {
		return Event{}, fmt.Errorf("%w: drift flag on a %s event", ErrMalformed, e.Kind)
	}
	n := int(ne.Uint16(raw[offDataLen:]))
	data := raw[offData : offData+dataLen]
	switch {
	case n > dataLen:
		return Event{}, fmt.Errorf("%w: data length %d exceeds %d", ErrMalformed, n, dataLen)
	case e.Kind == DNS:
		e.DNS = bytes.Clone(data[:n])
	case n != 0:
		return Event{}, fmt.Errorf("%w: data length %d on a %s event", ErrMalformed, n, e.Kind)
	case e.Kind == Exec:
		e.Filename = cString(data)
	}
	ts := ne.Uint64(raw[offTime:])
	if ts > 1<<63-1 {
		return Event{}, fmt.Errorf("%w: timestamp %d out of range", ErrMalformed, ts)
	}
	e.Time = time.Unix(0, int64(ts)).Add(monotonicOffset())
	return e, nil
}

// cString returns b up to its first NUL, or all of b if it has none.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// monotonicOffset is wall-clock time minus the monotonic clock the kernel
// stamps events with (bpf_ktime_get_ns), measured once per process.
var monotonicOffset = sync.OnceValue(func() time.Duration {
	return time.Duration(time.Now().UnixNano() - monotonicNow())
})
