package track

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// fuzzEvents decodes fuzz input into a sequence of probe events over a few
// PIDs, so that forks, execs, exits and queries interleave.
func fuzzEvents(b []byte) []probe.Event {
	var evs []probe.Event
	now := epoch
	next := func(n int) []byte {
		n = min(n, len(b))
		out := b[:n]
		b = b[n:]
		return out
	}
	for len(b) >= 8 {
		h := next(8)
		now = now.Add(time.Duration(h[7]) * 50 * time.Millisecond)
		ev := probe.Event{
			Kind: probe.Kind(h[0] % 7), Time: now,
			TGID: uint32(h[1] % 12), PPID: uint32(h[2] % 12), UID: uint32(h[3]),
			MntNS: uint32(h[4] % 3), Drift: h[5]&1 != 0, ArgsTruncated: h[5]&2 != 0,
			Stdin: probe.FileType(h[5] >> 4), Stdout: probe.FileType(h[6] & 15), Stderr: probe.FileType(h[6] >> 4),
		}
		if h[0]&0x80 != 0 {
			ev.Time = time.Time{}
		}
		ev.Comm = string(next(int(h[3] % 20)))
		ev.Filename = string(next(int(h[4] % 40)))
		for range int(h[5]>>2) % 4 {
			ev.Args = append(ev.Args, string(next(int(h[6]%32))))
		}
		if h[1]&0x80 != 0 {
			// A long argument list, the size a probe could send.
			for range 200 {
				ev.Args = append(ev.Args, string(next(40)))
			}
		}
		if ev.Kind == probe.DNS {
			ev.DNS = next(int(h[6]))
		}
		if h[2]&0x80 != 0 && len(b) >= 18 {
			r := next(18)
			addr := netip.AddrFrom16([16]byte(r))
			if r[0]&1 != 0 {
				addr = netip.AddrFrom4([4]byte(r[:4]))
			}
			ev.Remote = netip.AddrPortFrom(addr, binary.BigEndian.Uint16(r[16:]))
		}
		evs = append(evs, ev)
	}
	return evs
}

func FuzzConvert(f *testing.F) {
	f.Add([]byte("\x02\x05\x01\x00\x01\x00\x00\x01\x01\x05\x01\x00\x01\x00\x00\x01sh\x04\x05\x01\x00\x01\x00\x20\x01\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01"))
	f.Add([]byte("\x01\x03\x02\xff\x02\x3c\xff\x10\x1b\xff\xfe\x00\x80\x81\x82"))
	c := &wire.Container{ID: "c"}
	empty := f.TempDir() // no /proc: senders come from events alone
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := New(Config{ProcRoot: empty, MaxProcesses: 6, ExitDelay: 200 * time.Millisecond})
		for i, ev := range fuzzEvents(b) {
			w, ok := tr.Convert(ev, c)
			if !ok {
				continue
			}
			if err := w.Validate(); err != nil {
				t.Fatalf("event %d %+v: Convert returned an invalid event: %v", i, ev, err)
			}
		}
		s := tr.Stats()
		if s.Processes > 6 || s.Processes != tr.live.n+tr.exited.n+tr.lingering.n {
			t.Fatalf("stats %+v: live %d exited %d lingering %d", s, tr.live.n, tr.exited.n, tr.lingering.n)
		}
	})
}
