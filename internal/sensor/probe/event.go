package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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
	// Connect: a process started an outbound TCP connection (connect()
	// put its socket in SYN_SENT), whether or not it was then accepted.
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

// The layout of the records bpf/sensor.bpf.c writes: every record starts
// with struct event (headerSize bytes, all a fork, exit or connect record
// has); exec and DNS records append a data area. The C asserts the same
// offsets (LAYOUT and SIZE), and TestLayoutMatchesC compares the two.
const (
	offKind         = 0
	offFlags        = 1
	offDataLen      = 2
	offPID          = 4
	offTGID         = 8
	offPPID         = 12
	offUID          = 16
	offMntNS        = 20
	offNetNS        = 24
	offStdio        = 28
	offRemoteFamily = 31
	offTime         = 32
	offCgroupID     = 40
	offComm         = 48
	offCgroup       = offComm + commLen
	offRemoteAddr   = offCgroup + cgroupLen
	offRemotePort   = offRemoteAddr + 16
	headerSize      = offRemotePort + 8
	offData         = headerSize
	commLen         = 16
	cgroupLen       = 64
	// filenameLen bounds an exec's filename with its NUL; argsLen its
	// argument block.
	filenameLen   = 256
	argsLen       = 1024
	dnsLen        = 256
	execEventSize = headerSize + filenameLen + argsLen
	dnsEventSize  = headerSize + dnsLen
)

// Flags of struct event, enum event_flag in bpf/sensor.bpf.c.
const (
	flagDrift         = 1
	flagArgsTruncated = 2
	knownFlags        = flagDrift | flagArgsTruncated
)

// Address families of struct event's remote_family, from linux/socket.h.
const (
	afInet  = 2
	afInet6 = 10
)

// ErrMalformed marks a ring buffer record that is not a valid event.
var ErrMalformed = errors.New("malformed sensor event")

// Decode parses one ring buffer record. Records come from the kernel in
// host byte order; anything that does not match the layout written by
// bpf/sensor.bpf.c is an error wrapping ErrMalformed. The argument block
// is user memory and is only split, never trusted to be well formed.
func Decode(raw []byte) (Event, error) {
	if len(raw) < headerSize {
		return Event{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(raw), headerSize)
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
	want, bound := headerSize, 0 // record size, data area bound
	switch e.Kind {
	case Exec:
		want, bound = execEventSize, filenameLen+argsLen
	case DNS:
		want, bound = dnsEventSize, dnsLen
	case Fork, Exit, Connect:
	default:
		return Event{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, raw[offKind])
	}
	if len(raw) != want {
		return Event{}, fmt.Errorf("%w: %s record of %d bytes, want %d", ErrMalformed, e.Kind, len(raw), want)
	}
	flags := raw[offFlags]
	if flags&^knownFlags != 0 || flags != 0 && e.Kind != Exec {
		return Event{}, fmt.Errorf("%w: flags %#x on a %s event", ErrMalformed, flags, e.Kind)
	}
	e.Drift = flags&flagDrift != 0
	e.ArgsTruncated = flags&flagArgsTruncated != 0
	n := int(ne.Uint16(raw[offDataLen:]))
	if n > bound {
		return Event{}, fmt.Errorf("%w: data length %d exceeds %d on a %s event", ErrMalformed, n, bound, e.Kind)
	}
	data := raw[offData : offData+n]
	switch e.Kind {
	case Exec:
		if err := decodeExec(&e, data); err != nil {
			return Event{}, err
		}
	case DNS:
		e.DNS = bytes.Clone(data)
	}
	if err := decodeStdio(&e, raw[offStdio:offStdio+3]); err != nil {
		return Event{}, err
	}
	if err := decodeRemote(&e, raw); err != nil {
		return Event{}, err
	}
	ts := ne.Uint64(raw[offTime:])
	if ts > 1<<63-1 {
		return Event{}, fmt.Errorf("%w: timestamp %d out of range", ErrMalformed, ts)
	}
	e.Time = time.Unix(0, int64(ts)).Add(monotonicOffset())
	return e, nil
}

// decodeExec splits an exec's data area: the filename and its NUL, then
// the NUL-separated arguments. A final argument without a NUL is one cut at
// the bound (or rewritten by a racing process) and is kept as it is.
func decodeExec(e *Event, data []byte) error {
	i := bytes.IndexByte(data, 0)
	if i < 0 || i >= filenameLen {
		return fmt.Errorf("%w: exec filename not NUL-terminated within %d bytes", ErrMalformed, filenameLen)
	}
	args := data[i+1:]
	if len(args) > argsLen {
		return fmt.Errorf("%w: exec arguments of %d bytes exceed %d", ErrMalformed, len(args), argsLen)
	}
	// One string for the whole area; the filename and arguments share it.
	all := string(data)
	e.Filename = all[:i]
	if len(args) == 0 {
		return nil
	}
	rest := strings.TrimSuffix(all[i+1:], "\x00")
	e.Args = make([]string, 0, strings.Count(rest, "\x00")+1)
	for a := range strings.SplitSeq(rest, "\x00") {
		e.Args = append(e.Args, a)
	}
	return nil
}

// decodeStdio reads the file types of descriptors 0, 1 and 2 (exec only).
func decodeStdio(e *Event, b []byte) error {
	types := [3]*FileType{&e.Stdin, &e.Stdout, &e.Stderr}
	for i, t := range b {
		if t > uint8(FileOther) || t != 0 && e.Kind != Exec {
			return fmt.Errorf("%w: file type %d of fd %d on a %s event", ErrMalformed, t, i, e.Kind)
		}
		*types[i] = FileType(t)
	}
	return nil
}

// decodeRemote reads the peer address (exec and connect; required on
// connect). A v4-mapped IPv6 peer is unmapped: it is an IPv4 connection.
func decodeRemote(e *Event, raw []byte) error {
	addr := raw[offRemoteAddr : offRemoteAddr+16]
	port := binary.NativeEndian.Uint16(raw[offRemotePort:])
	switch fam := raw[offRemoteFamily]; {
	case fam == 0:
		if e.Kind == Connect || port != 0 || !allZero(addr) {
			return fmt.Errorf("%w: %s event without a remote address family", ErrMalformed, e.Kind)
		}
		return nil
	case e.Kind != Exec && e.Kind != Connect:
		return fmt.Errorf("%w: remote address on a %s event", ErrMalformed, e.Kind)
	case fam == afInet:
		if !allZero(addr[4:]) {
			return fmt.Errorf("%w: IPv4 remote address with trailing bytes", ErrMalformed)
		}
		e.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr)), port)
	case fam == afInet6:
		e.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(addr)).Unmap(), port)
	default:
		return fmt.Errorf("%w: remote address family %d", ErrMalformed, fam)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
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
