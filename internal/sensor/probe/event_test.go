package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// record is the raw form of an event as bpf/sensor.bpf.c writes it.
type record struct {
	kind, flags       uint8
	dataLen           uint16
	pid, tgid, ppid   uint32
	uid, mntNS, netNS uint32
	stdio             [3]uint8
	family            uint8
	ts, cgroupID      uint64
	comm, cgroup      string
	addr              [16]byte
	port              uint16
	data              string
	size              int // record size when not the kind's own
}

func (r record) bytes() []byte {
	size := r.size
	if size == 0 {
		switch Kind(r.kind) {
		case Exec:
			size = execEventSize
		case DNS:
			size = dnsEventSize
		default:
			size = headerSize
		}
	}
	b := make([]byte, max(size, headerSize))
	ne := binary.NativeEndian
	b[offKind], b[offFlags] = r.kind, r.flags
	ne.PutUint16(b[offDataLen:], r.dataLen)
	ne.PutUint32(b[offPID:], r.pid)
	ne.PutUint32(b[offTGID:], r.tgid)
	ne.PutUint32(b[offPPID:], r.ppid)
	ne.PutUint32(b[offUID:], r.uid)
	ne.PutUint32(b[offMntNS:], r.mntNS)
	ne.PutUint32(b[offNetNS:], r.netNS)
	copy(b[offStdio:], r.stdio[:])
	b[offRemoteFamily] = r.family
	ne.PutUint64(b[offTime:], r.ts)
	ne.PutUint64(b[offCgroupID:], r.cgroupID)
	copy(b[offComm:offComm+commLen], r.comm)
	copy(b[offCgroup:offCgroup+cgroupLen], r.cgroup)
	copy(b[offRemoteAddr:], r.addr[:])
	ne.PutUint16(b[offRemotePort:], r.port)
	copy(b[offData:], r.data)
	return b[:size]
}

// execRecord is an exec record whose data area holds data, data_len set.
func execRecord(data string) record {
	return record{kind: 1, dataLen: uint16(len(data)), data: data}
}

func v4(a, b, c, d byte) [16]byte { return [16]byte{a, b, c, d} }

func TestDecode(t *testing.T) {
	at := func(ns uint64) time.Time { return time.Unix(0, int64(ns)).Add(monotonicOffset()) }
	long := strings.Repeat("x", filenameLen-1)
	v6 := netip.MustParseAddr("2001:db8::7").As16()
	mapped := netip.MustParseAddr("::ffff:192.0.2.9").As16()
	for _, tc := range []struct {
		name string
		rec  record
		want Event
	}{
		{
			name: "exec in a container with drift and arguments",
			rec: record{kind: 1, flags: flagDrift, pid: 10, tgid: 10, ppid: 1, uid: 1000, mntNS: 4026532000, netNS: 4026532001,
				ts: 5e9, cgroupID: 77, comm: "sh", cgroup: "cri-containerd-abc.scope",
				dataLen: 21, data: "/tmp/x\x00x\x00-c\x00\x00echo hi\x00junk", stdio: [3]uint8{3, 2, 2}},
			want: Event{Kind: Exec, Time: at(5e9), PID: 10, TGID: 10, PPID: 1, UID: 1000, MntNS: 4026532000, NetNS: 4026532001,
				CgroupID: 77, Comm: "sh", Cgroup: "cri-containerd-abc.scope", Filename: "/tmp/x", Drift: true,
				Args: []string{"x", "-c", "", "echo hi"}, Stdin: FileChar, Stdout: FilePipe, Stderr: FilePipe},
		},
		{
			name: "longest filename, no arguments (argc 0)",
			rec:  execRecord(long + "\x00"),
			want: Event{Kind: Exec, Time: at(0), Filename: long},
		},
		{
			name: "arguments cut at the bound",
			rec:  record{kind: 1, flags: flagArgsTruncated, dataLen: 3 + argsLen, data: "/a\x00" + strings.Repeat("y", 1000) + "\x00zzzzzzzzzzzzzzzzzzzzzzz"},
			want: Event{Kind: Exec, Time: at(0), Filename: "/a", Args: []string{strings.Repeat("y", 1000), strings.Repeat("z", 23)}, ArgsTruncated: true},
		},
		{
			name: "arguments unreadable",
			rec:  record{kind: 1, flags: flagArgsTruncated, dataLen: 3, data: "/a\x00"},
			want: Event{Kind: Exec, Time: at(0), Filename: "/a", ArgsTruncated: true},
		},
		{
			name: "reverse shell: stdio on a TCP socket",
			rec: record{kind: 1, dataLen: 11, data: "/bin/sh\x00sh\x00", stdio: [3]uint8{4, 4, 4},
				family: afInet, addr: v4(192, 0, 2, 1), port: 4444},
			want: Event{Kind: Exec, Time: at(0), Filename: "/bin/sh", Args: []string{"sh"},
				Stdin: FileTCP, Stdout: FileTCP, Stderr: FileTCP, Remote: netip.MustParseAddrPort("192.0.2.1:4444")},
		},
		{
			name: "every file type",
			rec:  record{kind: 1, dataLen: 1, stdio: [3]uint8{5, 6, 8}},
			want: Event{Kind: Exec, Time: at(0), Stdin: FileUDP, Stdout: FileUnix, Stderr: FileOther},
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
		{
			name: "connect over IPv4",
			rec:  record{kind: 5, tgid: 9, comm: "curl", family: afInet, addr: v4(10, 1, 2, 3), port: 443},
			want: Event{Kind: Connect, Time: at(0), TGID: 9, Comm: "curl", Remote: netip.MustParseAddrPort("10.1.2.3:443")},
		},
		{
			name: "connect over IPv6",
			rec:  record{kind: 5, family: afInet6, addr: v6, port: 80},
			want: Event{Kind: Connect, Time: at(0), Remote: netip.MustParseAddrPort("[2001:db8::7]:80")},
		},
		{
			name: "connect to a v4-mapped address",
			rec:  record{kind: 5, family: afInet6, addr: mapped, port: 22},
			want: Event{Kind: Connect, Time: at(0), Remote: netip.MustParseAddrPort("192.0.2.9:22")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.rec.bytes())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := execRecord("/x\x00").bytes()
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"shorter than the header", valid[:headerSize-1]},
		{"exec short", valid[:execEventSize-1]},
		{"exec long", append(valid, 0)},
		{"exec of a fork's size", record{kind: 1, size: headerSize}.bytes()},
		{"fork of an exec's size", record{kind: 2, size: execEventSize}.bytes()},
		{"dns of a header's size", record{kind: 4, size: headerSize}.bytes()},
		{"kind 0", record{}.bytes()},
		{"unknown kind", record{kind: 6}.bytes()},
		{"unknown flag", record{kind: 1, flags: 4, dataLen: 1}.bytes()},
		{"drift on fork", record{kind: 2, flags: flagDrift}.bytes()},
		{"truncated args on dns", record{kind: 4, flags: flagArgsTruncated}.bytes()},
		{"dns longer than the buffer", record{kind: 4, dataLen: dnsLen + 1}.bytes()},
		{"exec longer than the buffer", record{kind: 1, dataLen: filenameLen + argsLen + 1}.bytes()},
		{"data length on exit", record{kind: 3, dataLen: 1}.bytes()},
		{"exec without data", record{kind: 1}.bytes()},
		{"exec filename without NUL", execRecord("/bin/sh").bytes()},
		{"exec filename over the bound", execRecord(strings.Repeat("f", filenameLen) + "\x00").bytes()},
		{"exec arguments over the bound", execRecord("\x00" + strings.Repeat("a", argsLen+1)).bytes()},
		{"file type 9", record{kind: 1, dataLen: 1, stdio: [3]uint8{0, 0, 9}}.bytes()},
		{"file type on fork", record{kind: 2, stdio: [3]uint8{1}}.bytes()},
		{"connect without a peer", record{kind: 5}.bytes()},
		{"port without a family", record{kind: 1, dataLen: 1, port: 1}.bytes()},
		{"address without a family", record{kind: 1, dataLen: 1, addr: v4(1, 0, 0, 0)}.bytes()},
		{"peer on exit", record{kind: 3, family: afInet, port: 1}.bytes()},
		{"unknown family", record{kind: 5, family: 1, port: 1}.bytes()},
		{"IPv4 peer with trailing bytes", record{kind: 5, family: afInet, addr: [16]byte{15: 1}, port: 1}.bytes()},
		{"timestamp overflow", record{kind: 3, ts: 1 << 63}.bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.raw); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestLayoutMatchesC compares the Go offsets with the LAYOUT and SIZE
// assertions the compiler checks against the C structs.
func TestLayoutMatchesC(t *testing.T) {
	src, err := os.ReadFile("../../../bpf/sensor.bpf.c")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"event.kind": offKind, "event.flags": offFlags, "event.data_len": offDataLen,
		"event.pid": offPID, "event.tgid": offTGID, "event.ppid": offPPID, "event.uid": offUID,
		"event.mntns": offMntNS, "event.netns": offNetNS, "event.stdio": offStdio,
		"event.remote_family": offRemoteFamily, "event.ts": offTime, "event.cgroup_id": offCgroupID,
		"event.comm": offComm, "event.cgroup": offCgroup, "event.remote_addr": offRemoteAddr,
		"event.remote_port": offRemotePort, "event": headerSize,
		"exec_event.data": offData, "exec_event": execEventSize,
		"dns_event.data": offData, "dns_event": dnsEventSize,
	}
	got := map[string]int{}
	re := regexp.MustCompile(`(?m)^(?:LAYOUT\(struct (\w+), (\w+), (\d+)\)|SIZE\(struct (\w+), (\d+)\));`)
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		key, n := m[1]+"."+m[2], m[3]
		if m[4] != "" {
			key, n = m[4], m[5]
		}
		got[key], _ = strconv.Atoi(n)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layout (-Go +C):\n%s", diff)
	}
	for _, c := range []struct {
		name     string
		c, goVal int
	}{
		{"FILENAME_LEN", 0, filenameLen}, {"ARGS_LEN", 0, argsLen}, {"DNS_LEN", 0, dnsLen},
		{"COMM_LEN", 0, commLen}, {"CGROUP_LEN", 0, cgroupLen},
	} {
		m := regexp.MustCompile(`(?m)^#define ` + c.name + ` (\d+)$`).FindStringSubmatch(string(src))
		if m == nil {
			t.Errorf("#define %s missing from sensor.bpf.c", c.name)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != c.goVal {
			t.Errorf("%s = %d in C, %d in Go", c.name, n, c.goVal)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(record{kind: 1, flags: flagDrift, comm: "sh", dataLen: 11, data: "/bin/sh\x00sh\x00", stdio: [3]uint8{4, 4, 2},
		family: afInet, addr: v4(127, 0, 0, 1), port: 9}.bytes())
	f.Add(record{kind: 4, dataLen: 3, data: "abc"}.bytes())
	f.Add(record{kind: 5, family: afInet6, addr: [16]byte{15: 1}, port: 443}.bytes())
	f.Add(record{kind: 2}.bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Decode(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		args := len(strings.Join(e.Args, "\x00"))
		if len(e.Comm) >= commLen+1 || len(e.Cgroup) > cgroupLen || len(e.Filename) >= filenameLen || args > argsLen || len(e.DNS) > dnsLen {
			t.Fatalf("Decode returned fields longer than their buffers: %+v", e)
		}
		if e.Kind != DNS && e.DNS != nil ||
			e.Kind != Exec && (e.Filename != "" || e.Drift || e.Args != nil || e.ArgsTruncated || e.Stdin|e.Stdout|e.Stderr != FileNone) {
			t.Fatalf("Decode returned fields of another kind: %+v", e)
		}
		if e.Stdin > FileOther || e.Stdout > FileOther || e.Stderr > FileOther {
			t.Fatalf("Decode returned an unknown file type: %+v", e)
		}
		if e.Remote.IsValid() != (e.Kind == Connect) && e.Kind != Exec || e.Remote.Addr().Is4In6() {
			t.Fatalf("Decode returned a peer that does not belong: %+v", e)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		rec  record
	}{
		{"exec", record{kind: 1, pid: 10, tgid: 10, ppid: 1, ts: 5e9, cgroupID: 77, comm: "sh", stdio: [3]uint8{3, 2, 2},
			cgroup: "cri-containerd-0123456789abcdef.scope", dataLen: 64,
			data: "/usr/local/bin/some-binary\x00some-binary\x00--config\x00/etc/app.yaml\x00-v\x00"}},
		{"fork", record{kind: 2, pid: 10, tgid: 10, ppid: 1, ts: 5e9, cgroupID: 77, comm: "sh"}},
		{"connect", record{kind: 5, pid: 10, tgid: 10, ppid: 1, ts: 5e9, comm: "curl", family: afInet, addr: v4(10, 0, 0, 1), port: 443}},
	} {
		raw := bc.rec.bytes()
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
