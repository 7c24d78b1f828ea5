package track

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// cgroup2Magic is CGROUP2_SUPER_MAGIC.
const cgroup2Magic = 0x63677270

// defaultCgroupRoot finds the cgroup v2 mount: the unified hierarchy of a
// hybrid host, or /sys/fs/cgroup.
func defaultCgroupRoot() string {
	for _, dir := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil && st.Type == cgroup2Magic {
			return dir
		}
	}
	return ""
}

// readProc reads one process from the proc root. A process that is gone
// gives an error wrapping fs.ErrNotExist or errGone.
func (t *Tracker) readProc(pid uint32) (wire.Process, ContainerKey, error) {
	dir := filepath.Join(t.procRoot, strconv.FormatUint(uint64(pid), 10))
	statBytes, _, err := readBounded(filepath.Join(dir, "stat"), maxStatBytes)
	if err != nil {
		return wire.Process{}, ContainerKey{}, err
	}
	st, err := parseStat(statBytes)
	if err != nil {
		return wire.Process{}, ContainerKey{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, _, err := readBounded(filepath.Join(dir, "status"), maxStatusBytes)
	if err != nil {
		return wire.Process{}, ContainerKey{}, err
	}
	uid, err := parseStatusUID(status)
	if err != nil {
		return wire.Process{}, ContainerKey{}, fmt.Errorf("process %d: %w", pid, err)
	}
	info := wire.Process{PID: pid, PPID: st.ppid, UID: uid, Comm: clean(st.comm, wire.MaxString)}
	if boot, err := t.bootTime(); err == nil {
		info.Start = boot.Add(time.Duration(st.start) * (time.Second / userHZ))
	}
	// A kernel thread has no executable and an empty command line; a
	// process that exits now loses them first. Either way the rest is
	// still worth having.
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		info.Exe = clean(exe, wire.MaxString)
	}
	if cmdline, full, err := readBounded(filepath.Join(dir, "cmdline"), maxCmdlineBytes); err == nil {
		info.Args, info.ArgsTruncated = cleanArgs(splitCmdline(cmdline, full))
	}
	var key ContainerKey
	if link, err := os.Readlink(filepath.Join(dir, "ns", "mnt")); err == nil {
		key.MntNS, _ = parseNSLink(link, "mnt")
	}
	if cg, _, err := readBounded(filepath.Join(dir, "cgroup"), maxCgroupBytes); err == nil {
		var v2 string
		v2, key.Cgroup = parseCgroup(cg)
		if v2 != "" && t.cgroupRoot != "" {
			// A cgroup v2 id is its directory's inode number.
			if fi, err := os.Stat(filepath.Join(t.cgroupRoot, filepath.Clean("/"+v2))); err == nil {
				if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
					key.CgroupID = sys.Ino
				}
			}
		}
	}
	// The stat file is read again: if the PID now names another process
	// (it exited and the PID was reused while we read), what we read may
	// mix the two.
	again, _, err := readBounded(filepath.Join(dir, "stat"), maxStatBytes)
	if err != nil {
		return wire.Process{}, ContainerKey{}, err
	}
	if st2, err := parseStat(again); err != nil || st2.start != st.start {
		return wire.Process{}, ContainerKey{}, fmt.Errorf("process %d: %w", pid, errGone)
	}
	return info, key, nil
}

// userHZ is the unit of /proc/<pid>/stat's times (USER_HZ), 100 on every
// architecture Linux builds for today.
const userHZ = 100

// bootTime returns when the host booted, from the proc root's stat file,
// read once.
func (t *Tracker) bootTime() (time.Time, error) {
	t.bootOnce.Do(func() {
		b, _, err := readBounded(filepath.Join(t.procRoot, "stat"), 64<<10)
		if err != nil {
			t.bootErr = err
			return
		}
		t.boot, t.bootErr = parseBootTime(b)
	})
	return t.boot, t.bootErr
}

// readBounded reads at most max bytes of a file and says whether that was
// all of it. A read that fails because the process is gone (ESRCH) wraps
// errGone.
func readBounded(name string, max int) ([]byte, bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if errors.Is(err, syscall.ESRCH) {
		return nil, false, fmt.Errorf("reading %s: %w", name, errGone)
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(b) > max {
		return b[:max], false, nil
	}
	return b, true, nil
}
