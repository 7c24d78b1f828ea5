package fallback

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed marks a kernel message that does not match its ABI.
var ErrMalformed = errors.New("malformed kernel message")

// The netlink, connector and proc connector ABI: linux/netlink.h,
// linux/connector.h and linux/cn_proc.h. Written out here, not taken from
// x/sys, so that the parsers and their fuzz targets build everywhere.
const (
	nlmsgHdrLen  = 16 // struct nlmsghdr
	nlmsgNoop    = 1
	nlmsgError   = 2
	nlmsgDone    = 3
	cnMsgHdrLen  = 20 // struct cn_msg before its data
	cnIdxProc    = 1
	cnValProc    = 1
	procHdrLen   = 16 // what, cpu, timestamp_ns of struct proc_event
	procMcastOn  = 1  // PROC_CN_MCAST_LISTEN
	procMcastOff = 2  // PROC_CN_MCAST_IGNORE

	procEventNone = 0x00000000
	procEventFork = 0x00000001
	procEventExec = 0x00000002
	procEventExit = 0x80000000
)

// procEvent is one proc connector event.
type procEvent struct {
	what uint32
	// time is the kernel's CLOCK_MONOTONIC time of the event.
	time uint64
	// pid and tgid are the new process's for fork, otherwise the
	// process's; parentTGID is the parent's process id (fork and exit).
	pid, tgid  uint32
	parentTGID uint32
	// ackErr is the errno of a PROC_EVENT_NONE acknowledgement.
	ackErr uint32
}

// parseMessages appends the proc connector events in b, one datagram from
// the netlink socket, to dst. Events of kinds the sensor does not use
// (uid, sid, comm changes …) are skipped; anything that does not fit the
// ABI is an error wrapping ErrMalformed, with the events before it kept.
func parseMessages(dst []procEvent, b []byte) ([]procEvent, error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return dst, fmt.Errorf("%w: %d trailing bytes, shorter than a netlink header", ErrMalformed, len(b))
		}
		n := int(ne.Uint32(b))
		typ := ne.Uint16(b[4:])
		if n < nlmsgHdrLen || n > len(b) {
			return dst, fmt.Errorf("%w: netlink message length %d with %d bytes left", ErrMalformed, n, len(b))
		}
		body := b[nlmsgHdrLen:n]
		// NLMSG_ALIGN: the next message starts at a 4-byte boundary, and
		// the last one may be unpadded.
		next := min((n+3)&^3, len(b))
		b = b[next:]
		switch typ {
		case nlmsgNoop:
			continue
		case nlmsgDone: // the connector sends every message as NLMSG_DONE
		case nlmsgError:
			if len(body) < 4 {
				return dst, fmt.Errorf("%w: netlink error message of %d bytes", ErrMalformed, len(body))
			}
			return dst, fmt.Errorf("%w: netlink error %d", ErrMalformed, -int32(ne.Uint32(body)))
		default:
			return dst, fmt.Errorf("%w: netlink message type %d", ErrMalformed, typ)
		}
		ev, ok, err := parseConnector(body)
		if err != nil {
			return dst, err
		}
		if ok {
			dst = append(dst, ev)
		}
	}
	return dst, nil
}

// parseConnector parses one struct cn_msg carrying a struct proc_event.
// ok is false for an event of a kind the sensor skips.
func parseConnector(b []byte) (procEvent, bool, error) {
	ne := binary.NativeEndian
	if len(b) < cnMsgHdrLen {
		return procEvent{}, false, fmt.Errorf("%w: connector message of %d bytes", ErrMalformed, len(b))
	}
	if idx, val := ne.Uint32(b), ne.Uint32(b[4:]); idx != cnIdxProc || val != cnValProc {
		return procEvent{}, false, fmt.Errorf("%w: connector id %d:%d, want the proc connector", ErrMalformed, idx, val)
	}
	n := int(ne.Uint16(b[16:]))
	if n > len(b)-cnMsgHdrLen {
		return procEvent{}, false, fmt.Errorf("%w: connector data length %d with %d bytes", ErrMalformed, n, len(b)-cnMsgHdrLen)
	}
	d := b[cnMsgHdrLen : cnMsgHdrLen+n]
	if len(d) < procHdrLen {
		return procEvent{}, false, fmt.Errorf("%w: proc event of %d bytes", ErrMalformed, len(d))
	}
	ev := procEvent{what: ne.Uint32(d), time: ne.Uint64(d[8:])}
	d = d[procHdrLen:]
	// need is how much of the event's union the sensor reads.
	need := 0
	switch ev.what {
	case procEventNone:
		need = 4
	case procEventFork:
		need = 16
	case procEventExec:
		need = 8
	case procEventExit:
		// parent_pid and parent_tgid were added in Linux 4.18; older
		// kernels send 16 bytes, and the parent then stays 0.
		need = 16
	default:
		return procEvent{}, false, nil
	}
	if len(d) < need {
		return procEvent{}, false, fmt.Errorf("%w: %#x proc event with %d bytes of data, want %d", ErrMalformed, ev.what, len(d), need)
	}
	switch ev.what {
	case procEventNone:
		ev.ackErr = ne.Uint32(d)
	case procEventFork:
		ev.parentTGID = ne.Uint32(d[4:])
		ev.pid, ev.tgid = ne.Uint32(d[8:]), ne.Uint32(d[12:])
	case procEventExec:
		ev.pid, ev.tgid = ne.Uint32(d), ne.Uint32(d[4:])
	case procEventExit:
		ev.pid, ev.tgid = ne.Uint32(d), ne.Uint32(d[4:])
		if len(d) >= 24 {
			ev.parentTGID = ne.Uint32(d[20:])
		}
	}
	return ev, true, nil
}

// mcastMessage is the netlink datagram that subscribes to (op
// procMcastOn) or unsubscribes from the proc connector: the 4-byte
// operation every kernel accepts, not the 8-byte filtered form of 6.6+.
func mcastMessage(op uint32, seq uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+cnMsgHdrLen+4)
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], nlmsgDone)
	ne.PutUint32(b[8:], seq)
	c := b[nlmsgHdrLen:]
	ne.PutUint32(c, cnIdxProc)
	ne.PutUint32(c[4:], cnValProc)
	ne.PutUint32(c[8:], seq)
	ne.PutUint16(c[16:], 4)
	ne.PutUint32(c[cnMsgHdrLen:], op)
	return b
}
