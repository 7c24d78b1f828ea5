package testenv

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ContainerdNamespace is the containerd namespace holding the images and
// containers of the test environment.
const ContainerdNamespace = "bulwark"

// Containerd is a containerd daemon running containers with runc, with its
// own root, state and socket; no Docker is involved.
type Containerd struct {
	// Socket is the path of the daemon's gRPC socket, for ctr, the
	// containerd Go client or a kubelet.
	Socket string

	dir  string // holds root, state, runc's state and the socket
	ctr  string
	runc string
}

// StartContainerd runs Debian's containerd (1.6) with runc under a fresh
// temporary directory. When t ends, its containers are removed, it is
// stopped, and whatever it left mounted is unmounted before the directory
// is removed. It needs root.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	Integration(t)
	c, err := startContainerd(t)
	if err != nil {
		fatal(t, "starting containerd", err)
	}
	return c
}

func startContainerd(t testing.TB) (*Containerd, error) {
	bins, err := containerdBinaries()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: containerd needs root", errMissing)
	}
	// Unix socket paths are limited to 108 bytes; t.TempDir's can be longer.
	dir, err := os.MkdirTemp("/tmp", "bwctd-")
	if err != nil {
		return nil, fmt.Errorf("creating containerd directory: %w", err)
	}
	t.Cleanup(func() { removeContainerdDir(t, dir) })
	c := &Containerd{Socket: filepath.Join(dir, "containerd.sock"), dir: dir, ctr: bins["ctr"], runc: bins["runc"]}
	config, err := c.writeConfig()
	if err != nil {
		return nil, err
	}
	logs, err := logDir(t, "containerd")
	if err != nil {
		return nil, err
	}
	// containerd finds its runc shim on PATH.
	env := []string{"PATH=" + filepath.Dir(bins["containerd-shim-runc-v2"]) + ":" + os.Getenv("PATH")}
	proc, err := startProcess(logs, "containerd", processOptions{env: env}, bins["containerd"], "--config", config)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		c.removeContainers(t)
		proc.Stop(15 * time.Second)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return c, waitFor(ctx, "containerd", proc, 100*time.Millisecond, c.ready)
}

// containerdBinaries finds the programs StartContainerd needs, by name.
func containerdBinaries() (map[string]string, error) {
	bins := map[string]string{}
	for name, pkg := range map[string]string{
		"containerd":              "containerd",
		"containerd-shim-runc-v2": "containerd",
		"ctr":                     "containerd",
		"runc":                    "runc",
	} {
		p, err := systemBinary(name, pkg, "/usr/bin", "/usr/sbin")
		if err != nil {
			return nil, err
		}
		bins[name] = p
	}
	return bins, nil
}

// writeConfig writes containerd's config.toml into its directory.
func (c *Containerd) writeConfig() (string, error) {
	config := fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

# The default, /opt/containerd, is outside the test's directory.
[plugins."io.containerd.internal.v1.opt"]
  path = %q

# Without CAP_SYS_RESOURCE (as on CI machines) containerd may not lower
# oom_score_adj below its own.
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = %q
  Root = %q
`, filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), c.Socket,
		filepath.Join(c.dir, "opt"), c.runc, c.runcRoot())
	path := filepath.Join(c.dir, "config.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return "", fmt.Errorf("writing containerd config: %w", err)
	}
	return path, nil
}

// runcRoot keeps runc's container state in the daemon's directory rather
// than the shared /run/containerd/runc, where two daemons' containers of
// the same id would collide.
func (c *Containerd) runcRoot() string { return filepath.Join(c.dir, "runc") }

// ready reports whether the daemon answers on its socket.
func (c *Containerd) ready(ctx context.Context) (bool, error) {
	if _, err := os.Stat(c.Socket); err != nil {
		return false, err
	}
	_, err := c.runCtr(ctx, "version")
	return err == nil, err
}

// ImportImage loads img into the daemon as ref, ready to run. A short ref
// such as "busybox:1" is stored, as containerd does, as
// "docker.io/library/busybox:1"; Run accepts either form.
func (c *Containerd) ImportImage(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	tag, err := containerdTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatalf("writing image %s as docker archive: %v", ref, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := c.runCtr(ctx, "images", "import", archive); err != nil {
		t.Fatalf("importing image %s: %v", ref, err)
	}
}

// Run runs args in a new container id from the image ref, removes the
// container, and returns what it wrote to standard output. The error
// includes standard error; it is not nil when the command exits non-zero or
// runs longer than a minute.
func (c *Containerd) Run(t testing.TB, ref, id string, args ...string) (string, error) {
	t.Helper()
	tag, err := containerdTag(ref)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := c.runCtr(ctx, append([]string{"run", "--rm",
		"--runc-binary", c.runc, "--runc-root", c.runcRoot(),
		"--cgroup", c.cgroupPath(id),
		tag.String(), id}, args...)...)
	if ctx.Err() != nil {
		// ctr was killed before it could remove the container.
		c.removeContainer(t, id)
	}
	return out, err
}

// ContainerOptions are the settings of a container Start runs.
type ContainerOptions struct {
	// Labels are set on the container, as the CRI plugin sets
	// io.kubernetes.pod.name and the like.
	Labels map[string]string
	// Args is the command; empty runs the image's. It must keep running:
	// Start waits for the task to be running.
	Args []string
}

// RunningContainer is a container Start left running.
type RunningContainer struct {
	ID string
	// PID is the host pid of the container's first process.
	PID uint32
	// Image is the image reference as containerd stores it (fully named).
	Image string
}

// Start runs a container id from the image ref in the background, with
// the cgroup and runc conventions of Run, and returns once its task is
// running. The container is removed when t ends.
func (c *Containerd) Start(t testing.TB, ref, id string, opts ContainerOptions) *RunningContainer {
	t.Helper()
	tag, err := containerdTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--detach",
		"--runc-binary", c.runc, "--runc-root", c.runcRoot(),
		"--cgroup", c.cgroupPath(id)}
	labels := slices.Sorted(maps.Keys(opts.Labels))
	for _, k := range labels {
		args = append(args, "--label", k+"="+opts.Labels[k])
	}
	args = append(append(args, tag.String(), id), opts.Args...)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	t.Cleanup(func() { c.removeContainer(t, id) })
	if _, err := c.runCtr(ctx, args...); err != nil {
		t.Fatalf("starting container %s: %v", id, err)
	}
	for {
		pid, status, err := c.task(ctx, id)
		if err != nil {
			t.Fatalf("container %s: %v", id, err)
		}
		switch status {
		case "RUNNING":
			return &RunningContainer{ID: id, PID: pid, Image: tag.String()}
		case "STOPPED":
			t.Fatalf("container %s exited at once (its command must keep running)", id)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s: not running after a minute (status %q)", id, status)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cgroupPath is the cgroup Run and Start put container id in: under the
// namespace's cgroup, named after the daemon too, so that two daemons may
// run containers of the same id.
func (c *Containerd) cgroupPath(id string) string {
	return "/" + ContainerdNamespace + "/" + filepath.Base(c.dir) + "-" + id
}

// task returns the host pid and status of container id's task, from ctr
// tasks list.
func (c *Containerd) task(ctx context.Context, id string) (uint32, string, error) {
	out, err := c.runCtr(ctx, "tasks", "list")
	if err != nil {
		return 0, "", err
	}
	for line := range strings.Lines(out) {
		// TASK PID STATUS
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			pid, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return 0, "", fmt.Errorf("ctr tasks list: pid of %s: %w", id, err)
			}
			return uint32(pid), f[2], nil
		}
	}
	return 0, "", fmt.Errorf("ctr tasks list: no task %s in %q", id, out)
}

var execIDs atomic.Uint64

// Exec runs args in the running container id and returns what it wrote
// to standard output. The error includes standard error; it is not nil
// when the command exits non-zero or runs longer than a minute.
func (c *Containerd) Exec(t testing.TB, id string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	return c.runCtr(ctx, append([]string{"tasks", "exec", "--exec-id", fmt.Sprintf("exec-%d", execIDs.Add(1)), id}, args...)...)
}

// ExecDetached starts args in the running container id without waiting
// for it and returns its host pid. args must start exactly one process
// that keeps running (such as "sleep 300"): the pid is the one process new
// in the container.
func (c *Containerd) ExecDetached(t testing.TB, id string, args ...string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	before, err := c.processes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.runCtr(ctx, append([]string{"tasks", "exec", "--detach", "--exec-id", fmt.Sprintf("exec-%d", execIDs.Add(1)), id}, args...)...); err != nil {
		t.Fatalf("exec in container %s: %v", id, err)
	}
	for {
		after, err := c.processes(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var added []uint32
		for _, p := range after {
			if !slices.Contains(before, p) {
				added = append(added, p)
			}
		}
		switch {
		case len(added) == 1:
			return added[0]
		case len(added) > 1:
			t.Fatalf("exec %v in container %s started %d processes (%v), want one", args, id, len(added), added)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("exec %v in container %s: no new process after a minute", args, id)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Processes returns the host pids of the processes in container id.
func (c *Containerd) Processes(t testing.TB, id string) []uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pids, err := c.processes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func (c *Containerd) processes(ctx context.Context, id string) ([]uint32, error) {
	out, err := c.runCtr(ctx, "tasks", "ps", id)
	if err != nil {
		return nil, err
	}
	var pids []uint32
	for line := range strings.Lines(out) {
		// PID INFO
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "PID" {
			continue
		}
		pid, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("ctr tasks ps %s: line %q: %w", id, strings.TrimSpace(line), err)
		}
		pids = append(pids, uint32(pid))
	}
	return pids, nil
}

// Remove kills container id's task, if any, and deletes the container.
func (c *Containerd) Remove(t testing.TB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.deleteContainer(ctx, id); err != nil {
		t.Fatalf("removing container %s: %v", id, err)
	}
}

// ImageDigest returns the manifest digest ("sha256:…") containerd
// records for the imported image ref.
func (c *Containerd) ImageDigest(t testing.TB, ref string) string {
	t.Helper()
	tag, err := containerdTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := c.runCtr(ctx, "images", "list")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(out) {
		// REF TYPE DIGEST SIZE PLATFORMS LABELS
		if f := strings.Fields(line); len(f) >= 3 && f[0] == tag.String() {
			return f[2]
		}
	}
	t.Fatalf("image %s not in containerd's list:\n%s", tag, out)
	return ""
}

// containerdTag parses ref and names it fully, as containerd stores it.
func containerdTag(ref string) (name.Tag, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	registry := tag.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	full := registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr()
	tag, err = name.NewTag(full)
	if err != nil {
		return name.Tag{}, fmt.Errorf("parsing image reference %q: %w", full, err)
	}
	return tag, nil
}

// removeContainers removes every container of the namespace, so that no
// task or mount outlives the daemon.
func (c *Containerd) removeContainers(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.runCtr(ctx, "containers", "list", "--quiet")
	if err != nil {
		t.Logf("listing containers left in containerd: %v", err)
		return
	}
	for _, id := range strings.Fields(out) {
		c.removeContainer(t, id)
	}
}

// removeContainer kills the container's task, if any, and deletes the
// container with its snapshot.
func (c *Containerd) removeContainer(t testing.TB, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.deleteContainer(ctx, id); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Logf("removing container %s: %v", id, err)
	}
}

func (c *Containerd) deleteContainer(ctx context.Context, id string) error {
	// Fails when the container has no task, which is fine.
	_, _ = c.runCtr(ctx, "tasks", "delete", "--force", id)
	_, err := c.runCtr(ctx, "containers", "delete", id)
	return err
}

// runCtr runs ctr against the daemon in ContainerdNamespace and returns its
// standard output.
func (c *Containerd) runCtr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.Socket, "--namespace", ContainerdNamespace}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// removeContainerdDir unmounts what containerd left mounted under dir,
// deepest first, then removes dir.
func removeContainerdDir(t testing.TB, dir string) {
	mounts, err := mountsUnder(dir)
	if err != nil {
		t.Errorf("cleaning up containerd: %v", err)
	}
	for _, m := range mounts {
		// Lazily, so a mount still busy cannot keep the rest mounted.
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", m, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing containerd directory: %v", err)
	}
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	var mounts []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		if p := unescapeMountPath(fields[4]); p == dir || strings.HasPrefix(p, dir+"/") {
			mounts = append(mounts, p)
		}
	}
	slices.SortStableFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	return mounts, nil
}

// unescapeMountPath decodes the \ooo octal escapes the kernel writes in
// mountinfo for spaces, tabs, newlines and backslashes.
func unescapeMountPath(s string) string {
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

// busyboxApplets are the commands BusyboxImage links to busybox.
var busyboxApplets = []string{
	"cat", "cp", "echo", "env", "false", "grep", "head", "hostname", "id",
	"ls", "mkdir", "mv", "ps", "rm", "sh", "sleep", "touch", "true", "uname", "wc",
}

// BusyboxImage builds a small runnable linux/amd64 image: Debian's static
// busybox (package busybox-static) at /bin/busybox with links for common
// commands (sh, echo, cat, ls, sleep, id, …), /etc/passwd and /etc/group
// with root and nobody, /root and a world-writable /tmp. Its command is sh.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	img, err := busyboxImage()
	if err != nil {
		fatal(t, "building the busybox image", err)
	}
	return img
}

func busyboxImage() (v1.Image, error) {
	bin, err := systemBinary("busybox", "busybox-static", "/bin", "/usr/bin")
	if err != nil {
		return nil, err
	}
	if err := requireStatic(bin); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bulwark-busybox-")
	if err != nil {
		return nil, fmt.Errorf("creating busybox rootfs: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := writeBusyboxRoot(dir, bin); err != nil {
		return nil, fmt.Errorf("creating busybox rootfs: %w", err)
	}
	img, err := ImageFromDir(dir)
	if err != nil {
		return nil, err
	}
	return mutate.Config(img, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}})
}

// requireStatic fails unless bin is statically linked: a dynamic busybox
// (Debian package busybox) would not run in an image without a libc.
func requireStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("reading %s: %w", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked (want Debian package busybox-static)", errMissing, bin)
		}
	}
	return nil
}

// writeBusyboxRoot lays out the busybox image's filesystem in dir.
func writeBusyboxRoot(dir, busybox string) error {
	for _, d := range []string{"bin", "etc", "root", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// Mkdir's mode is masked by the umask; these need exact modes.
	if err := os.Chmod(filepath.Join(dir, "root"), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	if err := copyFile(busybox, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	for _, applet := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return err
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group := "root:x:0:\nnogroup:x:65534:\n"
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "etc", "group"), []byte(group), 0o644)
}

func copyFile(from, to string, perm os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copying %s: %w", from, err)
	}
	return dst.Close()
}
