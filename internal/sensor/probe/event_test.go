package probe

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// record is the raw form of an event as bpf/sensor.bpf.c writes it.
type record struct {
	kind, drift        uint8
	dataLen            uint16
	pid, tgid, ppid    uint32
	uid, mntNS, netNS  uint32
	ts, cgroupID       uint64
	comm, cgroup, data string
}

func (r record) bytes() []byte {
	b := make([]byte, eventSize)
	ne := binary.NativeEndian
	b[offKind], b[offDrift] = r.kind, r.drift
	ne.PutUint16(b[offDataLen:], r.dataLen)
	ne.PutUint32(b[offPID:], r.pid)
	ne.PutUint32(b[offTGID:], r.tgid)
	ne.PutUint32(b[offPPID:], r.ppid)
	ne.PutUint32(b[offUID:], r.uid)
	ne.PutUint32(b[offMntNS:], r.mntNS)
	ne.PutUint32(b[offNetNS:], r.netNS)
	ne.PutUint64(b[offTime:], r.ts)
	ne.PutUint64(b[offCgroupID:], r.cgroupID)
	copy(b[offComm:offComm+commLen], r.comm)
	copy(b[offCgroup:offCgroup+cgroupLen], r.cgroup)
	copy(b[offData:offData+dataLen], r.data)
	return b
}

func TestDecode(t *testing.T) {
	at := func(ns uint64) time.Time { return time.Unix(0, int64(ns)).Add(monotonicOffset()) }
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name string
		rec  record
		want Event
	}{
		{
			name: "exec in a container with drift",
			rec: record{kind: 1, drift: 1, pid: 10, tgid: 10, ppid: 1, uid: 1000, mntNS: 4026532000, netNS: 4026532001,
				ts: 5e9, cgroupID: 77, comm: "sh", cgroup: "cri-containerd-abc.scope", data: "/tmp/x\x00junk"},
			want: Event{Kind: Exec, Time: at(5e9), PID: 10, TGID: 10, PPID: 1, UID: 1000, MntNS: 4026532000, NetNS: 4026532001,
				CgroupID: 77, Comm: "sh", Cgroup: "cri-containerd-abc.scope", Filename: "/tmp/x", Drift: true},
		},
		{
			name: "filename filling the buffer without a NUL",
			rec:  record{kind: 1, comm: "0123456789abcdef", data: long},
			want: Event{Kind: Exec, Time: at(0), Comm: "0123456789abcdef", Filename: long[:dataLen]},
		},
		{
			name: "fork",
			rec:  record{kind: 2, pid: 11, tgid: 11, ppid: 10, comm: "sh"},
			want: Event{Kind: Fork, Time: at(0), PID: 11, TGID: 11, PPID: 10, Comm: "sh"},
		},
		{
			name: "exit",
			rec:  record{kind: 3, pid: 11, tgid: 11, comm: "sh"},
			want: Event{Kind: Exit, Time: at(0), PID: 11, TGID: 11, Comm: "sh"},
		},
		{
			name: "dns payload with NULs",
			rec:  record{kind: 4, pid: 12, tgid: 11, comm: "curl", dataLen: 5, data: "\x42\x42\x00\x01\x00"},
			want: Event{Kind: DNS, Time: at(0), PID: 12, TGID: 11, Comm: "curl", DNS: []byte{0x42, 0x42, 0, 1, 0}},
		},
		{
			name: "empty dns payload",
			rec:  record{kind: 4},
			want: Event{Kind: DNS, Time: at(0), DNS: []byte{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.rec.bytes())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := record{kind: 1}.bytes()
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"short", valid[:eventSize-1]},
		{"long", append(valid, 0)},
		{"kind 0", record{}.bytes()},
		{"unknown kind", record{kind: 5}.bytes()},
		{"drift flag 2", record{kind: 1, drift: 2}.bytes()},
		{"drift on fork", record{kind: 2, drift: 1}.bytes()},
		{"dns longer than the buffer", record{kind: 4, dataLen: dataLen + 1}.bytes()},
		{"data length on exec", record{kind: 1, dataLen: 1}.bytes()},
		{"timestamp overflow", record{kind: 3, ts: 1 << 63}.bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.raw); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(record{kind: 1, drift: 1, comm: "sh", data: "/bin/sh"}.bytes())
	f.Add(record{kind: 4, dataLen: 3, data: "abc"}.bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Decode(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(e.Comm) >= commLen+1 || len(e.Cgroup) > cgroupLen || len(e.Filename) > dataLen || len(e.DNS) > dataLen {
			t.Fatalf("Decode returned fields longer than their buffers: %+v", e)
		}
		if e.Kind != DNS && e.DNS != nil || e.Kind != Exec && (e.Filename != "" || e.Drift) {
			t.Fatalf("Decode returned fields of another kind: %+v", e)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	raw := record{kind: 1, pid: 10, tgid: 10, ppid: 1, ts: 5e9, cgroupID: 77, comm: "sh",
		cgroup: "cri-containerd-0123456789abcdef.scope", data: "/usr/local/bin/some-binary"}.bytes()
	b.SetBytes(eventSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
