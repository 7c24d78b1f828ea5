package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestContainerd(t *testing.T) {
	var dir string
	t.Run("Run", func(t *testing.T) {
		c := StartContainerd(t)
		dir = c.dir
		img := BusyboxImage(t)
		const ref = "bulwark.test/busybox:1"
		c.ImportImage(t, ref, img)
		for _, tc := range []struct {
			id   string
			args []string
			want string
		}{
			{"echo", []string{"echo", "hello-from-container"}, "hello-from-container\n"},
			{"uid", []string{"id", "-u"}, "0\n"},
			{"tmp", []string{"sh", "-c", "test -k /tmp && test -w /tmp && echo sticky"}, "sticky\n"},
			// The same id again: the first run's container was removed.
			{"echo", []string{"sh", "-c", "echo $PATH"}, "/bin\n"},
		} {
			got, err := c.Run(t, ref, tc.id, tc.args...)
			if err != nil {
				t.Errorf("run %s %v: %v", tc.id, tc.args, err)
				continue
			}
			if got != tc.want {
				t.Errorf("run %s %v = %q, want %q", tc.id, tc.args, got, tc.want)
			}
		}
		if _, err := c.Run(t, ref, "fails", "sh", "-c", "exit 3"); err == nil {
			t.Error("run of a command exiting 3 succeeded, want an error")
		}
		t.Run("Start", func(t *testing.T) { testContainerdStart(t, c, ref) })
	})
	if dir == "" {
		return // skipped
	}
	// The subtest's cleanups have run: nothing may be left behind.
	if mounts, err := mountsUnder(dir); err != nil || len(mounts) > 0 {
		t.Errorf("mounts left under %s: %v (err %v)", dir, mounts, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("containerd directory %s still there (stat: %v)", dir, err)
	}
}

func TestContainerdTag(t *testing.T) {
	for _, tc := range []struct{ ref, want string }{
		{"busybox:1", "docker.io/library/busybox:1"},
		{"busybox", "docker.io/library/busybox:latest"},
		{"index.docker.io/user/app:2", "docker.io/user/app:2"},
		{"bulwark.test/busybox:1", "bulwark.test/busybox:1"},
		{"127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"},
	} {
		tag, err := containerdTag(tc.ref)
		if err != nil {
			t.Errorf("containerdTag(%q): %v", tc.ref, err)
			continue
		}
		if got := tag.String(); got != tc.want {
			t.Errorf("containerdTag(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestUnescapeMountPath(t *testing.T) {
	got := []string{
		unescapeMountPath(`/tmp/plain`),
		unescapeMountPath(`/tmp/with\040space\011tab\134slash`),
		unescapeMountPath(`/tmp/trailing\04`),
	}
	want := []string{"/tmp/plain", "/tmp/with space\ttab\\slash", `/tmp/trailing\04`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unescapeMountPath (-want +got):\n%s", diff)
	}
}

// testContainerdStart checks Start, Exec, ExecDetached, Processes,
// ImageDigest and Remove on the running daemon c with image ref imported.
func testContainerdStart(t *testing.T, c *Containerd, ref string) {
	labels := map[string]string{"io.kubernetes.pod.name": "web-0", "app": "a=b"}
	rc := c.Start(t, ref, "long", ContainerOptions{Labels: labels, Args: []string{"sleep", "300"}})
	if rc.ID != "long" || rc.Image != "bulwark.test/busybox:1" {
		t.Errorf("Start = %+v, want id long and image bulwark.test/busybox:1", rc)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", rc.PID))
	if err != nil || string(cmdline) != "sleep\x00300\x00" {
		t.Errorf("/proc/%d/cmdline = %q (%v), want the container's sleep 300", rc.PID, cmdline, err)
	}
	info, err := c.runCtr(t.Context(), "containers", "info", rc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Labels map[string]string }
	if err := json.Unmarshal([]byte(info), &got); err != nil {
		t.Fatalf("decoding container info: %v", err)
	}
	for k, v := range labels {
		if got.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, got.Labels[k], v, got.Labels)
		}
	}

	out, err := c.Exec(t, rc.ID, "sh", "-c", "echo $PATH; echo oops >&2")
	if err != nil || out != "/bin\n" {
		t.Errorf("Exec = %q, %v; want /bin", out, err)
	}
	if _, err := c.Exec(t, rc.ID, "sh", "-c", "exit 4"); err == nil {
		t.Error("Exec of a command exiting 4 succeeded, want an error")
	}

	pid := c.ExecDetached(t, rc.ID, "sleep", "301")
	cmdline, err = os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || string(cmdline) != "sleep\x00301\x00" {
		t.Errorf("/proc/%d/cmdline = %q (%v), want the exec'd sleep 301", pid, cmdline, err)
	}
	if pids := c.Processes(t, rc.ID); !slices.Contains(pids, rc.PID) || !slices.Contains(pids, pid) || len(pids) != 2 {
		t.Errorf("Processes = %v, want %d and %d", pids, rc.PID, pid)
	}
	// Both are in the cgroup Start put the container in.
	for _, p := range []uint32{rc.PID, pid} {
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p))
		if err != nil || !strings.Contains(string(cg), c.cgroupPath(rc.ID)+"\n") {
			t.Errorf("/proc/%d/cgroup = %q (%v), want %s", p, cg, err, c.cgroupPath(rc.ID))
		}
	}

	if d := c.ImageDigest(t, ref); !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d) {
		t.Errorf("ImageDigest = %q, want sha256:<64 hex>", d)
	}

	c.Remove(t, rc.ID)
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", rc.PID)); !os.IsNotExist(err) {
		t.Errorf("container's process %d still there after Remove (stat: %v)", rc.PID, err)
	}
	if _, err := c.runCtr(t.Context(), "containers", "info", rc.ID); err == nil {
		t.Error("container still listed after Remove")
	}
}
