package fallback

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// procMsg builds one netlink datagram carrying a proc connector event with
// the given union data.
func procMsg(what uint32, ts uint64, data ...uint32) []byte {
	ne := binary.NativeEndian
	ev := make([]byte, procHdrLen+4*len(data))
	ne.PutUint32(ev, what)
	ne.PutUint64(ev[8:], ts)
	for i, d := range data {
		ne.PutUint32(ev[procHdrLen+4*i:], d)
	}
	cn := make([]byte, cnMsgHdrLen, cnMsgHdrLen+len(ev))
	ne.PutUint32(cn, cnIdxProc)
	ne.PutUint32(cn[4:], cnValProc)
	ne.PutUint16(cn[16:], uint16(len(ev)))
	cn = append(cn, ev...)
	nl := make([]byte, nlmsgHdrLen, nlmsgHdrLen+len(cn))
	ne.PutUint32(nl, uint32(nlmsgHdrLen+len(cn)))
	ne.PutUint16(nl[4:], nlmsgDone)
	return append(nl, cn...)
}

func TestParseMessages(t *testing.T) {
	var both []byte
	both = append(both, procMsg(procEventExec, 7, 10, 10)...)
	both = append(both, procMsg(procEventExit, 8, 10, 10, 0, 17, 3, 3)...)
	for _, tc := range []struct {
		name string
		in   []byte
		want []procEvent
	}{
		{"fork", procMsg(procEventFork, 1, 100, 100, 101, 101), []procEvent{{what: procEventFork, time: 1, pid: 101, tgid: 101, parentTGID: 100}}},
		{"thread", procMsg(procEventFork, 1, 100, 99, 101, 99), []procEvent{{what: procEventFork, time: 1, pid: 101, tgid: 99, parentTGID: 99}}},
		{"exec", procMsg(procEventExec, 5, 42, 42), []procEvent{{what: procEventExec, time: 5, pid: 42, tgid: 42}}},
		{"exit with parent", procMsg(procEventExit, 6, 42, 42, 256, 17, 1, 1), []procEvent{{what: procEventExit, time: 6, pid: 42, tgid: 42, parentTGID: 1}}},
		{"exit before 4.18", procMsg(procEventExit, 6, 42, 42, 0, 17), []procEvent{{what: procEventExit, time: 6, pid: 42, tgid: 42}}},
		{"ack", procMsg(procEventNone, 0, 1), []procEvent{{what: procEventNone, ackErr: 1}}},
		{"uid change skipped", procMsg(0x4, 0, 42, 42, 0, 0), nil},
		{"two in one datagram", both, []procEvent{{what: procEventExec, time: 7, pid: 10, tgid: 10}, {what: procEventExit, time: 8, pid: 10, tgid: 10, parentTGID: 3}}},
		{"noop", func() []byte { b := make([]byte, 16); b[0], b[4] = 16, nlmsgNoop; return b }(), nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMessages(nil, tc.in)
			if err != nil {
				t.Fatalf("parseMessages: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(procEvent{})); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMessagesHostile(t *testing.T) {
	ne := binary.NativeEndian
	mutate := func(b []byte, f func([]byte)) []byte { f(b); return b }
	valid := func() []byte { return procMsg(procEventExec, 1, 2, 2) }
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"short header", []byte{1, 2, 3}},
		{"length below header", mutate(valid(), func(b []byte) { ne.PutUint32(b, 8) })},
		{"length beyond datagram", mutate(valid(), func(b []byte) { ne.PutUint32(b, 1<<20) })},
		{"error message", mutate(valid(), func(b []byte) { ne.PutUint16(b[4:], nlmsgError) })},
		{"unknown type", mutate(valid(), func(b []byte) { ne.PutUint16(b[4:], 99) })},
		{"other connector", mutate(valid(), func(b []byte) { ne.PutUint32(b[nlmsgHdrLen:], 7) })},
		{"connector length beyond message", mutate(valid(), func(b []byte) { ne.PutUint16(b[nlmsgHdrLen+16:], 1000) })},
		{"short connector", mutate(valid()[:nlmsgHdrLen+10], func(b []byte) { ne.PutUint32(b, uint32(len(b))) })},
		{"short proc event", procMsg(procEventExec, 1)},
		{"fork without child", procMsg(procEventFork, 1, 1, 1)},
		{"exit without tgid", procMsg(procEventExit, 1, 1)},
		{"trailing garbage", append(valid(), 1, 2, 3, 4, 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseMessages(nil, tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("parseMessages(%x) = %v, want ErrMalformed", tc.in, err)
			}
		})
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(procMsg(procEventFork, 1, 100, 100, 101, 101))
	f.Add(procMsg(procEventExit, 6, 42, 42, 256, 17, 1, 1))
	f.Add(append(procMsg(procEventExec, 7, 10, 10), procMsg(procEventNone, 0, 0)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _ := parseMessages(nil, b)
		if len(evs)*(nlmsgHdrLen+cnMsgHdrLen+procHdrLen) > len(b) {
			t.Fatalf("%d events from %d bytes", len(evs), len(b))
		}
		for _, e := range evs {
			switch e.what {
			case procEventNone, procEventFork, procEventExec, procEventExit:
			default:
				t.Fatalf("event of kind %#x returned", e.what)
			}
		}
	})
}

func TestMcastMessageParses(t *testing.T) {
	// The subscription is a connector message of the proc connector's id
	// carrying the 4-byte operation; parsing it as an event must fail only
	// on the short proc event, not on the framing.
	_, err := parseMessages(nil, mcastMessage(procMcastOn, 1))
	if err == nil || !strings.Contains(err.Error(), "proc event of 4 bytes") {
		t.Errorf("parsing the subscription: %v, want a short proc event", err)
	}
}

func fanMsg(mask uint64, fd, pid int32, extra int) []byte {
	ne := binary.NativeEndian
	b := make([]byte, fanMetadataLen+extra)
	ne.PutUint32(b, uint32(len(b)))
	b[4] = fanMetadataVersion
	ne.PutUint16(b[6:], fanMetadataLen)
	ne.PutUint64(b[8:], mask)
	ne.PutUint32(b[16:], uint32(fd))
	ne.PutUint32(b[20:], uint32(pid))
	return b
}

func TestParseFanotify(t *testing.T) {
	in := append(fanMsg(fanOpenExec, 5, 42, 0), fanMsg(fanQOverflow, fanNoFD, 0, 8)...)
	got, err := parseFanotify(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []fanEvent{{mask: fanOpenExec, fd: 5, pid: 42}, {mask: fanQOverflow, fd: fanNoFD}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(fanEvent{})); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	ne := binary.NativeEndian
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"short", []byte{24, 0, 0}},
		{"version", func() []byte { b := fanMsg(1, 3, 3, 0); b[4] = 2; return b }()},
		{"length beyond read", func() []byte { b := fanMsg(1, 3, 3, 0); ne.PutUint32(b, 100); return b }()},
		{"length below metadata", func() []byte { b := fanMsg(1, 3, 3, 0); ne.PutUint32(b, 8); return b }()},
		{"metadata below struct", func() []byte { b := fanMsg(1, 3, 3, 0); ne.PutUint16(b[6:], 4); return b }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseFanotify(nil, tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("parseFanotify = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzParseFanotify(f *testing.F) {
	f.Add(fanMsg(fanOpenExec, 5, 42, 0))
	f.Add(append(fanMsg(fanOpenExec, 5, 42, 4), fanMsg(fanQOverflow, -1, 0, 0)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _ := parseFanotify(nil, b)
		if len(evs)*fanMetadataLen > len(b) {
			t.Fatalf("%d events from %d bytes", len(evs), len(b))
		}
	})
}

const statusSample = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t77\nNgid:\t0\nPid:\t77\nPPid:\t12\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n"

func TestParseStatus(t *testing.T) {
	uid, ppid, ok := parseStatus([]byte(statusSample))
	if !ok || uid != 1000 || ppid != 12 {
		t.Errorf("parseStatus = %d, %d, %v; want 1000, 12, true", uid, ppid, ok)
	}
	for _, in := range []string{
		"", "Uid:\t0\n", "PPid:\t1\n", "PPid:\t-1\nUid:\t0\n", "PPid:\t1\nUid:\n",
		"PPid:\t1\nUid:\t99999999999\n", "Name:\tUid:\t0\nPPid:\tx\n",
	} {
		if _, _, ok := parseStatus([]byte(in)); ok {
			t.Errorf("parseStatus(%q) ok, want not", in)
		}
	}
}

func TestParseStatFlags(t *testing.T) {
	for _, tc := range []struct {
		in    string
		flags uint32
		ok    bool
	}{
		{"42 (sleep) S 1 42 42 0 -1 4194560 120 0 0 0\n", 4194560, true},
		{"7 (a) b) 1 2 3 4) Z 1 7 7 0 -1 4227084 0\n", 4227084, true},
		{"7 (x) R 1 7 7 0 -1 4\n", pfExiting, true},
		{"", 0, false},
		{"42 sleep S 1 42 42 0 -1 4194560", 0, false},
		{"42 (sleep) S 1 42 42 0 -1", 0, false},
		{"42 (sleep) S 1 42 42 0 -1 -4", 0, false},
		{"42 (sleep) S 1 42 42 0 -1 99999999999", 0, false},
	} {
		flags, ok := parseStatFlags([]byte(tc.in))
		if flags != tc.flags || ok != tc.ok {
			t.Errorf("parseStatFlags(%q) = %d, %v; want %d, %v", tc.in, flags, ok, tc.flags, tc.ok)
		}
	}
}

func FuzzParseStatFlags(f *testing.F) {
	f.Add([]byte("42 (sleep) S 1 42 42 0 -1 4194560 120 0 0 0\n"))
	f.Add([]byte("7 (a) b) 1 2 3 4) Z 1 7 7 0 -1 4227084 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		flags, ok := parseStatFlags(b)
		if !ok && flags != 0 {
			t.Fatalf("flags %d without ok", flags)
		}
		if ok && !strings.Contains(string(b), strconv.FormatUint(uint64(flags), 10)) {
			t.Fatalf("flags %d not in %q", flags, b)
		}
	})
}

func TestParseCgroupFile(t *testing.T) {
	for _, tc := range []struct {
		name, in, v2, memory string
	}{
		{"hybrid", "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/x\n0::/\n", "/", "/process_api/abc"},
		{"v2", "0::/kubepods.slice/cri-containerd-1a2b.scope\n", "/kubepods.slice/cri-containerd-1a2b.scope", ""},
		{"joined controllers", "4:cpu,memory:/a:b/c\n", "", "/a:b/c"},
		{"garbage", "no colons\n:\n0:\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v2, memory := parseCgroupFile([]byte(tc.in))
			if v2 != tc.v2 || memory != tc.memory {
				t.Errorf("parseCgroupFile = %q, %q; want %q, %q", v2, memory, tc.v2, tc.memory)
			}
		})
	}
	long := "/" + strings.Repeat("c", 100)
	if got := cgroupName(long); got != strings.Repeat("c", maxCgroupName) {
		t.Errorf("cgroupName of a 100-byte name = %q, want it cut to %d bytes", got, maxCgroupName)
	}
	if got := cgroupName("/"); got != "" {
		t.Errorf("cgroupName(/) = %q, want empty", got)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\x00", []string{""}},
		{"/bin/ls\x00-l\x00\x00x y\x00", []string{"/bin/ls", "-l", "", "x y"}},
		{"rewritten title without nul", []string{"rewritten title without nul"}},
	} {
		if diff := cmp.Diff(tc.want, splitArgs([]byte(tc.in))); diff != "" {
			t.Errorf("splitArgs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseLinks(t *testing.T) {
	if n, ok := parseNSLink("mnt:[4026531841]", "mnt"); !ok || n != 4026531841 {
		t.Errorf("parseNSLink = %d, %v", n, ok)
	}
	for _, in := range []string{"net:[1]", "mnt:[]", "mnt:[99999999999]", "mnt:[1", "mnt:1]"} {
		if _, ok := parseNSLink(in, "mnt"); ok {
			t.Errorf("parseNSLink(%q) ok, want not", in)
		}
	}
	for _, tc := range []struct {
		in   string
		kind fdKind
		ino  uint64
	}{
		{"socket:[123]", fdSocket, 123},
		{"socket:[x]", fdOther, 0},
		{"pipe:[9]", fdPipe, 0},
		{"/dev/null", fdPath, 0},
		{"anon_inode:[eventfd]", fdOther, 0},
		{"", fdOther, 0},
	} {
		if kind, ino := parseFDLink(tc.in); kind != tc.kind || ino != tc.ino {
			t.Errorf("parseFDLink(%q) = %d, %d; want %d, %d", tc.in, kind, ino, tc.kind, tc.ino)
		}
	}
}

// Lines as a little-endian kernel writes them.
const (
	tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	tcpLine   = "   1: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1"
	tcpListen = "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0"
	tcp6Line  = "   0: 00000000000000000000000001000000:A2C4 0000000000000000FFFF00000100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 20 4 30 10 -1"
	udp6Line  = "  12: 00000000000000000000000001000000:9C40 B80D0120000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 78 2 0000000000000000 0"
	unixLine  = "0000000000000000: 00000002 00000000 00010000 0001 01 31337 /run/some socket"
)

func TestParseInetLine(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("sample lines are little-endian")
	}
	for _, tc := range []struct {
		name, in string
		ino      uint64
		remote   netip.AddrPort
	}{
		{"tcp", tcpLine, 4242, netip.MustParseAddrPort("127.0.0.1:8080")},
		{"listening", tcpListen, 17, netip.AddrPort{}},
		{"v4-mapped", tcp6Line, 77, netip.MustParseAddrPort("127.0.0.1:53")},
		{"v6", udp6Line, 78, netip.MustParseAddrPort("[2001:db8::1]:53")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ino, remote, ok := parseInetLine([]byte(tc.in))
			if !ok || ino != tc.ino || remote != tc.remote {
				t.Errorf("parseInetLine = %d, %v, %v; want %d, %v", ino, remote, ok, tc.ino, tc.remote)
			}
		})
	}
	for _, in := range []string{
		tcpHeader, "", "1: x",
		strings.Replace(tcpLine, "0100007F:1F90", "0100007F:1F9", 1),
		strings.Replace(tcpLine, "0100007F:1F90", "0100007G:1F90", 1),
		strings.Replace(tcpLine, "0100007F:1F90", "01000007F:1F90", 1),
		strings.Replace(tcpLine, " 4242 ", " -1 ", 1),
		strings.Replace(tcpLine, "   1:", "   1 ", 1),
	} {
		if _, _, ok := parseInetLine([]byte(in)); ok {
			t.Errorf("parseInetLine(%q) ok, want not", in)
		}
	}
	if ino, ok := parseUnixLine([]byte(unixLine)); !ok || ino != 31337 {
		t.Errorf("parseUnixLine = %d, %v; want 31337", ino, ok)
	}
	for _, in := range []string{"Num       RefCount Protocol Flags    Type St Inode Path", "0: 1 2", "0: 1 2 3 4 5 x"} {
		if _, ok := parseUnixLine([]byte(in)); ok {
			t.Errorf("parseUnixLine(%q) ok, want not", in)
		}
	}
}

func FuzzParseInetLine(f *testing.F) {
	for _, s := range []string{tcpLine, tcpListen, tcp6Line, udp6Line, tcpHeader, unixLine} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, remote, ok := parseInetLine(b); ok && remote.IsValid() && remote.Port() == 0 && remote.Addr().IsUnspecified() {
			t.Fatalf("unspecified remote %v returned as valid", remote)
		}
		parseUnixLine(b)
	})
}

const mountinfoSample = `21 26 0:20 / /proc rw,relatime - proc proc rw
26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 26 0:40 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
41 26 0:50 / /tmp/with\040space/merged rw,relatime shared:7 master:2 - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/up\054per,workdir=/var/lib/work
42 41 0:51 /sub /tmp/with\040space/merged/data rw - tmpfs  rw
43 26 0:4 net:[4026532249] /run/netns/cni-1 rw shared:8 - nsfs nsfs rw
`

func TestParseMountinfo(t *testing.T) {
	got, err := parseMountinfo([]byte(mountinfoSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
		{root: "/", point: "/proc", fsType: "proc", superOptions: "rw"},
		{root: "/", point: "/", fsType: "ext4", superOptions: "rw"},
		{root: "/", point: "/sys/fs/cgroup/unified", fsType: "cgroup2", superOptions: "rw,nsdelegate"},
		{root: "/", point: "/tmp/with space/merged", fsType: "overlay", superOptions: `rw,lowerdir=/l1:/l2,upperdir=/var/lib/up\054per,workdir=/var/lib/work`},
		{root: "/sub", point: "/tmp/with space/merged/data", fsType: "tmpfs", superOptions: "rw"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(mount{})); diff != "" {
		t.Fatalf("mounts (-want +got):\n%s", diff)
	}
	upper, ok, err := superOption(got[3].superOptions, "upperdir")
	if err != nil || !ok || upper != "/var/lib/up,per" {
		t.Errorf("upperdir = %q, %v, %v; want /var/lib/up,per", upper, ok, err)
	}
	if _, ok, _ := superOption(got[3].superOptions, "upper"); ok {
		t.Error("option upper found in upperdir=…")
	}

	for _, tc := range []struct{ path, point, rel string }{
		{"/tmp/with space/merged/bin/sh", "/tmp/with space/merged", "/bin/sh"},
		{"/tmp/with space/merged/data/x", "/tmp/with space/merged/data", "/sub/x"},
		{"/tmp/with space/mergedx/y", "/", "/tmp/with space/mergedx/y"},
		{"/proc", "/proc", "/"},
	} {
		m, rel, ok := mountOf(got, tc.path)
		if !ok || m.point != tc.point || rel != tc.rel {
			t.Errorf("mountOf(%q) = %q, %q, %v; want %q, %q", tc.path, m.point, rel, ok, tc.point, tc.rel)
		}
	}
	if _, _, ok := mountOf(got, "relative"); ok {
		t.Error("mountOf found a mount for a relative path")
	}
}

func TestParseMountinfoHostile(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"no separator", "1 2 0:1 / / rw a b c d\n"},
		{"short", "1 2 0:1 / / rw - ext4\n"},
		{"extra after separator", "1 2 0:1 / / rw - ext4 dev rw extra\n"},
		{"relative mount point", "1 2 0:1 / rel rw - ext4 dev rw\n"},
		{"relative root", "1 2 0:1 rel / rw - ext4 dev rw\n"},
		{"pseudo root without an inode", "1 2 0:1 net:[x] / rw - nsfs nsfs rw\n"},
		{"pseudo root with a path", "1 2 0:1 a/net:[1] / rw - nsfs nsfs rw\n"},
		{"truncated escape", "1 2 0:1 / /a\\04 rw - ext4 dev rw\n"},
		{"bad escape", "1 2 0:1 / /a\\9zz rw - ext4 dev rw\n"},
		{"escape overflowing a byte", "1 2 0:1 / /a\\777 rw - ext4 dev rw\n"},
		{"too many optional fields", "1 2 0:1 / / rw" + strings.Repeat(" shared:1", maxMountFields+1) + " - ext4 dev rw\n"},
		// U+00A0 is a Unicode space: a split on it would misread fields.
		{"unicode space", "1 2 0:1 / /a\u00a0b rw - ext4\u00a0dev rw\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := parseMountinfo([]byte(tc.in)); !errors.Is(err, ErrMalformed) {
				t.Errorf("parseMountinfo = %+v, %v; want ErrMalformed", m, err)
			}
		})
	}
	if _, _, err := superOption(`rw,upperdir=/a\05`, "upperdir"); !errors.Is(err, ErrMalformed) {
		t.Errorf("superOption with a cut escape: %v, want ErrMalformed", err)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(mountinfoSample), "/tmp/with space/merged/bin/sh")
	f.Add([]byte("1 2 0:1 / / rw - overlay o rw,upperdir=/u\\054x\n"), "/x")
	f.Fuzz(func(t *testing.T, b []byte, path string) {
		mounts, err := parseMountinfo(b)
		if err != nil {
			return
		}
		for _, m := range mounts {
			if !strings.HasPrefix(m.point, "/") || !strings.HasPrefix(m.root, "/") {
				t.Fatalf("non-absolute mount %+v", m)
			}
			superOption(m.superOptions, "upperdir")
		}
		if m, rel, ok := mountOf(mounts, path); ok {
			if !under(path, m.point) || !strings.HasPrefix(rel, "/") {
				t.Fatalf("mountOf(%q) = %+v, %q", path, m, rel)
			}
		}
	})
}

func BenchmarkParseMessages(b *testing.B) {
	var in []byte
	for range 8 {
		in = append(in, procMsg(procEventExec, 5, 42, 42)...)
	}
	var evs []procEvent
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if evs, err = parseMessages(evs[:0], in); err != nil || len(evs) != 8 {
			b.Fatal(len(evs), err)
		}
	}
}

func BenchmarkParseInetLine(b *testing.B) {
	line := []byte(tcpLine)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := parseInetLine(line); !ok {
			b.Fatal("not parsed")
		}
	}
}

func BenchmarkParseMountinfo(b *testing.B) {
	in := []byte(strings.Repeat(mountinfoSample, 6)) // about 30 mounts, a container's
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseMountinfo(in); err != nil {
			b.Fatal(err)
		}
	}
}
