package fallback

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
)

// procfs reads what the proc connector does not carry from /proc. Every
// read may fail because the process is gone; what was read is kept.
type procfs struct {
	// cgroup2 is the cgroup v2 mount point, "" when there is none.
	cgroup2  string
	hostRoot string
	// mounts caches one process's mount table while an exec and its
	// files are checked for drift.
	mounts mountCache
}

// Bounds of the /proc files read.
const (
	maxStatBytes      = 4 << 10
	maxStatusBytes    = 4 << 10
	maxCgroupBytes    = 16 << 10
	maxMountinfoBytes = 4 << 20
	maxNetLine        = 4 << 10
)

func newProcfs(hostRoot string) (*procfs, error) {
	if hostRoot == "" {
		hostRoot = "/"
	}
	if !filepath.IsAbs(hostRoot) {
		return nil, fmt.Errorf("host root %q is not an absolute path", hostRoot)
	}
	b, _, err := readFileLimit("/proc/self/mountinfo", maxMountinfoBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the sensor's mounts failed: %w", err)
	}
	mounts, err := parseMountinfo(b)
	if err != nil {
		return nil, fmt.Errorf("parsing /proc/self/mountinfo failed: %w", err)
	}
	p := &procfs{hostRoot: hostRoot}
	for _, m := range mounts {
		// The first cgroup2 mount whose root is the hierarchy's: on hybrid
		// hosts /sys/fs/cgroup/unified.
		if m.fsType == "cgroup2" && m.root == "/" {
			p.cgroup2 = m.point
			break
		}
	}
	return p, nil
}

// task is what fork and exec read of a process, kept for its exit.
type task struct {
	comm         string
	uid          uint32
	cgroupID     uint64
	cgroup       string
	mntNS, netNS uint32
	// cgroupFromV1 says cgroup is the v1 memory controller's, which an
	// exiting process no longer shows.
	cgroupFromV1 bool
}

func (t task) fill(e *probe.Event) {
	e.Comm, e.UID, e.CgroupID, e.Cgroup, e.MntNS, e.NetNS = t.comm, t.uid, t.cgroupID, t.cgroup, t.mntNS, t.netNS
}

// gaps names the fields of one fork or exec that /proc did not yield. A
// process that exits while it is read loses its memory (executable,
// arguments), descriptors and namespaces, and on cgroup v1 hierarchies
// shows the root cgroup; the sensor cannot wait for a process, so what is
// gone stays zero and the event is counted as incomplete.
type gaps uint8

const (
	gapExited gaps = 1 << iota // exiting or gone by the end of the reads
	gapComm
	gapStatus // uid and parent
	gapCgroup
	gapNamespaces
	gapFilename
	gapArgs
)

var gapNames = []string{"exited", "comm", "status", "cgroup", "namespaces", "filename", "args"}

// String lists the gaps for the log, "" for none.
func (g gaps) String() string {
	var names []string
	for i, n := range gapNames {
		if g&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

func pidDir(pid uint32) string { return "/proc/" + strconv.FormatUint(uint64(pid), 10) }

// task reads the fields every event carries: comm, real uid, parent (when
// e has none), cgroup and namespaces. Whether the process exited while
// they were read is for the caller to check, after its own reads.
func (p *procfs) task(pid uint32, e *probe.Event) (task, gaps) {
	dir := pidDir(pid)
	var t task
	var g gaps
	t.comm = readComm(dir)
	if t.comm == "" {
		g |= gapComm
	}
	g |= gapStatus
	if b, _, err := readFileLimit(dir+"/status", maxStatusBytes); err == nil {
		if uid, ppid, ok := parseStatus(b); ok {
			g &^= gapStatus
			t.uid = uid
			if e.PPID == 0 {
				e.PPID = ppid
			}
		}
	}
	g |= gapCgroup
	if b, _, err := readFileLimit(dir+"/cgroup", maxCgroupBytes); err == nil {
		g &^= gapCgroup
		v2, memory := parseCgroupFile(b)
		if p.cgroup2 != "" && strings.HasPrefix(v2, "/") {
			var st unix.Stat_t
			if unix.Stat(p.cgroup2+v2, &st) == nil {
				t.cgroupID = st.Ino
			}
		}
		// As the probe: the v2 name, or where the process sits in the v2
		// root (cgroup v1 hosts), the v1 memory controller's.
		if v2 != "" && v2 != "/" {
			t.cgroup = cgroupName(v2)
		} else {
			t.cgroup, t.cgroupFromV1 = cgroupName(memory), true
		}
	}
	if l, err := os.Readlink(dir + "/ns/mnt"); err == nil {
		t.mntNS, _ = parseNSLink(l, "mnt")
	}
	if l, err := os.Readlink(dir + "/ns/net"); err == nil {
		t.netNS, _ = parseNSLink(l, "net")
	}
	if t.mntNS == 0 || t.netNS == 0 {
		g |= gapNamespaces
	}
	t.fill(e)
	return t, g
}

// fork reads a new process's fields, as task does.
func (p *procfs) fork(pid uint32, e *probe.Event) (task, gaps) {
	t, g := p.task(pid, e)
	return p.settle(pid, e, t, g)
}

// settle checks, after every read of an event, whether the process had
// started to exit: its reads may then have found its memory, descriptors
// and namespaces released, and a cgroup v1 path reset to the root, so the
// cgroup name read is cleared as unknown. Reads before PF_EXITING are
// exact, and the flag is never cleared, so checking last covers them all.
func (p *procfs) settle(pid uint32, e *probe.Event, t task, g gaps) (task, gaps) {
	if !exiting(pidDir(pid)) {
		return t, g
	}
	g |= gapExited
	if t.cgroupFromV1 {
		t.cgroup, e.Cgroup = "", ""
		g |= gapCgroup
	}
	return t, g
}

// exiting reports whether the process at dir has started to exit, or is
// gone.
func exiting(dir string) bool {
	b, _, err := readFileLimit(dir+"/stat", maxStatBytes)
	if err != nil {
		return true
	}
	flags, ok := parseStatFlags(b)
	return !ok || flags&pfExiting != 0
}

// exited fills an exit event of a process not seen before: a zombie still
// has its comm and status.
func (p *procfs) exited(pid uint32, e *probe.Event) {
	dir := pidDir(pid)
	e.Comm = readComm(dir)
	if b, _, err := readFileLimit(dir+"/status", maxStatusBytes); err == nil {
		if uid, _, ok := parseStatus(b); ok {
			e.UID = uid
		}
	}
}

// exec reads an exec's fields: those of task, then the program, its
// arguments, its standard descriptors and drift. opens are the files
// fanotify saw the process open for execution, first the one executed.
//
// The proc connector reports an exec once it is complete: the new
// program's executable and arguments are in place, so an empty one means
// the process is exiting, not that it is still being set up, and waiting
// would not bring it back.
func (p *procfs) exec(pid uint32, e *probe.Event, opens []execOpen) (task, gaps) {
	defer p.mounts.reset()
	t, g := p.task(pid, e)
	dir := pidDir(pid)
	exe, _ := os.Readlink(dir + "/exe")
	e.Filename = exe
	for _, o := range opens {
		e.Drift = e.Drift || o.drift
	}
	if len(opens) > 0 {
		e.Filename = opens[0].path
	}
	e.Filename = truncate(e.Filename, maxFilename)
	if e.Filename == "" {
		g |= gapFilename
	}
	// Even an exec with an empty argv has an argument block (Linux 5.18+
	// adds an empty argv[0]); only a released one reads as nothing.
	if b, truncated, err := readFileLimit(dir+"/cmdline", maxArgBytes); err == nil && len(b) > 0 {
		e.Args, e.ArgsTruncated = splitArgs(b), truncated
	} else {
		g |= gapArgs
	}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if exe != "" && unix.Stat(dir+"/exe", &st) == nil && unix.Statfs(dir+"/exe", &fs) == nil && fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		if drift, err := p.inUpper(pid, exe, &st); err == nil {
			e.Drift = e.Drift || drift
		}
	}
	p.stdio(pid, e)
	return p.settle(pid, e, t, g)
}

func readComm(dir string) string {
	b, _, err := readFileLimit(dir+"/comm", maxComm+1)
	if err != nil {
		return ""
	}
	return truncate(strings.TrimSuffix(string(b), "\n"), maxComm)
}

// readFileLimit reads at most limit bytes of name; truncated says there
// was more.
func readFileLimit(name string, limit int) (b []byte, truncated bool, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	b, err = io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > limit {
		return b[:limit], true, nil
	}
	return b, false, nil
}

// stdio sets what descriptors 0, 1 and 2 are, and Remote to the peer of
// the first that is a connected TCP or UDP socket.
func (p *procfs) stdio(pid uint32, e *probe.Event) {
	dir := pidDir(pid)
	types := [3]*probe.FileType{&e.Stdin, &e.Stdout, &e.Stderr}
	var sockets [3]uint64
	var want []uint64
	for fd := range 3 {
		name := dir + "/fd/" + strconv.Itoa(fd)
		l, err := os.Readlink(name)
		if err != nil {
			continue
		}
		kind, ino := parseFDLink(l)
		switch kind {
		case fdPipe:
			*types[fd] = probe.FilePipe
		case fdSocket:
			*types[fd] = probe.FileSocket
			sockets[fd] = ino
			want = append(want, ino)
		case fdPath:
			*types[fd] = pathType(name, l)
		default:
			*types[fd] = probe.FileOther
		}
	}
	if len(want) == 0 {
		return
	}
	found := lookupSockets(dir, want)
	for fd, ino := range sockets {
		s, ok := found[ino]
		if ino == 0 || !ok {
			continue
		}
		*types[fd] = s.typ
		if !e.Remote.IsValid() && s.remote.IsValid() {
			e.Remote = s.remote
		}
	}
}

// pathType is the type of the file an fd link to a path refers to, by its
// mode, or by its name when it can no longer be stat'ed.
func pathType(fdPath, target string) probe.FileType {
	var st unix.Stat_t
	if err := unix.Stat(fdPath, &st); err != nil {
		if strings.HasPrefix(target, "/dev/") {
			return probe.FileChar
		}
		return probe.FileReg
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return probe.FileReg
	case unix.S_IFCHR:
		return probe.FileChar
	case unix.S_IFIFO:
		return probe.FilePipe
	case unix.S_IFSOCK:
		return probe.FileUnix
	}
	return probe.FileOther
}

// socketInfo is a socket found in /proc/<pid>/net.
type socketInfo struct {
	typ    probe.FileType
	remote netip.AddrPort
}

// socketTables are searched in order; each lists the sockets of the
// process's network namespace.
var socketTables = []struct {
	file string
	typ  probe.FileType
}{
	{"tcp", probe.FileTCP}, {"tcp6", probe.FileTCP},
	{"udp", probe.FileUDP}, {"udp6", probe.FileUDP},
	{"unix", probe.FileUnix},
}

// lookupSockets finds the sockets with the inodes want in the tables of
// the process at dir; those found in none (netlink, raw, packet …) are
// absent from the result.
func lookupSockets(dir string, want []uint64) map[uint64]socketInfo {
	found := make(map[uint64]socketInfo, len(want))
	for _, tbl := range socketTables {
		if err := scanSocketTable(dir+"/net/"+tbl.file, tbl.typ, want, found); err != nil {
			continue
		}
		if len(found) == len(want) {
			break
		}
	}
	return found
}

// scanSocketTable reads one /proc/<pid>/net table until every wanted
// inode is found.
func scanSocketTable(path string, typ probe.FileType, want []uint64, found map[uint64]socketInfo) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 512), maxNetLine)
	for sc.Scan() {
		var ino uint64
		var remote netip.AddrPort
		var ok bool
		if typ == probe.FileUnix {
			ino, ok = parseUnixLine(sc.Bytes())
		} else {
			ino, remote, ok = parseInetLine(sc.Bytes())
		}
		if !ok || ino == 0 {
			continue
		}
		for _, w := range want {
			if w != ino {
				continue
			}
			if _, dup := found[ino]; !dup {
				found[ino] = socketInfo{typ: typ, remote: remote}
			}
		}
		if len(found) == len(want) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s failed: %w", path, err)
	}
	return nil
}

// errUnmapped marks a file path the process's root does not contain.
var errUnmapped = errors.New("path outside the process's root")

// mountCache holds the root and mount table of the process last looked at.
type mountCache struct {
	pid    uint32
	root   string
	mounts []mount
	valid  bool
}

func (c *mountCache) reset() { *c = mountCache{} }

// mountsOf returns the root (as the sensor sees it) and mount table of pid.
func (p *procfs) mountsOf(pid uint32) (string, []mount, error) {
	if p.mounts.valid && p.mounts.pid == pid {
		return p.mounts.root, p.mounts.mounts, nil
	}
	dir := pidDir(pid)
	root, err := os.Readlink(dir + "/root")
	if err != nil {
		return "", nil, fmt.Errorf("reading the root of process %d failed: %w", pid, err)
	}
	b, _, err := readFileLimit(dir+"/mountinfo", maxMountinfoBytes)
	if err != nil {
		return "", nil, fmt.Errorf("reading the mounts of process %d failed: %w", pid, err)
	}
	mounts, err := parseMountinfo(b)
	if err != nil {
		return "", nil, fmt.Errorf("parsing the mounts of process %d failed: %w", pid, err)
	}
	p.mounts = mountCache{pid: pid, root: root, mounts: mounts, valid: true}
	return root, mounts, nil
}

// inUpper reports whether the file at path, as /proc shows it to the
// sensor, executed or opened by process pid, lies in the upper (writable)
// layer of an overlayfs. st is the file's stat through the overlay.
func (p *procfs) inUpper(pid uint32, path string, st *unix.Stat_t) (bool, error) {
	// Through overlayfs only an upper-layer file is really unlinked; a
	// lower one is hidden by a whiteout and keeps its links.
	if st.Nlink == 0 {
		return true, nil
	}
	root, mounts, err := p.mountsOf(pid)
	if err != nil {
		return false, err
	}
	// /proc shows paths from the sensor's root; mountinfo from the
	// process's. They differ for a chroot the sensor can see into.
	if root != "/" {
		rel, ok := strings.CutPrefix(path, root)
		if !ok || rel != "" && rel[0] != '/' {
			return false, fmt.Errorf("%w: %q is not under %q", errUnmapped, path, root)
		}
		path = rel
	}
	m, rel, ok := mountOf(mounts, path)
	if !ok || m.fsType != "overlay" {
		return false, nil
	}
	upper, ok, err := superOption(m.superOptions, "upperdir")
	if err != nil || !ok {
		// No upperdir: a read-only overlay, nothing can be dropped.
		return false, err
	}
	if !filepath.IsAbs(upper) {
		return false, fmt.Errorf("overlay upperdir %q is not absolute", upper)
	}
	ust, err := lstatBeneath(filepath.Join(p.hostRoot, upper), rel)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ust.Mode&unix.S_IFMT == unix.S_IFREG, nil
}

// maxDepth bounds the components of a path looked up under an upperdir.
const maxDepth = 256

// lstatBeneath stats rel under dir without following any symlink in rel
// and without leaving dir: rel comes from a container, whose upper layer
// may hold symlinks to anywhere on the host.
func lstatBeneath(dir, rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	if len(parts) > maxDepth {
		return st, fmt.Errorf("path %q has more than %d components", rel, maxDepth)
	}
	for _, name := range parts {
		if name == "" || name == "." || name == ".." {
			return st, fmt.Errorf("path %q has an empty, . or .. component", rel)
		}
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, fmt.Errorf("opening %s failed: %w", dir, err)
	}
	for _, name := range parts[:len(parts)-1] {
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return st, fmt.Errorf("opening %s under %s failed: %w", name, dir, err)
		}
		fd = next
	}
	defer unix.Close(fd)
	if err := unix.Fstatat(fd, parts[len(parts)-1], &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, fmt.Errorf("stat of %s under %s failed: %w", rel, dir, err)
	}
	return st, nil
}
