package attrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// fakeCRI serves the few RuntimeService methods the CRI source calls
// from what a test sets, counting the calls.
type fakeCRI struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	mu        sync.Mutex
	name      string
	pods      []*runtimeapi.PodSandbox
	ctrs      []*runtimeapi.Container
	podInfo   map[string]map[string]string
	ctrStatus map[string]*runtimeapi.ContainerStatusResponse
	listErr   error
	calls     map[string]int
	// events, when set, makes GetContainerEvents stream them; otherwise
	// the method is unimplemented.
	events []*runtimeapi.ContainerEventResponse
}

func newFakeCRI(name string) *fakeCRI {
	return &fakeCRI{
		name:      name,
		podInfo:   map[string]map[string]string{},
		ctrStatus: map[string]*runtimeapi.ContainerStatusResponse{},
		calls:     map[string]int{},
	}
}

func (f *fakeCRI) count(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
}

// takeCalls returns the calls counted since the last takeCalls.
func (f *fakeCRI) takeCalls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = map[string]int{}
	return c
}

func (f *fakeCRI) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	f.count("Version")
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: f.name, RuntimeVersion: "1.0", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeCRI) ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.count("ListPodSandbox")
	f.mu.Lock()
	defer f.mu.Unlock()
	return &runtimeapi.ListPodSandboxResponse{Items: f.pods}, f.listErr
}

func (f *fakeCRI) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f.count("ListContainers")
	f.mu.Lock()
	defer f.mu.Unlock()
	return &runtimeapi.ListContainersResponse{Containers: f.ctrs}, f.listErr
}

func (f *fakeCRI) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.count("PodSandboxStatus")
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.podInfo[req.GetPodSandboxId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "sandbox %s not found", req.GetPodSandboxId())
	}
	if !req.GetVerbose() {
		info = nil
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: req.GetPodSandboxId()}, Info: info}, nil
}

func (f *fakeCRI) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	f.count("ContainerStatus")
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.ctrStatus[req.GetContainerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "container %s not found", req.GetContainerId())
	}
	if !req.GetVerbose() {
		return &runtimeapi.ContainerStatusResponse{Status: st.GetStatus()}, nil
	}
	return st, nil
}

func (f *fakeCRI) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	f.mu.Lock()
	events := f.events
	f.mu.Unlock()
	if events == nil {
		return status.Error(codes.Unimplemented, "method GetContainerEvents not implemented")
	}
	for _, e := range events {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

// serve runs f on a unix socket and returns its path.
func (f *fakeCRI) serve(t testing.TB) string {
	t.Helper()
	// t.TempDir's path can outgrow a unix socket's 108 bytes.
	dir, err := os.MkdirTemp("", "bwcri-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "cri.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return sock
}

func dialFake(t testing.TB, f *fakeCRI, opts CRIOptions) *CRI {
	t.Helper()
	c, err := DialCRI(f.serve(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// hexID returns a 64-hex container id made of n.
func hexID(n int) string { return fmt.Sprintf("%064x", n) }

func digestOf(n int) string { return "sha256:" + hexID(n) }

// infoWithPID is a verbose status's info as CRI-O and containerd shape
// it: the pid among other fields, the OCI spec among them.
func infoWithPID(pid uint32) map[string]string {
	return map[string]string{"info": fmt.Sprintf(`{"sandboxID":"x","pid":%d,"runtimeSpec":{"process":{"args":["sleep"],"env":["PID=1"]},"pid":7}}`, pid)}
}

func runningContainer(id, pod, name string, labels map[string]string) *runtimeapi.Container {
	return &runtimeapi.Container{
		Id: id, PodSandboxId: pod, State: runtimeapi.ContainerState_CONTAINER_RUNNING,
		Metadata: &runtimeapi.ContainerMetadata{Name: name}, Labels: labels,
	}
}

func containerStatus(pid uint32, image *runtimeapi.ImageSpec, imageRef string) *runtimeapi.ContainerStatusResponse {
	resp := &runtimeapi.ContainerStatusResponse{
		Status: &runtimeapi.ContainerStatus{State: runtimeapi.ContainerState_CONTAINER_RUNNING, Image: image, ImageRef: imageRef},
		Info:   infoWithPID(pid),
	}
	if pid == 0 {
		resp.Info = map[string]string{"info": `{"sandboxID":"x"}`}
	}
	return resp
}

// crioNode is a CRI-O node with one pod: its sandbox, a container
// labelled as the kubelet labels them, one with no labels, one whose
// status has no pid and one removed between listing and status.
func crioNode() *fakeCRI {
	f := newFakeCRI("cri-o")
	pod := hexID(1)
	f.pods = []*runtimeapi.PodSandbox{{
		Id: pod, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web-0", Namespace: "shop", Uid: uid},
	}}
	f.podInfo[pod] = infoWithPID(100)
	f.ctrs = []*runtimeapi.Container{
		runningContainer(hexID(2), pod, "server", map[string]string{
			LabelPodName: "web-0", LabelPodNamespace: "shop", LabelPodUID: uid, LabelContainerName: "server",
		}),
		runningContainer(hexID(3), pod, "sidecar", nil),
		runningContainer(hexID(4), pod, "nopid", nil),
		runningContainer(hexID(5), pod, "gone", nil),
	}
	f.ctrStatus[hexID(2)] = containerStatus(200,
		&runtimeapi.ImageSpec{Image: digestOf(9), UserSpecifiedImage: "shop/server:2"},
		"quay.io/shop/server@"+digestOf(10))
	f.ctrStatus[hexID(3)] = containerStatus(300, &runtimeapi.ImageSpec{Image: "docker.io/library/envoy:1"}, digestOf(11))
	f.ctrStatus[hexID(4)] = containerStatus(0, &runtimeapi.ImageSpec{Image: "x:1"}, "")
	return f
}

func TestCRITasks(t *testing.T) {
	f := crioNode()
	c := dialFake(t, f, CRIOptions{})
	got, err := c.Tasks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pod := func(id, name, image, digest string) wire.Container {
		return wire.Container{
			ID: id, Name: name, Runtime: RuntimeCRIO, Pod: "web-0", Namespace: "shop", PodUID: uid,
			Image: image, Digest: digest,
		}
	}
	want := []Task{
		{PID: 100, Sandbox: true, Container: pod(hexID(1), "", "", "")},
		{PID: 200, Container: pod(hexID(2), "server", "shop/server:2", digestOf(10))},
		// The bare image_ref is an image id, not a manifest digest.
		{PID: 300, Container: pod(hexID(3), "sidecar", "docker.io/library/envoy:1", "")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tasks (-want +got):\n%s", diff)
	}
}

// TestCRIContainerdRuntime checks the runtime and namespace containerd's
// CRI plugin gets.
func TestCRIContainerdRuntime(t *testing.T) {
	f := crioNode()
	f.name = "containerd"
	c := dialFake(t, f, CRIOptions{})
	got, err := c.Tasks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range got {
		if task.Container.Runtime != RuntimeContainerd || task.Container.RuntimeNamespace != "k8s.io" {
			t.Errorf("task %s: runtime %q namespace %q, want containerd k8s.io", task.Container.ID, task.Container.Runtime, task.Container.RuntimeNamespace)
		}
	}
}

// TestCRICache checks that statuses are asked once per container: a
// refresh with nothing new costs two listings.
func TestCRICache(t *testing.T) {
	f := crioNode()
	c := dialFake(t, f, CRIOptions{})
	ctx := t.Context()
	if _, err := c.Tasks(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"Version": 1, "ListPodSandbox": 1, "ListContainers": 1, "PodSandboxStatus": 1, "ContainerStatus": 4}
	if diff := cmp.Diff(want, f.takeCalls()); diff != "" {
		t.Errorf("first Tasks' calls (-want +got):\n%s", diff)
	}
	first, err := c.Tasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"ListPodSandbox": 1, "ListContainers": 1}, f.takeCalls()); diff != "" {
		t.Errorf("unchanged Tasks' calls (-want +got):\n%s", diff)
	}

	// One container exits, another starts.
	f.mu.Lock()
	f.ctrs = slices.DeleteFunc(f.ctrs, func(c *runtimeapi.Container) bool { return c.Id == hexID(3) })
	f.ctrs = append(f.ctrs, runningContainer(hexID(6), hexID(1), "job", nil))
	f.ctrStatus[hexID(6)] = containerStatus(600, &runtimeapi.ImageSpec{Image: "job:1"}, "")
	f.mu.Unlock()
	got, err := c.Tasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"ListPodSandbox": 1, "ListContainers": 1, "ContainerStatus": 1}, f.takeCalls()); diff != "" {
		t.Errorf("changed Tasks' calls (-want +got):\n%s", diff)
	}
	ids := func(ts []Task) (s []string) {
		for _, t := range ts {
			s = append(s, t.Container.ID[62:])
		}
		return s
	}
	if diff := cmp.Diff([]string{"01", "02", "03"}, ids(first)); diff != "" {
		t.Errorf("first listing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"01", "02", "06"}, ids(got)); diff != "" {
		t.Errorf("after the change (-want +got):\n%s", diff)
	}
	if _, ok := c.known[hexID(3)]; ok {
		t.Error("the exited container's status is still cached")
	}
}

func TestCRIErrors(t *testing.T) {
	t.Run("listing fails", func(t *testing.T) {
		f := crioNode()
		f.listErr = status.Error(codes.Unavailable, "runtime restarting")
		if _, err := dialFake(t, f, CRIOptions{}).Tasks(t.Context()); status.Code(errors.Unwrap(err)) != codes.Unavailable {
			t.Errorf("Tasks = %v, want the listing's error", err)
		}
	})
	t.Run("too many containers", func(t *testing.T) {
		_, err := dialFake(t, crioNode(), CRIOptions{MaxContainers: 3}).Tasks(t.Context())
		if err == nil || !strings.Contains(err.Error(), "more than 3") {
			t.Errorf("Tasks = %v, want too many containers", err)
		}
	})
	t.Run("runtime down", func(t *testing.T) {
		c, err := DialCRI(filepath.Join(t.TempDir(), "none.sock"), CRIOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Tasks(t.Context()); err == nil {
			t.Error("Tasks of a runtime that is not there succeeded")
		}
	})
}

// TestCRIHostileStatus checks that a status whose info is not what
// runtimes write loses only its own container.
func TestCRIHostileStatus(t *testing.T) {
	f := crioNode()
	f.ctrStatus[hexID(3)].Info = map[string]string{"info": `{"pid":"300"}`}
	f.ctrStatus[hexID(2)].Info = map[string]string{"info": `{"pid":200,"pad":"` + strings.Repeat("x", maxInfo) + `"}`}
	got, err := dialFake(t, f, CRIOptions{}).Tasks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Sandbox {
		t.Errorf("Tasks = %+v, want only the sandbox", got)
	}
}

func TestParseInfoPID(t *testing.T) {
	for _, tc := range []struct {
		name string
		info map[string]string
		want uint32 // 0: ErrNoPID
	}{
		{"crio and containerd", infoWithPID(4242), 4242},
		{"spaces", map[string]string{"info": "{ \"pid\" :\n 17 }"}, 17},
		{"largest pid", map[string]string{"info": `{"pid":4194304}`}, 4194304},
		{"no info", map[string]string{"other": `{"pid":1}`}, 0},
		{"nil", nil, 0},
		{"no pid", map[string]string{"info": `{"sandboxID":"x"}`}, 0},
		{"pid only in the spec", map[string]string{"info": `{"runtimeSpec":{"pid":5}}`}, 0},
		{"other case", map[string]string{"info": `{"PID":5}`}, 0},
		{"string", map[string]string{"info": `{"pid":"5"}`}, 0},
		{"negative", map[string]string{"info": `{"pid":-5}`}, 0},
		{"zero", map[string]string{"info": `{"pid":0}`}, 0},
		{"fraction", map[string]string{"info": `{"pid":5.5}`}, 0},
		{"exponent", map[string]string{"info": `{"pid":5e2}`}, 0},
		{"beyond pid_max", map[string]string{"info": `{"pid":4194305}`}, 0},
		{"beyond uint32", map[string]string{"info": `{"pid":4294967297}`}, 0},
		{"null", map[string]string{"info": `{"pid":null}`}, 0},
		{"object", map[string]string{"info": `{"pid":{"pid":5}}`}, 0},
		{"array", map[string]string{"info": `[{"pid":5}]`}, 0},
		{"not json", map[string]string{"info": `pid=5`}, 0},
		{"truncated", map[string]string{"info": `{"pid":5,"runtimeSpec":{`}, 0},
		{"too big", map[string]string{"info": `{"pid":5,"x":"` + strings.Repeat("a", maxInfo) + `"}`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInfoPID(tc.info)
			if tc.want == 0 {
				if !errors.Is(err, ErrNoPID) {
					t.Errorf("parseInfoPID = %d, %v; want ErrNoPID", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseInfoPID = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestCRIImage(t *testing.T) {
	for _, tc := range []struct {
		name                string
		spec                *runtimeapi.ImageSpec
		ref                 string
		wantImage, wantDigs string
	}{
		{"containerd, pulled by tag", &runtimeapi.ImageSpec{Image: "docker.io/library/nginx:1"}, "docker.io/library/nginx@" + digestOf(1), "docker.io/library/nginx:1", digestOf(1)},
		{"user specified first", &runtimeapi.ImageSpec{Image: "nginx:1", UserSpecifiedImage: "nginx"}, "", "nginx", ""},
		{"created by image id", &runtimeapi.ImageSpec{Image: digestOf(2)}, "docker.io/library/nginx@" + digestOf(1), "docker.io/library/nginx", digestOf(1)},
		{"bare hex id", &runtimeapi.ImageSpec{Image: hexID(2)}, "", "", ""},
		{"image id ref", &runtimeapi.ImageSpec{Image: "nginx:1"}, digestOf(2), "nginx:1", ""},
		{"no status", nil, "", "", ""},
		{"short digest", &runtimeapi.ImageSpec{Image: "a:1"}, "a@sha256:abc", "a:1", ""},
		{"upper-case digest", &runtimeapi.ImageSpec{Image: "a:1"}, "a@sha256:" + strings.Repeat("A", 64), "a:1", ""},
		{"other algorithm", &runtimeapi.ImageSpec{Image: "a:1"}, "a@sha512:" + strings.Repeat("a", 128), "a:1", ""},
		{"trailing junk", &runtimeapi.ImageSpec{Image: "a:1"}, "a@" + digestOf(1) + "\n", "a:1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := criImage(tc.spec, tc.ref); got != tc.wantImage {
				t.Errorf("criImage = %q, want %q", got, tc.wantImage)
			}
			if got := criDigest(tc.ref); got != tc.wantDigs {
				t.Errorf("criDigest = %q, want %q", got, tc.wantDigs)
			}
		})
	}
}

func TestCRIRuntime(t *testing.T) {
	for name, want := range map[string]string{
		"cri-o": RuntimeCRIO, "CRI-O": RuntimeCRIO, "containerd": RuntimeContainerd, "": RuntimeContainerd,
	} {
		if got := criRuntime(name); got != want {
			t.Errorf("criRuntime(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCRIWatch(t *testing.T) {
	t.Run("events", func(t *testing.T) {
		f := crioNode()
		f.events = []*runtimeapi.ContainerEventResponse{
			{ContainerId: hexID(2), ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT},
			{ContainerId: hexID(2), ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT},
		}
		c := dialFake(t, f, CRIOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		err := c.Watch(ctx, func() {
			if n++; n == len(f.events) {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || n != 2 {
			t.Errorf("Watch = %v after %d changes; want context.Canceled after 2", err, n)
		}
	})
	t.Run("unimplemented", func(t *testing.T) {
		err := dialFake(t, crioNode(), CRIOptions{}).Watch(t.Context(), func() { t.Error("changed called") })
		if !errors.Is(err, ErrEventsUnsupported) {
			t.Errorf("Watch = %v, want ErrEventsUnsupported", err)
		}
	})
}

func FuzzParseInfoPID(f *testing.F) {
	for _, s := range []string{
		infoWithPID(1)["info"], `{"pid":4194304}`, `{"pid":"5"}`, `{"pid":-1}`, `{"pid":1e3}`, `[]`, `{"pid":5,"pid":6}`, ``, `{"pid":` + strings.Repeat("9", 30) + `}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pid, err := parseInfoPID(map[string]string{"info": s})
		if err != nil {
			if !errors.Is(err, ErrNoPID) || pid != 0 {
				t.Fatalf("parseInfoPID(%q) = %d, %v", s, pid, err)
			}
			return
		}
		if pid == 0 || pid > maxPID {
			t.Fatalf("parseInfoPID(%q) = %d, not a pid", s, pid)
		}
	})
}

// BenchmarkCRITasksCached is a refresh of a node of 100 running
// containers, none new: what the resolver pays at each resync.
func BenchmarkCRITasksCached(b *testing.B) {
	f := newFakeCRI("cri-o")
	for i := range 100 {
		pod := hexID(1000 + i)
		f.pods = append(f.pods, &runtimeapi.PodSandbox{Id: pod, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprint("pod-", i), Namespace: "ns", Uid: uid}})
		f.podInfo[pod] = infoWithPID(uint32(1000 + i))
		f.ctrs = append(f.ctrs, runningContainer(hexID(i), pod, "app", nil))
		f.ctrStatus[hexID(i)] = containerStatus(uint32(2000+i), &runtimeapi.ImageSpec{Image: "app:1"}, "app@"+digestOf(i))
	}
	c := dialFake(b, f, CRIOptions{})
	ctx := b.Context()
	if _, err := c.Tasks(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if tasks, err := c.Tasks(ctx); err != nil || len(tasks) != 200 {
			b.Fatalf("Tasks = %d tasks, %v", len(tasks), err)
		}
	}
}

// TestCRI attributes a process of a pod's container that containerd's CRI
// plugin runs, as the kubelet would have it run, asking only the CRI.
func TestCRI(t *testing.T) {
	d := testenv.StartContainerd(t)
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	images := runtimeapi.NewImageServiceClient(conn)
	ctx := t.Context()

	// The sandbox ("pause") image must be local, there being no network:
	// busybox, under the name the CRI plugin is configured with, sleeping
	// as pause does.
	busybox := testenv.BusyboxImage(t)
	pause, err := mutate.Config(busybox, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sleep", "2147483647"}})
	if err != nil {
		t.Fatal(err)
	}
	d.ImportImageInto(t, testenv.CRINamespace, criSandboxImage(t, rt), pause)

	// The container's image is pulled through the CRI, as the kubelet
	// does, which records its reference by digest.
	reg := testenv.InProcessRegistry(t)
	pushed := reg.PushImage(t, "shop/app:1", busybox)
	ref := reg.Host + "/shop/app:1"
	if _, err := images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatalf("pulling %s through the CRI: %v", ref, err)
	}

	const podUID = "0b8f2f5e-6c1a-4f44-9d3e-5d1c8e2a7b10"
	sandboxConfig := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "web-0", Namespace: "shop", Uid: podUID},
		LogDirectory: t.TempDir(),
		Labels: map[string]string{
			LabelPodName: "web-0", LabelPodNamespace: "shop", LabelPodUID: podUID,
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			// No CNI here: the pod shares the host's network.
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
		}},
	}
	pod, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig})
	if err != nil {
		t.Fatalf("running a pod sandbox: %v", err)
	}
	podID := pod.GetPodSandboxId()
	// Registered after StartContainerd's, so run before it stops the
	// daemon: nothing of the pod may outlive the test.
	t.Cleanup(func() { removePodSandbox(t, rt, podID) })

	created, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &runtimeapi.ContainerConfig{
			// No kubernetes labels: the pod comes from the sandbox.
			Metadata: &runtimeapi.ContainerMetadata{Name: "server"},
			Image:    &runtimeapi.ImageSpec{Image: ref},
			Command:  []string{"sleep", "2147483647"},
			LogPath:  "server.log",
		},
		SandboxConfig: sandboxConfig,
	})
	if err != nil {
		t.Fatalf("creating a container: %v", err)
	}
	ctrID := created.GetContainerId()
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatalf("starting container %s: %v", ctrID, err)
	}
	pid := processInCgroup(t, ctrID)
	sandboxPID := processInCgroup(t, podID)

	src, err := DialCRI(d.Socket, CRIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	r := New(src, Config{})

	id, name := kernelCgroup(t, int(pid))
	t.Logf("container process %d: cgroup id %d, name %q", pid, id, name)
	got, ok := r.Lookup(ctx, pid, id, name)
	if !ok {
		t.Fatalf("container process %d (cgroup %d %q) not attributed", pid, id, name)
	}
	want := &wire.Container{
		ID: ctrID, Name: "server", Runtime: RuntimeContainerd, RuntimeNamespace: testenv.CRINamespace,
		Pod: "web-0", Namespace: "shop", PodUID: podUID, Image: ref, Digest: pushed.DigestStr(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}
	sid, sname := kernelCgroup(t, int(sandboxPID))
	wantSandbox := &wire.Container{
		ID: podID, Runtime: RuntimeContainerd, RuntimeNamespace: testenv.CRINamespace,
		Pod: "web-0", Namespace: "shop", PodUID: podUID,
	}
	if got, ok := r.Lookup(ctx, sandboxPID, sid, sname); !ok || !cmp.Equal(wantSandbox, got) {
		t.Errorf("sandbox process: Lookup = %+v, %v; want %+v", got, ok, wantSandbox)
	}
	self := os.Getpid()
	hid, hname := kernelCgroup(t, self)
	if got, ok := r.Lookup(ctx, uint32(self), hid, hname); ok {
		t.Errorf("the test's own process (cgroup %d %q) attributed to %+v", hid, hname, got)
	}

	// containerd 1.6 streams no CRI events.
	if err := src.Watch(ctx, func() {}); !errors.Is(err, ErrEventsUnsupported) {
		t.Errorf("Watch = %v, want ErrEventsUnsupported", err)
	}

	removePodSandbox(t, rt, podID)
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Lookup(ctx, pid, id, name); ok {
		t.Errorf("removed container's process still attributed: %+v", got)
	}
}

// criSandboxImage returns the pod sandbox image the CRI plugin is
// configured with, from its verbose status.
func criSandboxImage(t *testing.T, rt runtimeapi.RuntimeServiceClient) string {
	t.Helper()
	st, err := rt.Status(t.Context(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatalf("CRI status: %v", err)
	}
	var config struct {
		SandboxImage string `json:"sandboxImage"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["config"]), &config); err != nil || config.SandboxImage == "" {
		t.Fatalf("CRI status has no sandbox image (%v) in %q", err, st.GetInfo()["config"])
	}
	return config.SandboxImage
}

// processInCgroup returns the pid of the one process whose v1 memory
// cgroup path names id, found through /proc rather than the runtime.
func processInCgroup(t *testing.T, id string) uint32 {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []uint32
	for _, e := range entries {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			continue // exited
		}
		for line := range strings.Lines(string(data)) {
			f := strings.SplitN(strings.TrimSpace(line), ":", 3)
			if len(f) == 3 && strings.Contains(","+f[1]+",", ",memory,") && strings.Contains(f[2], id) {
				found = append(found, uint32(pid))
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("processes in the cgroup of %s: %v, want one", id, found)
	}
	return found[0]
}

// removePodSandbox stops and removes a pod sandbox with its containers;
// one already removed is fine.
func removePodSandbox(t *testing.T, rt runtimeapi.RuntimeServiceClient, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	if status.Code(err) == codes.NotFound {
		return
	}
	if err != nil {
		t.Errorf("stopping pod sandbox %s: %v", id, err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("removing pod sandbox %s: %v", id, err)
	}
}
