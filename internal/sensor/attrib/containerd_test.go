package attrib

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// kernelCgroup returns the cgroup id and name the BPF program reports for
// process pid, worked out here independently of the package: the v2
// cgroup's inode and last path element, or where that is the root (cgroup
// v1 hosts), the v1 memory cgroup's last element, cut to 63 bytes.
func kernelCgroup(t *testing.T, pid int) (uint64, string) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	mount := cgroup2Mount(mustRead(t, "/proc/self/mountinfo"))
	var unified, memory string
	for line := range strings.Lines(string(data)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			unified = f[2]
		}
		if strings.Contains(","+f[1]+",", ",memory,") {
			memory = f[2]
		}
	}
	var id uint64
	if mount != "" {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(mount, unified), &st); err != nil {
			t.Fatal(err)
		}
		id = st.Ino
	}
	name := path.Base(unified)
	if unified == "/" {
		name = path.Base(memory)
	}
	if name == "/" {
		name = ""
	}
	if len(name) > 63 {
		name = name[:63]
	}
	return id, name
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestContainerd attributes processes of containers run by a real
// containerd.
func TestContainerd(t *testing.T) {
	c := testenv.StartContainerd(t)
	const ref = "bulwark.test/attrib:1"
	c.ImportImage(t, ref, testenv.BusyboxImage(t))
	digest := c.ImageDigest(t, ref)
	labels := map[string]string{
		LabelPodName:       "web-0",
		LabelPodNamespace:  "shop",
		LabelPodUID:        uid,
		LabelContainerName: "server",
		LabelContainerKind: "container",
	}
	app := c.Start(t, ref, "app", testenv.ContainerOptions{Labels: labels, Args: []string{"sleep", "300"}})
	sandboxLabels := map[string]string{
		LabelPodName: "web-0", LabelPodNamespace: "shop", LabelPodUID: uid, LabelContainerKind: "sandbox",
	}
	sandbox := c.Start(t, ref, "sandbox", testenv.ContainerOptions{Labels: sandboxLabels, Args: []string{"sleep", "300"}})
	// A process exec'd into the container, as a shell an attacker opens.
	pid := c.ExecDetached(t, app.ID, "sleep", "301")

	src, err := DialContainerd(c.Socket, ContainerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	r := New(src, Config{})
	ctx := t.Context()

	id, name := kernelCgroup(t, int(pid))
	t.Logf("exec'd process %d: cgroup id %d, name %q", pid, id, name)
	got, ok := r.Lookup(ctx, pid, id, name)
	if !ok {
		t.Fatalf("exec'd process %d (cgroup %d %q) not attributed", pid, id, name)
	}
	want := &wire.Container{
		ID: "app", Name: "server", Runtime: RuntimeContainerd, RuntimeNamespace: testenv.ContainerdNamespace,
		Pod: "web-0", Namespace: "shop", PodUID: uid, Image: app.Image, Digest: digest,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}
	// The same without cgroup fields, as from the fallback event source.
	if got, ok := r.Lookup(ctx, pid, 0, ""); !ok || got.ID != "app" {
		t.Errorf("Lookup by pid only = %+v, %v; want app", got, ok)
	}

	sid, sname := kernelCgroup(t, int(sandbox.PID))
	if got, ok := r.Lookup(ctx, sandbox.PID, sid, sname); !ok || got.ID != "sandbox" || got.Pod != "web-0" || got.Name != "" {
		t.Errorf("sandbox's process: Lookup = %+v, %v; want the sandbox of pod web-0", got, ok)
	}

	self := os.Getpid()
	hid, hname := kernelCgroup(t, self)
	if got, ok := r.Lookup(ctx, uint32(self), hid, hname); ok {
		t.Errorf("the test's own process (cgroup %d %q) attributed to %+v", hid, hname, got)
	}

	c.Remove(t, app.ID)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Lookup(ctx, pid, id, name); ok {
		t.Errorf("removed container's process still attributed: %+v", got)
	}
}

// TestContainerdWatch checks that Run learns of a container from
// containerd's events, before any of its events miss.
func TestContainerdWatch(t *testing.T) {
	c := testenv.StartContainerd(t)
	const ref = "bulwark.test/attrib:1"
	c.ImportImage(t, ref, testenv.BusyboxImage(t))
	src, err := DialContainerd(c.Socket, ContainerdOptions{Namespaces: []string{testenv.ContainerdNamespace}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	// No resync: after Run's first refresh, only events can bring the
	// container in.
	listed := make(chan struct{}, 100)
	r := New(&notifyingSource{Containerd: src, listed: listed}, Config{ResyncInterval: time.Hour})
	go r.Run(t.Context())
	<-listed

	late := c.Start(t, ref, "late", testenv.ContainerOptions{Args: []string{"sleep", "300"}})
	id, name := kernelCgroup(t, int(late.PID))
	k := keys{ID: id, Name: name}
	deadline := time.Now().Add(30 * time.Second)
	for r.snap.Load().find(k) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Run did not learn of a started container within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := r.snap.Load().find(k)
	if got.ID != "late" || got.Image != late.Image || got.Pod != "" {
		t.Errorf("container learnt from events = %+v", got)
	}
}

// notifyingSource is a Containerd saying when each listing is done.
type notifyingSource struct {
	*Containerd
	listed chan<- struct{}
}

func (n *notifyingSource) Tasks(ctx context.Context) ([]Task, error) {
	defer func() { n.listed <- struct{}{} }()
	return n.Containerd.Tasks(ctx)
}
