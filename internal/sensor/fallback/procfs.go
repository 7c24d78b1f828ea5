package fallback

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Bounds shared with the eBPF probe's records, so both sources produce
// events of the same shape.
const (
	// maxArgBytes bounds an exec's arguments with their NULs, the probe's
	// argument block.
	maxArgBytes = 1024
	// maxFilename bounds Filename, the probe's 256-byte buffer less its NUL.
	maxFilename = 255
	// maxCgroupName is the probe's 64-byte cgroup name buffer less its NUL.
	maxCgroupName = 63
	// maxComm is the kernel's TASK_COMM_LEN less its NUL.
	maxComm = 15
)

// parseStatus reads the real uid and the parent's process id from
// /proc/<pid>/status. ok is false unless both were found.
func parseStatus(b []byte) (uid, ppid uint32, ok bool) {
	var haveUID, havePPID bool
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		switch {
		case bytes.HasPrefix(line, []byte("Uid:")):
			f := bytes.Fields(line[4:])
			if len(f) == 0 {
				return 0, 0, false
			}
			v, err := strconv.ParseUint(string(f[0]), 10, 32)
			if err != nil {
				return 0, 0, false
			}
			uid, haveUID = uint32(v), true
		case bytes.HasPrefix(line, []byte("PPid:")):
			v, err := strconv.ParseUint(string(bytes.TrimSpace(line[5:])), 10, 32)
			if err != nil {
				return 0, 0, false
			}
			ppid, havePPID = uint32(v), true
		}
		if haveUID && havePPID {
			return uid, ppid, true
		}
	}
	return 0, 0, false
}

// pfExiting is the kernel's PF_EXITING task flag, set when a process
// starts to exit, before its memory, descriptors and namespaces are
// released.
const pfExiting = 0x00000004

// parseStatFlags returns the task flags, field 9, of /proc/<pid>/stat:
//
//	42 (comm with ) and spaces) S 1 42 42 0 -1 4194560 …
//
// The comm may hold any byte but NUL, so the fields start after its last
// ')'. ok is false when the flags are not there.
func parseStatFlags(b []byte) (flags uint32, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	// state ppid pgrp session tty_nr tpgid flags
	n := 0
	for f := range bytes.FieldsSeq(b[i+1:]) {
		if n == 6 {
			v, err := strconv.ParseUint(string(f), 10, 32)
			if err != nil {
				return 0, false
			}
			return uint32(v), true
		}
		n++
	}
	return 0, false
}

// parseCgroupFile returns a process's cgroup v2 path and its v1 memory
// controller path from /proc/<pid>/cgroup, each "" when absent.
func parseCgroupFile(b []byte) (v2, memory string) {
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		// hierarchy-id:controller-list:path; the path may hold colons.
		id, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		ctrls, path, ok := bytes.Cut(rest, []byte{':'})
		if !ok {
			continue
		}
		switch {
		case string(id) == "0" && len(ctrls) == 0:
			v2 = string(path)
		case memory == "" && hasController(ctrls, "memory"):
			memory = string(path)
		}
	}
	return v2, memory
}

func hasController(list []byte, name string) bool {
	for c := range bytes.SplitSeq(list, []byte{','}) {
		if string(c) == name {
			return true
		}
	}
	return false
}

// cgroupName is the last element of a cgroup path cut to the probe's
// bound; "" for the root.
func cgroupName(path string) string {
	name := path[strings.LastIndexByte(path, '/')+1:]
	if len(name) > maxCgroupName {
		name = name[:maxCgroupName]
	}
	return name
}

// splitArgs splits /proc/<pid>/cmdline, read up to maxArgBytes, into
// arguments as the probe splits its argument block. A process may rewrite its argument area, so the bytes are
// split, never trusted: a last argument without its NUL is kept as it is.
func splitArgs(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	args := make([]string, 0, bytes.Count(b, []byte{0})+1)
	for a := range bytes.SplitSeq(b, []byte{0}) {
		args = append(args, string(a))
	}
	return args
}

// truncate cuts s to n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseNSLink reads the inode number from a namespace link such as
// "mnt:[4026531841]". Namespace inodes are 32-bit (proc_inum).
func parseNSLink(link, kind string) (uint32, bool) {
	v, ok := bracketed(link, kind)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	return uint32(n), err == nil
}

// bracketed returns v from "prefix:[v]".
func bracketed(s, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(s, prefix+":[")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "]")
}

// fdKind is what a /proc/<pid>/fd/N link names.
type fdKind uint8

const (
	fdOther  fdKind = iota // anon_inode:…, or anything unrecognised
	fdSocket               // socket:[inode]
	fdPipe                 // pipe:[inode]
	fdPath                 // a path in the file system
)

// parseFDLink classifies the target of a /proc/<pid>/fd/N link and
// returns a socket's inode.
func parseFDLink(link string) (fdKind, uint64) {
	switch {
	case strings.HasPrefix(link, "/"):
		return fdPath, 0
	case strings.HasPrefix(link, "pipe:["):
		return fdPipe, 0
	case strings.HasPrefix(link, "socket:["):
		v, _ := bracketed(link, "socket")
		ino, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fdOther, 0
		}
		return fdSocket, ino
	}
	return fdOther, 0
}

// parseInetLine parses one line of /proc/<pid>/net/{tcp,tcp6,udp,udp6}:
//
//	sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
//	 0: 0100007F:0CEA 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000 0 0 12345 …
//
// It returns the socket's inode and its remote address (invalid when the
// socket has no peer). ok is false for the header and malformed lines.
func parseInetLine(line []byte) (inode uint64, remote netip.AddrPort, ok bool) {
	var f [10][]byte
	n := 0
	for field := range bytes.FieldsSeq(line) {
		if n == len(f) {
			break
		}
		f[n] = field
		n++
	}
	if n < len(f) || !bytes.HasSuffix(f[0], []byte{':'}) {
		return 0, netip.AddrPort{}, false
	}
	if _, err := hexAddrPort(f[1]); err != nil {
		return 0, netip.AddrPort{}, false
	}
	remote, err := hexAddrPort(f[2])
	if err != nil {
		return 0, netip.AddrPort{}, false
	}
	inode, err = strconv.ParseUint(string(f[9]), 10, 64)
	if err != nil {
		return 0, netip.AddrPort{}, false
	}
	if remote.Port() == 0 && remote.Addr().IsUnspecified() {
		remote = netip.AddrPort{}
	}
	return inode, remote, true
}

// hexAddrPort parses the kernel's "ADDR:PORT" form: the address as 32-bit
// words printed in host byte order (8 hex digits for IPv4, 32 for IPv6),
// the port as 4 hex digits. IPv4-mapped IPv6 addresses are unmapped.
func hexAddrPort(b []byte) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut(b, []byte{':'})
	if !ok || len(p) != 4 || len(a) != 8 && len(a) != 32 {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q", ErrMalformed, b)
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: port %q", ErrMalformed, p)
	}
	var raw [16]byte
	for i := 0; i < len(a)/8; i++ {
		w, err := strconv.ParseUint(string(a[i*8:i*8+8]), 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: address %q", ErrMalformed, a)
		}
		binary.NativeEndian.PutUint32(raw[i*4:], uint32(w))
	}
	var addr netip.Addr
	if len(a) == 8 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw).Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// parseUnixLine returns the inode of one line of /proc/<pid>/net/unix:
//
//	Num       RefCount Protocol Flags    Type St Inode Path
//	0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/x.sock
func parseUnixLine(line []byte) (uint64, bool) {
	n := 0
	for field := range bytes.FieldsSeq(line) {
		if n == 0 && !bytes.HasSuffix(field, []byte{':'}) {
			return 0, false
		}
		if n == 6 {
			v, err := strconv.ParseUint(string(field), 10, 64)
			return v, err == nil
		}
		n++
	}
	return 0, false
}

// mount is one line of /proc/<pid>/mountinfo.
type mount struct {
	// root is the directory of the file system mounted, point where it
	// is mounted, relative to the process's root.
	root, point string
	fsType      string
	// superOptions are the file system's options, still escaped.
	superOptions string
}

// maxMountFields bounds the optional fields of a mountinfo line.
const maxMountFields = 64

// parseMountinfo parses /proc/<pid>/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Paths are unescaped (the kernel writes space, tab, newline and backslash
// as octal \ooo). A malformed line is an error wrapping ErrMalformed.
func parseMountinfo(b []byte) ([]mount, error) {
	var mounts []mount
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		// Fields are separated by single spaces; the kernel escapes spaces
		// in paths, and only ASCII whitespace, so a split on ' ' is exact
		// where strings.Fields would also split at Unicode spaces.
		f := strings.Split(string(line), " ")
		if len(f) < 10 || len(f) > 10+maxMountFields {
			return nil, fmt.Errorf("%w: mountinfo line with %d fields", ErrMalformed, len(f))
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 {
			return nil, fmt.Errorf("%w: mountinfo line without its separator", ErrMalformed)
		}
		if len(f) != sep+4 {
			return nil, fmt.Errorf("%w: mountinfo line with %d fields after the separator, want 3", ErrMalformed, len(f)-sep-1)
		}
		root, err := unescapeOctal(f[3])
		if err != nil {
			return nil, err
		}
		point, err := unescapeOctal(f[4])
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(point, "/") {
			return nil, fmt.Errorf("%w: mountinfo mount point %q is not absolute", ErrMalformed, point)
		}
		if !strings.HasPrefix(root, "/") {
			// A bind mount of a namespace file (ip netns, CNI plugins:
			// /run/netns/<name>) has a root named like net:[4026532249].
			// Nothing can be executed from it; it is left out.
			if isPseudoRoot(root) {
				continue
			}
			return nil, fmt.Errorf("%w: mountinfo root %q is not absolute", ErrMalformed, root)
		}
		mounts = append(mounts, mount{root: root, point: point, fsType: f[sep+1], superOptions: f[sep+3]})
	}
	return mounts, nil
}

// isPseudoRoot reports whether a mount's root is the name of a file of a
// file system without directories, "type:[inode]", as the kernel prints
// nsfs and other pseudo file systems' dentries.
func isPseudoRoot(root string) bool {
	kind, rest, ok := strings.Cut(root, ":[")
	if !ok || kind == "" || strings.ContainsRune(kind, '/') {
		return false
	}
	ino, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return false
	}
	_, err := strconv.ParseUint(ino, 10, 64)
	return err == nil
}

// unescapeOctal undoes the kernel's seq_file escaping: \ooo is one byte.
func unescapeOctal(s string) (string, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("%w: escape at the end of %q", ErrMalformed, s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("%w: escape %q", ErrMalformed, s[i:i+4])
		}
		b = append(b, byte(v))
		i += 3
	}
	return string(b), nil
}

// superOption returns the unescaped value of key in a mountinfo super
// options field such as "rw,lowerdir=/l,upperdir=/u,workdir=/w". Commas in
// values are escaped by the kernel, so splitting on them is safe.
func superOption(opts, key string) (string, bool, error) {
	for opt := range strings.SplitSeq(opts, ",") {
		if v, ok := strings.CutPrefix(opt, key+"="); ok {
			u, err := unescapeOctal(v)
			if err != nil {
				return "", false, err
			}
			return u, true, nil
		}
	}
	return "", false, nil
}

// mountOf returns the mount holding path (absolute, relative to the
// process's root) and path relative to the mount's file system root: the
// longest mount point that is path or a parent of it, the last mounted
// when several are stacked on the same point.
func mountOf(mounts []mount, path string) (mount, string, bool) {
	best := -1
	for i, m := range mounts {
		if !under(path, m.point) {
			continue
		}
		if best < 0 || len(m.point) >= len(mounts[best].point) {
			best = i
		}
	}
	if best < 0 {
		return mount{}, "", false
	}
	m := mounts[best]
	rel := strings.TrimPrefix(path, m.point)
	return m, strings.TrimSuffix(m.root, "/") + "/" + strings.TrimPrefix(rel, "/"), true
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	rest, ok := strings.CutPrefix(path, dir)
	return ok && (rest == "" || rest[0] == '/')
}
