package fallback

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// fanWatch is the fanotify group watching overlay filesystems for files
// opened for execution. It is used by the reading goroutine only.
type fanWatch struct {
	fd   int
	proc *procfs
	log  *slog.Logger
	// seen holds the mounts whose filesystem was marked or found not to be
	// an overlay, by unique mount id.
	seen  map[uint64]bool
	opens map[uint32][]execOpen // by process id, since its last exec
	buf   []byte
	evs   []fanEvent
}

// execOpen is a file a process opened for execution.
type execOpen struct {
	path  string
	drift bool
}

// Bounds of fanWatch's state: the opens of processes whose exec fails
// are only dropped at their exit, or when the map is full.
const (
	maxOpenPIDs = 4096
	maxOpens    = 8 // per exec: the program, a script's interpreter, ld.so …
	maxSeen     = 1 << 16
)

func newFanWatch(proc *procfs, log *slog.Logger) (*fanWatch, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init failed (it needs CAP_SYS_ADMIN): %w", err)
	}
	w := &fanWatch{fd: fd, proc: proc, log: log, seen: map[uint64]bool{}, opens: map[uint32][]execOpen{}, buf: make([]byte, 16<<10)}
	// A probe of FAN_OPEN_EXEC (Linux 5.0) on the sensor's own root: a
	// kernel without it refuses the mask, and the watch is useless.
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_OPEN_EXEC, unix.AT_FDCWD, "/proc/self/root"); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("placing a FAN_OPEN_EXEC filesystem mark failed: %w", err)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_REMOVE|unix.FAN_MARK_FILESYSTEM, unix.FAN_OPEN_EXEC, unix.AT_FDCWD, "/proc/self/root"); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("removing the probe mark failed: %w", err)
	}
	// Containers started before the sensor: their runtime mounted their
	// overlays in this mount namespace.
	b, _, err := readFileLimit("/proc/self/mountinfo", maxMountinfoBytes)
	if err == nil {
		mounts, _ := parseMountinfo(b)
		for _, m := range mounts {
			if m.fsType == "overlay" {
				w.mark(m.point)
			}
		}
	}
	return w, nil
}

func (w *fanWatch) close() error { return unix.Close(w.fd) }

// watchRoot marks the filesystem of pid's root when it is an overlay not
// marked yet, so that the files later execs in it open are seen.
func (w *fanWatch) watchRoot(pid uint32) { w.mark(pidDir(pid) + "/root") }

// mark places a filesystem mark on the overlay at path, once per mount.
func (w *fanWatch) mark(path string) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		return
	}
	// Without a unique (never reused) mount id (Linux 6.8) a reused id
	// could hide a new overlay, so every exec re-marks: adding an
	// existing mark changes nothing.
	unique := stx.Mask&unix.STATX_MNT_ID_UNIQUE != 0
	if unique && w.seen[stx.Mnt_id] {
		return
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return
	}
	isOverlay := fs.Type == unix.OVERLAYFS_SUPER_MAGIC
	if isOverlay {
		if err := unix.FanotifyMark(w.fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_OPEN_EXEC, unix.AT_FDCWD, path); err != nil {
			w.log.Warn("fanotify cannot watch an overlay: scripts run in it are not checked for drift", "path", path, "err", err)
		}
	}
	if unique {
		if len(w.seen) >= maxSeen {
			clear(w.seen)
		}
		w.seen[stx.Mnt_id] = isOverlay
	}
}

// drain reads every queued fanotify event, records the files opened for
// execution and closes their descriptors. It returns how many queue
// overflows it saw.
func (w *fanWatch) drain() uint64 {
	var overflows uint64
	for {
		n, err := unix.Read(w.fd, w.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				w.log.Warn("reading fanotify events failed", "err", err)
			}
			return overflows
		}
		if n <= 0 {
			return overflows
		}
		var perr error
		w.evs, perr = parseFanotify(w.evs[:0], w.buf[:n])
		for _, ev := range w.evs {
			if ev.mask&fanQOverflow != 0 {
				overflows++
			}
			if ev.fd < 0 {
				continue
			}
			if ev.mask&fanOpenExec != 0 && ev.pid > 0 {
				w.record(uint32(ev.pid), int(ev.fd))
			}
			unix.Close(int(ev.fd))
		}
		if perr != nil {
			w.log.Warn("fanotify event malformed", "err", perr)
			return overflows
		}
	}
}

// record notes that pid opened the file at fd for execution, and whether
// it is drift.
func (w *fanWatch) record(pid uint32, fd int) {
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return
	}
	o := execOpen{path: path}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if unix.Fstat(fd, &st) == nil && unix.Fstatfs(fd, &fs) == nil && fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		drift, err := w.proc.inUpper(pid, path, &st)
		if err != nil {
			w.log.Debug("drift of a file opened for execution unknown", "pid", pid, "path", path, "err", err)
		}
		o.drift = drift
	}
	list := w.opens[pid]
	if len(list) >= maxOpens {
		return
	}
	if list == nil && len(w.opens) >= maxOpenPIDs {
		clear(w.opens)
	}
	w.opens[pid] = append(list, o)
}

// take returns and forgets the files pid opened for execution since its
// last exec.
func (w *fanWatch) take(pid uint32) []execOpen {
	o := w.opens[pid]
	delete(w.opens, pid)
	return o
}

func (w *fanWatch) forget(pid uint32) { delete(w.opens, pid) }
