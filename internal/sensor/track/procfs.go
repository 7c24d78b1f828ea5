package track

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// The parsers below read files of /proc/<pid>. The kernel writes them, but
// a process chooses its name and arguments, so they are parsed with
// bounds and without trusting separators in those fields.

// procStat is what the sensor uses of /proc/<pid>/stat.
type procStat struct {
	comm string
	ppid uint32
	// start is the process's start in clock ticks after boot.
	start uint64
}

// parseStat parses /proc/<pid>/stat. The command name is in parentheses
// and may itself hold parentheses and spaces, so the fields after it are
// found from the last ')'.
func parseStat(b []byte) (procStat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("stat has no command name")
	}
	var s procStat
	s.comm = string(b[open+1 : end])
	// Fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime priority nice
	// num_threads itrealvalue starttime.
	fields := strings.Fields(string(b[end+1:]))
	if len(fields) < 20 {
		return procStat{}, fmt.Errorf("stat has %d fields after the command name, want at least 20", len(fields))
	}
	ppid, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil {
		return procStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat starttime: %w", err)
	}
	s.ppid, s.start = uint32(ppid), start
	return s, nil
}

// parseStatusUID returns the real user id from /proc/<pid>/status.
func parseStatusUID(b []byte) (uint32, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			break
		}
		uid, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("status uid: %w", err)
		}
		return uint32(uid), nil
	}
	return 0, fmt.Errorf("status has no Uid line")
}

// parseCgroup returns the cgroup v2 path from /proc/<pid>/cgroup and the
// name the probe reports: the last element of the v2 path or, when that
// is the root (a cgroup v1 host), of the v1 memory controller's path.
func parseCgroup(b []byte) (v2 string, name string) {
	var memory string
	for line := range bytes.Lines(b) {
		line = bytes.TrimSuffix(line, []byte("\n"))
		// hierarchy-id:controllers:path; the path may contain ':'.
		f := bytes.SplitN(line, []byte(":"), 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case string(f[0]) == "0" && len(f[1]) == 0:
			v2 = string(f[2])
		case hasController(f[1], "memory"):
			memory = string(f[2])
		}
	}
	name = lastElement(v2)
	if name == "" {
		name = lastElement(memory)
	}
	return v2, name
}

func hasController(list []byte, c string) bool {
	for f := range bytes.SplitSeq(list, []byte(",")) {
		if string(f) == c {
			return true
		}
	}
	return false
}

// cgroupNameLen is the probe's bound on the cgroup name (64 bytes with the
// terminating NUL), so that names from /proc match the kernel's.
const cgroupNameLen = 63

// lastElement returns the last element of a cgroup path, "" for the root.
func lastElement(p string) string {
	if p == "" || p == "/" {
		return ""
	}
	name := path.Base(p)
	if name == "/" || name == "." {
		return ""
	}
	if len(name) > cgroupNameLen {
		name = name[:cgroupNameLen]
	}
	return name
}

// parseNSLink returns the inode of a namespace from its /proc/<pid>/ns
// link, "mnt:[4026531841]".
func parseNSLink(link, kind string) (uint32, error) {
	s, ok := strings.CutPrefix(link, kind+":[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, fmt.Errorf("namespace link %q is not %s:[inode]", link, kind)
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("namespace link %q: %w", link, err)
	}
	return uint32(n), nil
}

// splitCmdline splits /proc/<pid>/cmdline into arguments. full says the
// whole file was read; if not, the last argument is cut.
func splitCmdline(b []byte, full bool) (args []string, truncated bool) {
	if len(b) == 0 {
		return nil, !full
	}
	if full && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	// A process that rewrote its arguments (setproctitle) may leave one
	// string with spaces and no NULs; it is taken as it is.
	for a := range bytes.SplitSeq(b, []byte{0}) {
		args = append(args, string(a))
	}
	return args, !full
}

// parseBootTime returns the boot time from /proc/stat's btime line.
func parseBootTime(b []byte) (time.Time, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("btime "))
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil || sec <= 0 {
			return time.Time{}, fmt.Errorf("proc stat btime %q is not a time", bytes.TrimSpace(rest))
		}
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("proc stat has no btime line")
}
