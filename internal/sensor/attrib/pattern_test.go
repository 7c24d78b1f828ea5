package attrib

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	id1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	id2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	uid = "8b5c2a4e-1f0d-4c36-9a5e-3d2f1b0c9e7a"
)

func TestMatchCgroupPath(t *testing.T) {
	uidUnderscored := strings.ReplaceAll(uid, "-", "_")
	for _, tc := range []struct {
		path string
		want patternMatch
		ok   bool
	}{
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnderscored + ".slice/cri-containerd-" + id1 + ".scope",
			patternMatch{ID: id1, Runtime: RuntimeContainerd, PodUID: uid}, true},
		{"/kubepods/besteffort/pod" + uid + "/" + id1, patternMatch{ID: id1, PodUID: uid}, true},
		{"/kubepods.slice/kubepods-pod" + uidUnderscored + ".slice/crio-" + id1 + ".scope",
			patternMatch{ID: id1, Runtime: RuntimeCRIO, PodUID: uid}, true},
		{"/system.slice/docker-" + id1 + ".scope", patternMatch{ID: id1, Runtime: "docker"}, true},
		{"/docker/" + id1, patternMatch{ID: id1}, true},
		{"/machine.slice/libpod-" + id1 + ".scope/container", patternMatch{ID: id1, Runtime: "podman"}, true},
		// The container's own nested cgroup: the deepest id wins.
		{"/docker/" + id1 + "/" + id2, patternMatch{ID: id2}, true},
		{"/machine.slice/libpod-conmon-" + id1 + ".scope", patternMatch{}, false},
		{"/kubepods.slice/crio-conmon-" + id1 + ".scope", patternMatch{}, false},
		{"/system.slice/ssh.service", patternMatch{}, false},
		{"/process_api/26016773e3ba9d6d46bf296e98f1cf76", patternMatch{}, false},
		{"/docker/" + strings.ToUpper(id1), patternMatch{}, false},
		{"/docker/" + id1 + "0", patternMatch{}, false},
		{"/podnot-a-uid/" + id1, patternMatch{ID: id1}, true},
		{"", patternMatch{}, false},
		{"/" + strings.Repeat("a/", maxLine), patternMatch{}, false},
	} {
		got, ok := matchCgroupPath(tc.path)
		if ok != tc.ok {
			t.Errorf("matchCgroupPath(%.90q) ok = %v, want %v", tc.path, ok, tc.ok)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("matchCgroupPath(%.90q) (-want +got):\n%s", tc.path, diff)
		}
	}
}

func TestMatchCgroupNameCut(t *testing.T) {
	// What the BPF program reports for a systemd scope: cut to 63 bytes,
	// no longer holding the id.
	if m, ok := matchCgroupName(truncateName("cri-containerd-" + id1 + ".scope")); ok {
		t.Errorf("a cut scope name matched: %+v", m)
	}
	if m, ok := matchCgroupName(id1); !ok || m.ID != id1 {
		t.Errorf("matchCgroupName(bare id) = %+v, %v", m, ok)
	}
}

func FuzzMatchCgroupPath(f *testing.F) {
	f.Add("/kubepods.slice/kubepods-besteffort-pod" + uid + ".slice/cri-containerd-" + id1 + ".scope")
	f.Add("/kubepods/pod" + uid + "/" + id1)
	f.Fuzz(func(t *testing.T, p string) {
		m, ok := matchCgroupPath(p)
		if !ok {
			if m != (patternMatch{}) {
				t.Fatalf("no match but %+v", m)
			}
			return
		}
		if !isID(m.ID) || !strings.Contains(p, m.ID) {
			t.Fatalf("matchCgroupPath(%q) = %+v: id not 64 hex from the path", p, m)
		}
		if m.PodUID != "" && !isUUID(m.PodUID) {
			t.Fatalf("matchCgroupPath(%q) = %+v: bad pod uid", p, m)
		}
	})
}
