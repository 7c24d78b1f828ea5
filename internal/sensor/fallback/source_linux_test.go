package fallback

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// openSource opens the fallback source, or ends the test as
// testenv.Missing without root. Events are delivered on the returned
// channel until the test ends.
func openSource(t *testing.T, o Options) (*Source, <-chan probe.Event) {
	t.Helper()
	testenv.Integration(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the proc connector needs root")
	}
	o.Logger = testenv.Logger(t)
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, testenv.Stream(t, s, ErrMalformed, 1<<14)
}

// waitFor returns the first event of kind k of process pid on ch; other
// processes' events are skipped.
func waitFor(t *testing.T, ch <-chan probe.Event, k probe.Kind, pid int) probe.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e.Kind == k && e.TGID == uint32(pid) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event of process %d within 10s", k, pid)
		}
	}
}

// start starts cmd, retrying while its file is busy: a child forked
// elsewhere in the test binary may briefly hold a just-written file open.
func start(t *testing.T, cmd func() *exec.Cmd) *exec.Cmd {
	t.Helper()
	for i := 0; ; i++ {
		c := cmd()
		err := c.Start()
		if errors.Is(err, syscall.ETXTBSY) && i < 50 {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("starting %s: %v", c.Path, err)
		}
		return c
	}
}

func TestHooks(t *testing.T) {
	s, _ := openSource(t, Options{})
	if diff := cmp.Diff([]string{HookProcConnector, HookFanotify}, s.Hooks()); diff != "" {
		t.Errorf("Hooks (-want +got):\n%s", diff)
	}
	if n, err := s.Drops(); err != nil || n != 0 {
		t.Errorf("Drops = %d, %v; want 0", n, err)
	}
}

func TestProcessLifecycle(t *testing.T) {
	_, ch := openSource(t, Options{})
	bin, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	// The space goes in argv[0]: sleep rejects any other argument that is
	// not a duration and would exit before its exec is read.
	cmd := start(t, func() *exec.Cmd {
		c := exec.Command("/bin/sleep", "30")
		c.Args[0] = "sleep with space"
		return c
	})
	self := uint32(os.Getpid())
	pid := cmd.Process.Pid
	fork := waitFor(t, ch, probe.Fork, pid)
	if fork.PID != uint32(pid) || fork.PPID != self || fork.CgroupID == 0 {
		t.Errorf("fork: %+v, want PID %d PPID %d and a cgroup id", fork, pid, self)
	}
	ex := waitFor(t, ch, probe.Exec, pid)
	want := probe.Event{
		Kind: probe.Exec, PID: uint32(pid), TGID: uint32(pid), PPID: self, UID: 0,
		Comm: "sleep", Filename: bin, Args: []string{"sleep with space", "30"},
		Stdin: probe.FileChar, Stdout: probe.FileChar, Stderr: probe.FileChar,
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Time", ".CgroupID", ".Cgroup", ".MntNS", ".NetNS":
			return true
		}
		return false
	}, cmp.Ignore())
	if diff := cmp.Diff(want, ex, ignore, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("exec (-want +got):\n%s", diff)
	}
	if own := taskOf(t, os.Getpid()); ex.CgroupID != own.cgroupID || ex.Cgroup != own.cgroup || ex.MntNS != own.mntNS || ex.NetNS != own.netNS {
		t.Errorf("exec: %+v, want the test's cgroup and namespaces %+v", ex, own)
	}
	if d := time.Since(ex.Time); d < 0 || d > 10*time.Second {
		t.Errorf("exec time %v is %v before now", ex.Time, d)
	}
	cmd.Process.Kill()
	cmd.Wait()
	exit := waitFor(t, ch, probe.Exit, pid)
	if exit.Comm != "sleep" || exit.PPID != self || exit.CgroupID != ex.CgroupID {
		t.Errorf("exit: %+v, want comm sleep, parent %d and the exec's cgroup", exit, self)
	}
}

// taskOf reads pid's fields as the source does.
func taskOf(t *testing.T, pid int) task {
	t.Helper()
	p, err := newProcfs("")
	if err != nil {
		t.Fatal(err)
	}
	var e probe.Event
	tk, g := p.task(uint32(pid), &e)
	if g != 0 {
		t.Fatalf("reading process %d: missing %s", pid, g)
	}
	return tk
}

// TestEnrichExited reads the exec of a live process and of one that has
// exited (a zombie, as a process that exits before its exec event is
// read): the first is complete, the second is reported incomplete with
// what it lost, never passed off as complete.
func TestEnrichExited(t *testing.T) {
	p, err := newProcfs("")
	if err != nil {
		t.Fatal(err)
	}
	live := start(t, func() *exec.Cmd { return exec.Command("/bin/sleep", "30") })
	defer func() { live.Process.Kill(); live.Wait() }()
	// Wait for the exec to complete, as it has when the proc connector
	// reports it: the comm changes early in execve, the argument block
	// only once the program is loaded.
	args := pidDir(uint32(live.Process.Pid)) + "/cmdline"
	eventually(t, "the exec of sleep completes", func() bool {
		b, err := os.ReadFile(args)
		return err == nil && string(b) == "/bin/sleep\x0030\x00"
	})
	var e probe.Event
	if _, g := p.exec(uint32(live.Process.Pid), &e, nil); g != 0 || e.Filename == "" || len(e.Args) != 2 || e.MntNS == 0 {
		t.Errorf("exec of a live process: %+v, missing %q; want every field", e, g)
	}

	dead := start(t, func() *exec.Cmd { return exec.Command("/bin/true") })
	stat := pidDir(uint32(dead.Process.Pid)) + "/stat"
	eventually(t, "true exits", func() bool {
		b, err := os.ReadFile(stat)
		end := strings.LastIndexByte(string(b), ')')
		return err == nil && end >= 0 && end+2 < len(b) && b[end+2] == 'Z'
	})
	defer dead.Wait()
	e = probe.Event{}
	tk, g := p.exec(uint32(dead.Process.Pid), &e, nil)
	const want = gapExited | gapFilename | gapArgs | gapNamespaces
	if g&want != want || e.Filename != "" || e.Args != nil || e.MntNS != 0 || e.Comm != "true" {
		t.Errorf("exec of an exited process: %+v, missing %q; want comm only and %q missing", e, g, want)
	}
	if tk.cgroupFromV1 && (e.Cgroup != "" || g&gapCgroup == 0) {
		t.Errorf("exited process on cgroup v1: cgroup %q, missing %q; want the reset path dropped", e.Cgroup, g)
	}
}

// eventually polls cond until it holds, for at most 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExecAsUser(t *testing.T) {
	_, ch := openSource(t, Options{})
	cmd := start(t, func() *exec.Cmd {
		c := exec.Command("/bin/sleep", "30")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return c
	})
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if e := waitFor(t, ch, probe.Exec, cmd.Process.Pid); e.UID != 65534 {
		t.Errorf("exec as nobody: UID %d, want 65534", e.UID)
	}
}

func TestArgsTruncated(t *testing.T) {
	_, ch := openSource(t, Options{})
	// 600-byte durations of 1 ns: sleep must accept them and stay alive
	// for its exec to be read.
	long := strings.Repeat("0", 596) + "1e-9"
	cmd := start(t, func() *exec.Cmd { return exec.Command("/bin/sleep", "30", long, long, long) })
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	e := waitFor(t, ch, probe.Exec, cmd.Process.Pid)
	joined := strings.Join(e.Args, "\x00")
	if !e.ArgsTruncated || len(joined) > maxArgBytes || len(e.Args) != 4 || e.Args[2] != long || !strings.HasPrefix(long, e.Args[3]) {
		t.Errorf("exec with 1.8 KB of arguments: truncated %v, %d bytes, %d args; want the first 1024 bytes", e.ArgsTruncated, len(joined), len(e.Args))
	}
}

func TestStdio(t *testing.T) {
	_, ch := openSource(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if c, err := ln.Accept(); err == nil {
		defer c.Close()
	}
	tcp := fileOf(t, conn)
	udpConn, err := net.Dial("udp", "[::1]:9")
	if err != nil {
		udpConn, err = net.Dial("udp", "127.0.0.1:9")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer udpConn.Close()
	udp := fileOf(t, udpConn)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	us, peer := os.NewFile(uintptr(pair[0]), "unix"), os.NewFile(uintptr(pair[1]), "peer")
	defer us.Close()
	defer peer.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	reg, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()

	for _, tc := range []struct {
		name                  string
		stdin, stdout, stderr *os.File
		want                  [3]probe.FileType
		remote                netip.AddrPort
	}{
		{"tcp stdin", tcp, us, null, [3]probe.FileType{probe.FileTCP, probe.FileUnix, probe.FileChar}, netip.MustParseAddrPort(ln.Addr().String())},
		{"udp stderr", pr, reg, udp, [3]probe.FileType{probe.FilePipe, probe.FileReg, probe.FileUDP}, netip.MustParseAddrPort(udpConn.RemoteAddr().String())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := start(t, func() *exec.Cmd {
				c := exec.Command("/bin/sleep", "30")
				c.Stdin, c.Stdout, c.Stderr = tc.stdin, tc.stdout, tc.stderr
				return c
			})
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			e := waitFor(t, ch, probe.Exec, cmd.Process.Pid)
			if got := [3]probe.FileType{e.Stdin, e.Stdout, e.Stderr}; got != tc.want || e.Remote != tc.remote {
				t.Errorf("stdio %v remote %v, want %v and %v", got, e.Remote, tc.want, tc.remote)
			}
		})
	}
}

// fileOf returns a duplicate of c's socket as a file.
func fileOf(t *testing.T, c net.Conn) *os.File {
	t.Helper()
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// overlay mounts an overlayfs whose lower layer is a busybox root with
// /bin/sh, /bin/sleep and an image script, and returns the merged and
// upper directories.
func overlay(t *testing.T) (merged, upper string) {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox: %v", err)
	}
	dir := t.TempDir()
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{lower, upper, work, merged, filepath.Join(lower, "bin"), filepath.Join(lower, "tmp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"sh", "sleep"} {
		copyFile(t, busybox, filepath.Join(lower, "bin", name))
	}
	writeScript(t, filepath.Join(lower, "bin", "image.sh"))
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting overlayfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", merged, err)
		}
	})
	return merged, upper
}

// writeScript writes a script that runs sleep as its child: an exec of
// sleep in place of the shell could be read from /proc before the
// script's own exec event, which would then show sleep's executable and
// arguments. The script's process group is killed with killGroup.
func writeScript(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n/bin/sleep 30\nexit\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// killGroup kills cmd, started with Setpgid, with its children.
func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
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

// TestDrift mounts an overlay after the source opened, as a container
// starts, runs programs chrooted into it and from the host, and checks
// Drift: set for a binary and a script written to the upper layer, not for
// the image's.
func TestDrift(t *testing.T) {
	_, ch := openSource(t, Options{})
	merged, upper := overlay(t)
	copyFile(t, "/bin/busybox", filepath.Join(merged, "tmp", "sleep"))
	writeScript(t, filepath.Join(merged, "tmp", "dropped.sh"))
	if _, err := os.Stat(filepath.Join(upper, "tmp", "sleep")); err != nil {
		t.Fatalf("the copied binary is not in the upper layer: %v", err)
	}
	// The first exec in the new root marks its filesystem for fanotify;
	// the later ones are seen there.
	for _, tc := range []struct {
		name     string
		path     string // in the chroot
		chroot   bool
		filename string
		drift    bool
	}{
		{"image binary", "/bin/sleep", true, merged + "/bin/sleep", false},
		{"copied binary", "/tmp/sleep", true, merged + "/tmp/sleep", true},
		{"image script", "/bin/image.sh", true, merged + "/bin/image.sh", false},
		{"dropped script", "/tmp/dropped.sh", true, merged + "/tmp/dropped.sh", true},
		{"copied binary from the host", merged + "/tmp/sleep", false, merged + "/tmp/sleep", true},
		{"dropped script from the host", merged + "/tmp/dropped.sh", false, merged + "/tmp/dropped.sh", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := start(t, func() *exec.Cmd {
				c := exec.Command(tc.path, "30")
				if tc.chroot {
					c.SysProcAttr = &syscall.SysProcAttr{Chroot: merged, Setpgid: true}
				} else {
					c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				}
				return c
			})
			defer killGroup(cmd)
			e := waitFor(t, ch, probe.Exec, cmd.Process.Pid)
			if e.Filename != tc.filename || e.Drift != tc.drift {
				t.Errorf("exec of %s: filename %q drift %v, want %q and drift %v", tc.path, e.Filename, e.Drift, tc.filename, tc.drift)
			}
		})
	}
}

// TestDriftWithoutFanotify shows what fanotify adds: without it a dropped
// script's exec is its interpreter's, from the image.
func TestDriftWithoutFanotify(t *testing.T) {
	s, ch := openSource(t, Options{NoFanotify: true})
	if diff := cmp.Diff([]string{HookProcConnector}, s.Hooks()); diff != "" {
		t.Errorf("Hooks (-want +got):\n%s", diff)
	}
	merged, _ := overlay(t)
	copyFile(t, "/bin/busybox", filepath.Join(merged, "tmp", "sleep"))
	writeScript(t, filepath.Join(merged, "tmp", "dropped.sh"))
	for _, tc := range []struct {
		path, filename string
		drift          bool
	}{
		{"/tmp/sleep", merged + "/tmp/sleep", true},
		{"/tmp/dropped.sh", merged + "/bin/sh", false},
	} {
		cmd := start(t, func() *exec.Cmd {
			c := exec.Command(tc.path, "30")
			c.SysProcAttr = &syscall.SysProcAttr{Chroot: merged, Setpgid: true}
			return c
		})
		e := waitFor(t, ch, probe.Exec, cmd.Process.Pid)
		killGroup(cmd)
		if e.Filename != tc.filename || e.Drift != tc.drift {
			t.Errorf("exec of %s: filename %q drift %v, want %q and drift %v", tc.path, e.Filename, e.Drift, tc.filename, tc.drift)
		}
	}
}

func TestReadAfterClose(t *testing.T) {
	s, _ := openSource(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
}

// TestLstatBeneath checks that an upper layer's symlinks cannot send the
// drift lookup out of it.
func TestLstatBeneath(t *testing.T) {
	dir := t.TempDir()
	upper := filepath.Join(dir, "upper")
	if err := os.MkdirAll(filepath.Join(upper, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "usr", "bin", "tool"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "outside"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct{ name, target string }{{"escape", dir}, {"abs", "/"}, {"link", "../outside"}} {
		if err := os.Symlink(l.target, filepath.Join(upper, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := lstatBeneath(upper, "/usr/bin/tool"); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("lstatBeneath of a file in the layer: mode %o, %v", st.Mode, err)
	}
	for _, rel := range []string{"/escape/outside", "/abs/etc/passwd", "/../outside", "/usr/../../outside", "/usr//bin/tool", "/", ""} {
		if st, err := lstatBeneath(upper, rel); err == nil {
			t.Errorf("lstatBeneath(%q) found mode %o, want an error", rel, st.Mode)
		}
	}
	if st, err := lstatBeneath(upper, "/link"); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("lstatBeneath of a symlink: mode %o, %v; want the link itself", st.Mode, err)
	}
	if _, err := lstatBeneath(upper, strings.Repeat("/a", maxDepth+1)); err == nil {
		t.Error("lstatBeneath of a path deeper than the bound succeeded")
	}
}

// BenchmarkExecEnrich measures reading one exec's fields from /proc, the
// source's cost per exec beyond the kernel's.
func BenchmarkExecEnrich(b *testing.B) {
	p, err := newProcfs("")
	if err != nil {
		b.Fatal(err)
	}
	pid := uint32(os.Getpid())
	b.ReportAllocs()
	for b.Loop() {
		var e probe.Event
		if _, g := p.exec(pid, &e, nil); g != 0 {
			b.Fatalf("missing %s", g)
		}
	}
}
