package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// openProbe opens the sensor, or ends the test as testenv.Missing when the
// process may not load BPF. Events are delivered on the returned channel
// until the test ends.
func openProbe(t *testing.T) (*Probe, <-chan Event) {
	t.Helper()
	testenv.Integration(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the eBPF sensor needs root")
	}
	p, err := Open(Options{Logger: testenv.Logger(t)})
	if errors.Is(err, os.ErrPermission) {
		testenv.Missing(t, "loading BPF: %v", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p, testenv.Stream(t, p, ErrMalformed, 4096)
}

// waitFor returns the first event on ch that match accepts, other
// processes' events being skipped.
func waitFor(t *testing.T, ch <-chan Event, what string, match func(Event) bool) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event within 10s", what)
		}
	}
}

// run executes path, retrying while it is busy: a child forked elsewhere
// in the test binary may briefly hold the just-written file open.
func run(t *testing.T, path string) int {
	t.Helper()
	for i := 0; ; i++ {
		cmd := exec.Command(path)
		err := cmd.Run()
		if errors.Is(err, syscall.ETXTBSY) && i < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("running %s: %v", path, err)
		}
		return cmd.Process.Pid
	}
}

func TestOpenAttachesAllHooks(t *testing.T) {
	p, _ := openProbe(t)
	want := []string{"tp_btf/sched_process_exec", "tp_btf/sched_process_fork", "tp_btf/sched_process_exit", "tp_btf/net_dev_queue", "tp_btf/inet_sock_set_state"}
	if got := p.Hooks(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Hooks() = %v, want %v", got, want)
	}
}

func TestProcessLifecycle(t *testing.T) {
	_, ch := openProbe(t)
	start := time.Now()
	pid := run(t, "/bin/true")
	self := uint32(os.Getpid())
	mine := func(k Kind) func(Event) bool {
		return func(e Event) bool { return e.Kind == k && e.TGID == uint32(pid) }
	}
	fork := waitFor(t, ch, "fork", mine(Fork))
	if fork.PPID != self || fork.PID != uint32(pid) {
		t.Errorf("fork: PID %d PPID %d, want %d and %d", fork.PID, fork.PPID, pid, self)
	}
	ex := waitFor(t, ch, "exec", mine(Exec))
	if ex.Filename != "/bin/true" || ex.Comm != "true" || ex.PPID != self || ex.Drift {
		t.Errorf("exec: %+v, want /bin/true, comm true, parent %d, no drift", ex, self)
	}
	if ex.UID != 0 || ex.CgroupID == 0 || ex.MntNS == 0 || ex.NetNS == 0 {
		t.Errorf("exec: %+v, want uid 0 and cgroup id, mount and net namespaces set", ex)
	}
	if d := ex.Time.Sub(start); d < -time.Second || d > 10*time.Second {
		t.Errorf("exec time %v is %v from the test's start %v", ex.Time, d, start)
	}
	exit := waitFor(t, ch, "exit", mine(Exit))
	if exit.Comm != "true" {
		t.Errorf("exit: comm %q, want true", exit.Comm)
	}
	t.Logf("exec event: %+v", ex)
}

func TestDrift(t *testing.T) {
	_, ch := openProbe(t)
	dir := t.TempDir()
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "/bin/true", filepath.Join(lower, "in-image"))
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting overlayfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", merged, err)
		}
	})
	copyFile(t, "/bin/true", filepath.Join(merged, "dropped"))
	// Known gap: at sched_process_exec a script's file is already
	// replaced by its interpreter's, so the script's layer is unknown.
	if err := os.WriteFile(filepath.Join(merged, "dropped.sh"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "dropped")); err != nil {
		t.Fatalf("the copied binary is not in the upper layer: %v", err)
	}

	for _, tc := range []struct {
		name  string
		drift bool
	}{
		{"dropped", true},
		{"dropped.sh", false},
		{"in-image", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(merged, tc.name)
			pid := run(t, path)
			e := waitFor(t, ch, "exec", func(e Event) bool { return e.Kind == Exec && e.TGID == uint32(pid) })
			if e.Filename != path || e.Drift != tc.drift {
				t.Errorf("exec of %s: filename %q drift %v, want drift %v", path, e.Filename, e.Drift, tc.drift)
			}
		})
	}
}

// TestCgroupName runs a program in cgroups the test creates and checks the
// name the exec event carries: the cgroup v2 name, or on a host where the
// process's unified cgroup is the root, the v1 memory cgroup's.
func TestCgroupName(t *testing.T) {
	_, ch := openProbe(t)
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("bwprobe-%d", os.Getpid())
	for _, tc := range []struct {
		hierarchy string // mount point
		magic     int64  // its file system
		skip      bool
	}{
		{"/sys/fs/cgroup/unified", unix.CGROUP2_SUPER_MAGIC, false},
		{"/sys/fs/cgroup", unix.CGROUP2_SUPER_MAGIC, false},
		{"/sys/fs/cgroup/memory", unix.CGROUP_SUPER_MAGIC, !strings.Contains(string(own), "\n0::/\n")},
	} {
		t.Run(tc.hierarchy, func(t *testing.T) {
			var fs unix.Statfs_t
			if err := unix.Statfs(tc.hierarchy, &fs); err != nil || fs.Type != tc.magic || tc.skip {
				t.Skipf("no such cgroup hierarchy at %s, or the process's v2 cgroup is not the root", tc.hierarchy)
			}
			dir := filepath.Join(tc.hierarchy, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for i := 0; os.Remove(dir) != nil && i < 50; i++ {
					time.Sleep(20 * time.Millisecond)
				}
			})
			var st unix.Stat_t
			if err := unix.Stat(dir, &st); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("/bin/sh", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+" && exec /bin/true")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("running /bin/true in %s: %v: %s", dir, err, out)
			}
			e := waitFor(t, ch, "exec", func(e Event) bool {
				return e.Kind == Exec && e.TGID == uint32(cmd.Process.Pid) && e.Filename == "/bin/true"
			})
			if e.Cgroup != name {
				t.Errorf("exec event %+v: want cgroup %q", e, name)
			}
			if tc.magic == unix.CGROUP2_SUPER_MAGIC && e.CgroupID != st.Ino {
				t.Errorf("exec event cgroup id %d, want %s's inode %d", e.CgroupID, dir, st.Ino)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestDNS(t *testing.T) {
	_, ch := openProbe(t)
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:53", "[::1]:53"} {
		t.Run(addr, func(t *testing.T) {
			name := "probe-" + strings.NewReplacer(".", "-", ":", "-", "[", "", "]", "").Replace(addr) + ".bulwark.test"
			query := dnsQuery(0x4242, name)
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatalf("dialing %s: %v", addr, err)
			}
			defer c.Close()
			if _, err := c.Write(query); err != nil {
				t.Fatalf("sending to %s: %v", addr, err)
			}
			e := waitFor(t, ch, "dns", func(e Event) bool {
				return e.Kind == DNS && e.TGID == uint32(os.Getpid()) && bytes.Equal(e.DNS, query)
			})
			if e.Comm != strings.TrimSpace(string(comm)) || e.NetNS == 0 || e.CgroupID == 0 {
				t.Errorf("dns event %+v: want comm %q and namespace and cgroup set", e, comm)
			}
		})
	}
}

// TestDNSInNetns sends a query over a veth pair from a network namespace
// the test creates, as a container's traffic leaves it.
// netnsRuns numbers TestDNSInNetns's runs within one process.
var netnsRuns atomic.Int32

func TestDNSInNetns(t *testing.T) {
	_, ch := openProbe(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		testenv.Missing(t, "iproute2's ip: %v", err)
	}
	// Named per run as well as per process, for -count; interface names
	// have 15 bytes at most.
	run := netnsRuns.Add(1)
	ns := fmt.Sprintf("bwprobe-%d-%d", os.Getpid(), run)
	host, peer := fmt.Sprintf("bwp%d%da", os.Getpid()%100000, run%100), fmt.Sprintf("bwp%d%db", os.Getpid()%100000, run%100)
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	sh("netns", "add", ns)
	t.Cleanup(func() { exec.Command(ip, "netns", "del", ns).Run() })
	sh("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
	t.Cleanup(func() { exec.Command(ip, "link", "del", host).Run() })
	sh("addr", "add", "10.253.53.1/30", "dev", host)
	sh("link", "set", host, "up")
	sh("-n", ns, "addr", "add", "10.253.53.2/30", "dev", peer)
	// Without ARP the datagram leaves at once, in the sender's context,
	// instead of after neighbour resolution in a softirq.
	sh("-n", ns, "link", "set", peer, "arp", "off", "up")

	nsPath := filepath.Join("/run/netns", ns)
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		t.Fatal(err)
	}
	query := dnsQuery(0x5353, "veth.bulwark.test")
	tid := sendInNetns(t, nsPath, "10.253.53.1:53", query)
	e := waitFor(t, ch, "dns", func(e Event) bool { return e.Kind == DNS && bytes.Equal(e.DNS, query) })
	if e.PID != uint32(tid) || e.TGID != uint32(os.Getpid()) || uint64(e.NetNS) != st.Ino {
		t.Errorf("dns event %+v: want thread %d of process %d in netns %d", e, tid, os.Getpid(), st.Ino)
	}
}

// sendInNetns sends payload to addr over UDP from the network namespace at
// nsPath, on a thread of its own, and returns the thread's id.
func sendInNetns(t *testing.T, nsPath, addr string, payload []byte) int {
	t.Helper()
	type result struct {
		tid int
		err error
	}
	done := make(chan result)
	go func() {
		// The thread never returns to the scheduler's pool: it ends in
		// the other namespace when the goroutine exits locked.
		runtime.LockOSThread()
		f, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("entering %s: %w", nsPath, err)}
			return
		}
		c, err := net.Dial("udp", addr)
		if err == nil {
			_, err = c.Write(payload)
			c.Close()
		}
		done <- result{tid: unix.Gettid(), err: err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("sending to %s from %s: %v", addr, nsPath, r.err)
	}
	return r.tid
}

// dnsQuery builds a DNS query for an A record of name.
func dnsQuery(id uint16, name string) []byte {
	q := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, label := range strings.Split(name, ".") {
		q = append(q, byte(len(label)))
		q = append(q, label...)
	}
	return append(q, 0, 0, 1, 0, 1)
}

// TestProgramRunTime logs the kernel's accounting of the programs' run time
// per event (bpf_stats), the sensor's overhead on each exec, fork, exit,
// packet and TCP state change.
func TestProgramRunTime(t *testing.T) {
	p, _ := openProbe(t)
	// The same as sysctl kernel.bpf_stats_enabled=1, for as long as the
	// returned file descriptor is open.
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Fatalf("enabling bpf_stats: %v", err)
	}
	defer stats.Close()
	for range 200 {
		run(t, "/bin/true")
	}
	// Unconnected: the ICMP port unreachable answers fail no later write.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	for range 200 {
		if _, err := c.WriteTo(dnsQuery(1, "bulwark.test"), dst); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 200 {
		conn, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	for _, h := range p.Hooks() {
		s, err := p.progs[h].Stats()
		if err != nil {
			t.Fatalf("reading the stats of %s: %v", h, err)
		}
		if s.RunCount == 0 {
			t.Errorf("%s never ran", h)
			continue
		}
		t.Logf("%-28s runs %7d  %6d ns/run", h, s.RunCount, s.Runtime.Nanoseconds()/int64(s.RunCount))
	}
}

func TestExecArgs(t *testing.T) {
	_, ch := openProbe(t)
	long := make([]string, 40)
	for i := range long {
		long[i] = fmt.Sprintf("%02d-%s", i, strings.Repeat("a", 40))
	}
	for _, tc := range []struct {
		name      string
		args      []string
		truncated bool
	}{
		{"several", []string{"first", "with space", "", "ünïcode", "--flag=x"}, false},
		{"beyond the bound", long, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/true", tc.args...)
			if err := cmd.Run(); err != nil {
				t.Fatalf("running /bin/true: %v", err)
			}
			e := waitFor(t, ch, "exec", func(e Event) bool { return e.Kind == Exec && e.TGID == uint32(cmd.Process.Pid) })
			want := append([]string{"/bin/true"}, tc.args...)
			if e.ArgsTruncated != tc.truncated {
				t.Errorf("ArgsTruncated = %v, want %v", e.ArgsTruncated, tc.truncated)
			}
			if !tc.truncated {
				if diff := cmp.Diff(want, e.Args); diff != "" {
					t.Errorf("Args (-want +got):\n%s", diff)
				}
				return
			}
			// Cut at the bound: a prefix of the argument block, the
			// last argument possibly partial.
			block := strings.Join(want, "\x00") + "\x00"
			got := strings.Join(e.Args, "\x00")
			if len(got) != argsLen || !strings.HasPrefix(block, got) {
				t.Errorf("Args %q (%d bytes joined): want the first %d bytes of %q", e.Args, len(got), argsLen, block)
			}
		})
	}
}

// TestStdio starts children with file descriptors 0, 1 and 2 on sockets,
// pipes, files and devices, the way a reverse shell has them on a TCP
// connection to its listener.
func TestStdio(t *testing.T) {
	_, ch := openProbe(t)
	dir := t.TempDir()
	regular, err := os.Create(filepath.Join(dir, "input"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unixA, unixB := os.NewFile(uintptr(pair[0]), "unix-a"), os.NewFile(uintptr(pair[1]), "unix-b")
	defer unixA.Close()
	defer unixB.Close()

	for _, tc := range []struct {
		name    string
		network string // of the connected socket on fd 0 and 1; none when ""
		addr    string
		stderr  *os.File
		want    [3]FileType
	}{
		{"tcp4", "tcp", "127.0.0.1:0", pw, [3]FileType{FileTCP, FileTCP, FilePipe}},
		{"tcp6", "tcp", "[::1]:0", unixA, [3]FileType{FileTCP, FileTCP, FileUnix}},
		{"udp4", "udp", "127.0.0.1:0", devNull, [3]FileType{FileUDP, FileUDP, FileChar}},
		{"files", "", "", devNull, [3]FileType{FileReg, FilePipe, FileChar}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/true")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = regular, pw, tc.stderr
			var remote netip.AddrPort
			if tc.network != "" {
				sock, peer := connectedSocket(t, tc.network, tc.addr)
				cmd.Stdin, cmd.Stdout, remote = sock, sock, peer
			}
			if err := cmd.Run(); err != nil {
				t.Fatalf("running /bin/true: %v", err)
			}
			e := waitFor(t, ch, "exec", func(e Event) bool { return e.Kind == Exec && e.TGID == uint32(cmd.Process.Pid) })
			if got := [3]FileType{e.Stdin, e.Stdout, e.Stderr}; got != tc.want || e.Remote != remote {
				t.Errorf("stdio %v remote %v, want %v and %v", got, e.Remote, tc.want, remote)
			}
		})
	}
}

// connectedSocket returns a socket file connected to a listener (for TCP)
// or a bound socket (for UDP) on addr, and that peer's address.
func connectedSocket(t *testing.T, network, addr string) (*os.File, netip.AddrPort) {
	t.Helper()
	var peer net.Addr
	if network == "udp" {
		l, err := net.ListenPacket(network, addr)
		if err != nil {
			testenv.Missing(t, "listening on %s: %v", addr, err)
		}
		t.Cleanup(func() { l.Close() })
		peer = l.LocalAddr()
	} else {
		l, err := net.Listen(network, addr)
		if err != nil {
			testenv.Missing(t, "listening on %s: %v", addr, err)
		}
		t.Cleanup(func() { l.Close() })
		peer = l.Addr()
	}
	c, err := net.Dial(network, peer.String())
	if err != nil {
		t.Fatalf("dialing %s: %v", peer, err)
	}
	defer c.Close()
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, netip.MustParseAddrPort(peer.String())
}

func TestConnect(t *testing.T) {
	_, ch := openProbe(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				testenv.Missing(t, "listening on %s: %v", addr, err)
			}
			defer l.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatalf("dialing %s: %v", l.Addr(), err)
			}
			defer c.Close()
			local := netip.MustParseAddrPort(c.LocalAddr().String())
			remote := netip.MustParseAddrPort(l.Addr().String())
			e := waitFor(t, ch, "connect", func(e Event) bool { return e.Kind == Connect && e.Remote == remote })
			if e.TGID != uint32(os.Getpid()) || e.NetNS == 0 || e.CgroupID == 0 {
				t.Errorf("connect event %+v from %v: want process %d with namespace and cgroup set", e, local, os.Getpid())
			}
		})
	}
	t.Run("child", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		// bash's /dev/tcp connects from the shell process itself.
		bash, err := exec.LookPath("bash")
		if err != nil {
			testenv.Missing(t, "bash: %v", err)
		}
		cmd := exec.Command(bash, "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("connecting from bash: %v: %s", err, out)
		}
		e := waitFor(t, ch, "connect", func(e Event) bool { return e.Kind == Connect && e.TGID == uint32(cmd.Process.Pid) })
		if want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)); e.Remote != want || e.Comm != "bash" {
			t.Errorf("connect event %+v: want comm bash and remote %v", e, want)
		}
	})
}

// TestDrops fills a one-page ring that nobody reads and checks that the
// lost events are counted, and that reading goes on afterwards.
func TestDrops(t *testing.T) {
	testenv.Integration(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the eBPF sensor needs root")
	}
	p, err := Open(Options{Logger: testenv.Logger(t), RingSize: os.Getpagesize()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer p.Close()
	// Other processes' events may fill the ring from the start.
	before, err := p.Drops()
	if err != nil {
		t.Fatal(err)
	}
	// At most two of the runs' 1,440-byte exec records fit a 4 KiB ring
	// that is never read, so at least 18 are counted.
	const runs = 20
	for range runs {
		run(t, "/bin/true")
	}
	after, err := p.Drops()
	if err != nil {
		t.Fatal(err)
	}
	if fit := os.Getpagesize() / execEventSize; after-before < uint64(runs-fit) {
		t.Errorf("Drops() went from %d to %d over %d processes into a %d-byte ring, want at least %d more",
			before, after, runs, os.Getpagesize(), runs-fit)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.Read(ctx); err != nil {
		t.Errorf("Read after drops: %v", err)
	}
	t.Logf("%d events dropped", after)
}
