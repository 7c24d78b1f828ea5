package attrib

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcCgroup(t *testing.T) {
	long := "/" + strings.Repeat("x", maxLine)
	for _, tc := range []struct {
		name, data string
		want       procCgroups
	}{
		{"hybrid v1 host", "12:pids:/\n4:memory:/process_api/2601\n3:cpu,cpuacct:/a\n0::/\n",
			procCgroups{Unified: "/", Memory: "/process_api/2601"}},
		{"v2 host", "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope\n",
			procCgroups{Unified: "/kubepods.slice/kubepods-pod1.slice/cri-containerd-ab.scope"}},
		{"memory among several controllers", "7:cpu,memory,blkio:/docker/abc\n", procCgroups{Memory: "/docker/abc"}},
		{"memory as a prefix is not memory", "7:memory_x:/docker/abc\n", procCgroups{}},
		{"colon in the path", "0::/a:b:c\n", procCgroups{Unified: "/a:b:c"}},
		{"deleted v2 cgroup", "0::/gone (deleted)\n", procCgroups{Unified: "/gone"}},
		{"no trailing newline", "0::/x", procCgroups{Unified: "/x"}},
		{"named hierarchy is not v2", "1:name=systemd:/user.slice\n", procCgroups{}},
		{"relative path skipped", "0::x\n4:memory:\n", procCgroups{}},
		{"garbage", "\x00\xff::::\n\n:\n0:\n", procCgroups{}},
		{"overlong line skipped, rest kept", "0::" + long + "\n4:memory:/m\n", procCgroups{Memory: "/m"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseProcCgroup([]byte(tc.data))); diff != "" {
				t.Errorf("parseProcCgroup (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("4:memory:/process_api/2601\n0::/\n"))
	f.Add([]byte("0::/kubepods.slice/cri-containerd-ab.scope (deleted)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pc := parseProcCgroup(data)
		for _, p := range []string{pc.Unified, pc.Memory} {
			if p != "" && (p[0] != '/' || len(p) > maxLine || strings.Contains(p, "\n")) {
				t.Fatalf("parseProcCgroup(%q) gave path %q", data, p)
			}
		}
		k := cgroupKeys(pc, "")
		if len(k.Name) > maxCgroupName || strings.Contains(k.Name, "/") || k.ID != 0 {
			t.Fatalf("cgroupKeys(%+v) = %+v", pc, k)
		}
	})
}

func TestCgroupKeys(t *testing.T) {
	root := t.TempDir()
	long := strings.Repeat("n", 100)
	for _, d := range []string{"kubepods/pod1/c1", "sys/" + long} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ino := func(p string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	for _, tc := range []struct {
		name string
		pc   procCgroups
		want keys
	}{
		{"v2 cgroup", procCgroups{Unified: "/kubepods/pod1/c1", Memory: "/m"}, keys{ID: ino("kubepods/pod1/c1"), Name: "c1"}},
		{"v2 name cut to 63 bytes", procCgroups{Unified: "/sys/" + long}, keys{ID: ino("sys/" + long), Name: long[:63]}},
		{"v2 cgroup missing from the mount", procCgroups{Unified: "/nope/c2"}, keys{Name: "c2"}},
		{"v2 path outside the namespace", procCgroups{Unified: "/../../kubepods/pod1/c1"}, keys{Name: "c1"}},
		{"v2 root, v1 memory", procCgroups{Unified: "/", Memory: "/bulwark/d-" + long}, keys{Name: ("d-" + long)[:63]}},
		{"all roots", procCgroups{Unified: "/", Memory: "/"}, keys{}},
		{"nothing", procCgroups{}, keys{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, cgroupKeys(tc.pc, root)); diff != "" {
				t.Errorf("cgroupKeys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadProcCgroupBounds(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("1:cpu:/x\n", maxProcFile/9+1)
	if err := os.WriteFile(filepath.Join(root, "7", "cgroup"), []byte(huge), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readProcCgroup(root, 7); err == nil {
		t.Errorf("reading a %d-byte cgroup file succeeded, want an error", len(huge))
	}
	if _, err := readProcCgroup(root, 8); err == nil {
		t.Error("reading a missing process's cgroup file succeeded, want an error")
	}
}

func TestCgroup2Mount(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"hybrid host",
			"30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n" +
				"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
				"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
			"/sys/fs/cgroup/unified"},
		{"optional fields", "40 30 0:37 / /host/sys/fs/cgroup rw shared:9 master:2 - cgroup2 cgroup2 rw\n", "/host/sys/fs/cgroup"},
		{"escaped mount point", `40 30 0:37 / /mnt/cg\040two rw - cgroup2 cgroup2 rw` + "\n", "/mnt/cg two"},
		{"namespaced subtree skipped", "40 30 0:37 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", ""},
		{"none", "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", ""},
		{"truncated lines", "40 30\n- cgroup2\n1 2 3 4 5 6 -\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cgroup2Mount([]byte(tc.data)); got != tc.want {
				t.Errorf("cgroup2Mount = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzCgroup2Mount(f *testing.F) {
	f.Add([]byte("40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"))
	f.Add([]byte(`40 30 0:37 / /a\134b rw - cgroup2 cgroup2 rw`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got := cgroup2Mount(data); len(got) > len(data) {
			t.Fatalf("cgroup2Mount(%q) = %q, longer than its input", data, got)
		}
	})
}
