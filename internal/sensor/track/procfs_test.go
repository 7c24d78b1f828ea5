package track

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
)

func TestParseStat(t *testing.T) {
	line := "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100 18446744073709551615\n"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(procStat{comm: "a) b (c)", ppid: 17, start: 98765}, got, cmp.AllowUnexported(procStat{})); diff != "" {
		t.Errorf("parseStat (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "1 (x", "1 x) S 1", "1 (x) S 1 2 3", "1 (x) S -1" + strings.Repeat(" 0", 20)} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	for _, tt := range []struct{ in, v2, name string }{
		{"0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope\n", "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope", "cri-containerd-abc.scope"},
		{"12:memory:/docker/0123abcd\n4:cpu,cpuacct:/docker/0123abcd\n0::/\n", "/", "0123abcd"},
		{"4:memory:/\n0::/\n", "/", ""},
		{"0::/a:b/" + strings.Repeat("x", 80) + "\n", "/a:b/" + strings.Repeat("x", 80), strings.Repeat("x", 63)},
		{"garbage\n", "", ""},
	} {
		v2, name := parseCgroup([]byte(tt.in))
		if v2 != tt.v2 || name != tt.name {
			t.Errorf("parseCgroup(%q) = %q, %q; want %q, %q", tt.in, v2, name, tt.v2, tt.name)
		}
	}
}

func TestParseSmallFiles(t *testing.T) {
	if uid, err := parseStatusUID([]byte("Name:\tx\nUid:\t1000\t0\t0\t0\n")); err != nil || uid != 1000 {
		t.Errorf("parseStatusUID = %d, %v; want the real uid 1000", uid, err)
	}
	if _, err := parseStatusUID([]byte("Name:\tx\n")); err == nil {
		t.Error("parseStatusUID without a Uid line succeeded")
	}
	if n, err := parseNSLink("mnt:[4026531841]", "mnt"); err != nil || n != 4026531841 {
		t.Errorf("parseNSLink = %d, %v", n, err)
	}
	for _, bad := range []string{"net:[1]", "mnt:[x]", "mnt:[1", "mnt:[99999999999]"} {
		if _, err := parseNSLink(bad, "mnt"); err == nil {
			t.Errorf("parseNSLink(%q) succeeded", bad)
		}
	}
	if bt, err := parseBootTime([]byte("cpu 1 2\nbtime 1700000000\n")); err != nil || !bt.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("parseBootTime = %v, %v", bt, err)
	}
	args, cut := splitCmdline([]byte("sh\x00-c\x00echo hi\x00"), true)
	if diff := cmp.Diff([]string{"sh", "-c", "echo hi"}, args); diff != "" || cut {
		t.Errorf("splitCmdline (-want +got):\n%s (cut %t)", diff, cut)
	}
	if args, cut := splitCmdline([]byte("sh\x00-c\x00ec"), false); len(args) != 3 || !cut {
		t.Errorf("splitCmdline of a cut file = %q, %t", args, cut)
	}
}

func FuzzParseProcFiles(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0"))
	f.Add([]byte("0::/x\n3:memory:/y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseStat(b); err == nil && len(s.comm) > len(b) {
			t.Fatalf("comm longer than the file")
		}
		if _, name := parseCgroup(b); len(name) > cgroupNameLen {
			t.Fatalf("cgroup name of %d bytes", len(name))
		}
		_, _ = parseStatusUID(b)
		_, _ = parseBootTime(b)
		args, _ := cleanArgs(splitCmdline(b, len(b)%2 == 0))
		n := 0
		for _, a := range args {
			n += len(a)
		}
		if len(args) > 128 || n > 4096 {
			t.Fatalf("%d args of %d bytes", len(args), n)
		}
	})
}

// TestScanRealProc starts a process tree and checks the tracker finds it in
// the host's /proc with its ancestry.
func TestScanRealProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	before := time.Now()
	sh := exec.Command("/bin/sh", "-c", "sleep 300 & echo $!; wait")
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only the processes this test started, by their ids.
		if sh.Process != nil {
			_ = sh.Process.Kill()
			_ = sh.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the sleep's pid: %v", err)
	}
	sleepPID, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("sleep pid %q: %v", line, err)
	}
	t.Cleanup(func() {
		if p, err := os.FindProcess(sleepPID); err == nil {
			_ = p.Kill()
		}
	})

	// $! is known as soon as the shell forked: wait until the child has
	// executed sleep.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sleepPID), "cmdline"))
		if string(cmdline) == "sleep\x00300\x00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not execute sleep within 10s (cmdline %q)", sleepPID, cmdline)
		}
		time.Sleep(5 * time.Millisecond)
	}

	tr := New(Config{})
	n, err := tr.Scan(context.Background())
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if n < 3 {
		t.Fatalf("Scan added %d processes", n)
	}
	en, ok := tr.Lookup(uint32(sleepPID))
	if !ok {
		t.Fatalf("sleep %d not in the table", sleepPID)
	}
	sleepExe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(sleepPID), "exe"))
	if en.Process.Exe != sleepExe || strings.Join(en.Process.Args, " ") != "sleep 300" || en.Process.Comm != "sleep" ||
		en.Process.PPID != uint32(sh.Process.Pid) || en.Process.UID != uint32(os.Getuid()) {
		t.Errorf("sleep's entry %+v, want exe %s, args [sleep 300], ppid %d", en.Process, sleepExe, sh.Process.Pid)
	}
	// Boot time has a second's resolution and start times a tick's.
	if en.Process.Start.Before(before.Add(-2*time.Second)) || en.Process.Start.After(time.Now().Add(2*time.Second)) {
		t.Errorf("sleep started at %v, the test started it at %v", en.Process.Start, before)
	}
	self, _ := os.Readlink("/proc/self/ns/mnt")
	mnt, _ := parseNSLink(self, "mnt")
	if en.Key.MntNS != mnt || mnt == 0 {
		t.Errorf("sleep's mount namespace %d, want ours %d", en.Key.MntNS, mnt)
	}
	cg, _ := os.ReadFile("/proc/self/cgroup")
	if _, name := parseCgroup(cg); en.Key.Cgroup != name {
		t.Errorf("sleep's cgroup %q, want ours %q", en.Key.Cgroup, name)
	}

	ev := probe.Event{Kind: probe.DNS, Time: time.Now(), TGID: uint32(sleepPID), PPID: uint32(sh.Process.Pid), Comm: "sleep", MntNS: mnt,
		DNS: []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 1, 0, 1}}
	w, ok := tr.Convert(ev, nil)
	if !ok {
		t.Fatal("Convert dropped the dns event")
	}
	if err := w.Validate(); err != nil {
		t.Fatalf("invalid event: %v", err)
	}
	if len(w.Ancestors) < 2 {
		t.Fatalf("ancestry %v, want at least the shell and the test", lineage(w.Ancestors))
	}
	shExe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(sh.Process.Pid), "exe"))
	testExe, _ := os.Executable()
	want := []ancestor{
		{uint32(sh.Process.Pid), shExe, "/bin/sh -c sleep 300 & echo $!; wait"},
		{uint32(os.Getpid()), testExe, strings.Join(os.Args, " ")},
	}
	if diff := cmp.Diff(want, lineage(w.Ancestors[:2])); diff != "" {
		t.Errorf("ancestry (-want +got):\n%s", diff)
	}

	// A tracker that never scanned reads the sender from /proc on its
	// first event.
	fresh := New(Config{})
	w, ok = fresh.Convert(ev, nil)
	if !ok || w.Process.Exe != sleepExe || fresh.Stats().Loaded != 1 {
		t.Errorf("first event of an unknown process: %+v, loaded %d; want sleep read from /proc", w.Process, fresh.Stats().Loaded)
	}
}
