package testenv

import (
	"os"
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
