package attrib

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Bounds on what is read from /proc. The files are written by the kernel,
// but cgroup names are chosen by whoever created the cgroup, and a
// container may create nested cgroups of its own.
const (
	// maxProcFile bounds /proc/<pid>/cgroup and /proc/self/mountinfo.
	maxProcFile = 256 << 10
	// maxLine bounds one of their lines; longer lines are skipped.
	maxLine = 8 << 10
	// maxCgroupName is how much of a cgroup's name the BPF program copies
	// (a 64-byte buffer with its NUL).
	maxCgroupName = 63
)

// errProc wraps every error about an unreadable or malformed /proc file.
var errProc = errors.New("reading /proc")

// procCgroups is what attribution needs from /proc/<pid>/cgroup: the
// process's cgroup v2 path and its v1 memory controller path, "" when the
// file has no such line.
type procCgroups struct {
	Unified string
	Memory  string
}

// parseProcCgroup parses /proc/<pid>/cgroup: lines of
// "hierarchy-id:controller,list:path". Paths may contain colons; lines
// longer than maxLine and malformed lines are skipped rather than failing
// the whole file, since one odd cgroup must not hide the others.
func parseProcCgroup(data []byte) procCgroups {
	var pc procCgroups
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) > maxLine {
			continue
		}
		id, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		controllers, p, ok := bytes.Cut(rest, []byte{':'})
		if !ok || len(p) == 0 || p[0] != '/' {
			continue
		}
		// The kernel marks a removed v2 cgroup the process still sits in.
		p = bytes.TrimSuffix(p, []byte(" (deleted)"))
		switch {
		case string(id) == "0" && len(controllers) == 0:
			pc.Unified = string(p)
		case hasController(controllers, "memory"):
			pc.Memory = string(p)
		}
	}
	return pc
}

func hasController(list []byte, name string) bool {
	for c := range bytes.SplitSeq(list, []byte{','}) {
		if string(c) == name {
			return true
		}
	}
	return false
}

// keys are what an event from a process carries about its cgroup, derived
// the way bpf/sensor.bpf.c derives them: the v2 cgroup's id and the last
// element of its path, or, when the process sits in the v2 root (cgroup v1
// hosts), the last element of its v1 memory cgroup's path. Name is cut to
// the 63 bytes the kernel side copies; ID is 0 when unknown.
type keys struct {
	ID   uint64
	Name string
}

// cgroupKeys derives a process's keys from its cgroups. cgroup2Root is
// where the cgroup v2 hierarchy is mounted ("" when it is not); the v2 id
// is that directory's inode number, which is what bpf_get_current_cgroup_id
// returns on 64-bit kernels.
func cgroupKeys(pc procCgroups, cgroup2Root string) keys {
	var k keys
	if pc.Unified != "" && pc.Unified != "/" {
		k.Name = lastElement(pc.Unified)
		if cgroup2Root != "" && !strings.Contains(pc.Unified, "/..") {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(cgroup2Root, filepath.Clean(pc.Unified)), &st); err == nil {
				k.ID = st.Ino
			}
		}
	} else if pc.Memory != "" && pc.Memory != "/" {
		k.Name = lastElement(pc.Memory)
	}
	return k
}

// lastElement returns the last element of a cgroup path as the BPF program
// sees it: the kernfs node's name, cut to maxCgroupName bytes.
func lastElement(p string) string {
	name := path.Base(p)
	if name == "/" || name == "." {
		return ""
	}
	return truncateName(name)
}

// truncateName cuts a cgroup name to what the BPF program copies.
func truncateName(name string) string {
	if len(name) > maxCgroupName {
		return name[:maxCgroupName]
	}
	return name
}

// readProcCgroup reads and parses procRoot/<pid>/cgroup.
func readProcCgroup(procRoot string, pid uint32) (procCgroups, error) {
	data, err := readBounded(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "cgroup"))
	if err != nil {
		return procCgroups{}, err
	}
	return parseProcCgroup(data), nil
}

// readBounded reads at most maxProcFile bytes of a file; a longer file is
// an error rather than silently cut, as its tail could hold the line that
// matters.
func readBounded(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProc, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProcFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", errProc, name, err)
	}
	if len(data) > maxProcFile {
		return nil, fmt.Errorf("%w: %s is longer than %d bytes", errProc, name, maxProcFile)
	}
	return data, nil
}

// cgroup2Mount finds, in a mountinfo file, where a cgroup v2 hierarchy is
// mounted with its root (not a cgroup namespace's subtree) at the mount
// point; "" when there is none.
func cgroup2Mount(mountinfo []byte) string {
	for len(mountinfo) > 0 {
		line := mountinfo
		if i := bytes.IndexByte(mountinfo, '\n'); i >= 0 {
			line, mountinfo = mountinfo[:i], mountinfo[i+1:]
		} else {
			mountinfo = nil
		}
		if len(line) > maxLine {
			continue
		}
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(string(line))
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" || fields[3] != "/" {
			continue
		}
		return unescapeOctal(fields[4])
	}
	return ""
}

// unescapeOctal decodes the \ooo escapes the kernel writes in mountinfo
// for spaces, tabs, newlines and backslashes.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
