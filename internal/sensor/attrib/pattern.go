package attrib

import (
	"strings"
)

// idLen is the length of the container ids containerd's CRI plugin,
// Docker, CRI-O and Podman generate: 64 lowercase hex digits.
const idLen = 64

// cgroupPrefixes are the scope names runtimes give a container's cgroup
// under the systemd cgroup driver ("<prefix><id>.scope"), and under the
// cgroupfs driver where they use one, with the runtime each means.
var cgroupPrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", RuntimeContainerd},
	{"crio-", RuntimeCRIO},
	{"docker-", "docker"},
	{"libpod-", "podman"},
}

// patternMatch is what a cgroup path says about the container it belongs
// to, when it follows a runtime's naming convention.
type patternMatch struct {
	ID string
	// Runtime is the runtime the name's prefix belongs to; "" for a bare
	// id, which any of them may use.
	Runtime string
	// PodUID is the Kubernetes pod's uid, from a "pod<uid>" or
	// "kubepods-<class>-pod<uid>.slice" element above the container's.
	PodUID string
}

// matchCgroupPath finds the container a cgroup path names, looking at its
// elements from the deepest up: containers may create cgroups of their
// own below the one their runtime made. Elements that only look like ids
// of the runtimes' helper processes (crio-conmon-…, libpod-conmon-…) are
// not containers.
func matchCgroupPath(p string) (patternMatch, bool) {
	if len(p) > maxLine {
		return patternMatch{}, false
	}
	elems := strings.Split(p, "/")
	for i := len(elems) - 1; i >= 0; i-- {
		m, ok := matchCgroupName(elems[i])
		if !ok {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			if uid, ok := podUID(elems[j]); ok {
				m.PodUID = uid
				break
			}
		}
		return m, true
	}
	return patternMatch{}, false
}

// matchCgroupName matches one cgroup name (a path element) against the
// runtimes' conventions. A name the BPF program cut to 63 bytes no longer
// holds a whole id and does not match.
func matchCgroupName(name string) (patternMatch, bool) {
	name = strings.TrimSuffix(name, ".scope")
	if isID(name) {
		return patternMatch{ID: name}, true
	}
	for _, p := range cgroupPrefixes {
		if id, ok := strings.CutPrefix(name, p.prefix); ok && isID(id) {
			return patternMatch{ID: id, Runtime: p.runtime}, true
		}
	}
	return patternMatch{}, false
}

func isID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// podUID recognises the cgroup the kubelet makes for a pod: "pod<uid>"
// under the cgroupfs driver, "kubepods-<class>-pod<uid>.slice" with the
// uid's dashes turned into underscores under the systemd driver.
func podUID(elem string) (string, bool) {
	var uid string
	if s, ok := strings.CutSuffix(elem, ".slice"); ok {
		i := strings.LastIndex(s, "-pod")
		if i < 0 || !strings.HasPrefix(s, "kubepods") {
			return "", false
		}
		uid = strings.ReplaceAll(s[i+len("-pod"):], "_", "-")
	} else if s, ok := strings.CutPrefix(elem, "pod"); ok {
		uid = s
	} else {
		return "", false
	}
	if !isUUID(uid) {
		return "", false
	}
	return uid, true
}

// isUUID accepts the canonical 8-4-4-4-12 lowercase hex form pod uids take.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}
