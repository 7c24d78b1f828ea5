package attrib

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// DefaultCRIAddress is where CRI-O listens on a node.
const DefaultCRIAddress = "/var/run/crio/crio.sock"

// criNamespace is the containerd namespace containerd's CRI plugin keeps
// Kubernetes' containers in.
const criNamespace = "k8s.io"

// Bounds on what the runtime's verbose status may hold. The "info" JSON
// carries the container's whole OCI spec (environment, mounts, hooks), a
// few KiB normally; one far larger is refused rather than parsed.
const (
	maxInfo = 4 << 20
	// maxPID is the kernel's PID_MAX_LIMIT: no host pid is larger.
	maxPID = 1 << 22
)

// Errors of the CRI source.
var (
	// ErrNoPID means a runtime's verbose status did not say the host pid
	// of the container's process.
	ErrNoPID = errors.New("runtime status has no pid")
	// ErrEventsUnsupported means the runtime does not implement
	// GetContainerEvents (containerd before 1.7, CRI-O without
	// --enable-pod-events); only periodic refreshes see changes.
	ErrEventsUnsupported = errors.New("runtime does not stream container events")
)

// CRI is a Source reading a Kubernetes Container Runtime Interface
// (runtime.v1 RuntimeService) over its unix socket, for nodes whose
// runtime has no containerd API, such as CRI-O. The CRI does not list
// pids: each new container's verbose status is asked once for its
// process's host pid and cached, so a refresh with nothing new costs one
// ListContainers and one ListPodSandbox.
type CRI struct {
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	max  int

	mu      sync.Mutex // serialises Tasks, guarding what follows
	runtime string     // RuntimeCRIO or RuntimeContainerd once Version answered
	known   map[string]criStatus
}

// criStatus is what a container's or sandbox's status said that its
// listing does not: the host pid (0: the status had none) and the image.
type criStatus struct {
	pid           uint32
	image, digest string
}

// CRIOptions tunes a CRI source.
type CRIOptions struct {
	// MaxContainers bounds the containers and the pod sandboxes listed;
	// default DefaultMaxContainers.
	MaxContainers int
}

// DialCRI prepares a client of the CRI runtime listening on the unix
// socket at address (default DefaultCRIAddress). It does not connect: the
// first call does, and a runtime that restarts is reconnected to.
func DialCRI(address string, opts CRIOptions) (*CRI, error) {
	if address == "" {
		address = DefaultCRIAddress
	}
	abs, err := filepath.Abs(address)
	if err != nil {
		return nil, fmt.Errorf("CRI socket path %q: %w", address, err)
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("creating CRI client for %s: %w", abs, err)
	}
	max := opts.MaxContainers
	if max <= 0 {
		max = DefaultMaxContainers
	}
	return &CRI{
		conn:  conn,
		rt:    runtimeapi.NewRuntimeServiceClient(conn),
		max:   max,
		known: map[string]criStatus{},
	}, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// Tasks lists the running containers and ready pod sandboxes, with the
// pod of each from its sandbox's metadata where its labels lack it.
func (c *CRI) Tasks(ctx context.Context) ([]Task, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runtime == "" {
		v, err := c.rt.Version(ctx, &runtimeapi.VersionRequest{})
		if err != nil {
			return nil, fmt.Errorf("asking the CRI runtime its version: %w", err)
		}
		c.runtime = criRuntime(v.GetRuntimeName())
	}
	ns := ""
	if c.runtime == RuntimeContainerd {
		ns = criNamespace
	}
	pods, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		return nil, fmt.Errorf("listing CRI pod sandboxes: %w", err)
	}
	if n := len(pods.GetItems()); n > c.max {
		return nil, fmt.Errorf("CRI runtime has %d pod sandboxes, more than %d", n, c.max)
	}
	ctrs, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return nil, fmt.Errorf("listing CRI containers: %w", err)
	}
	if n := len(ctrs.GetContainers()); n > c.max {
		return nil, fmt.Errorf("CRI runtime has %d running containers, more than %d", n, c.max)
	}

	known := make(map[string]criStatus, len(pods.GetItems())+len(ctrs.GetContainers()))
	tasks := make([]Task, 0, len(pods.GetItems())+len(ctrs.GetContainers()))
	byID := make(map[string]*runtimeapi.PodSandbox, len(pods.GetItems()))
	for _, p := range pods.GetItems() {
		if p.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue // a runtime ignoring the filter
		}
		byID[p.GetId()] = p
		st, err := c.status(ctx, p.GetId(), true)
		if err != nil {
			return nil, err
		}
		known[p.GetId()] = st
		if st.pid == 0 {
			continue // gone since the listing, or a status without pid
		}
		t := Task{PID: st.pid, Sandbox: true, Container: wire.Container{
			ID:               p.GetId(),
			Runtime:          c.runtime,
			RuntimeNamespace: ns,
		}}
		criContainer(&t.Container, p.GetLabels())
		fillPod(&t.Container, p.GetMetadata())
		tasks = append(tasks, t)
	}
	for _, ctr := range ctrs.GetContainers() {
		if ctr.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		st, err := c.status(ctx, ctr.GetId(), false)
		if err != nil {
			return nil, err
		}
		known[ctr.GetId()] = st
		if st.pid == 0 {
			continue
		}
		t := Task{PID: st.pid, Container: wire.Container{
			ID:               ctr.GetId(),
			Runtime:          c.runtime,
			RuntimeNamespace: ns,
			Image:            st.image,
			Digest:           st.digest,
		}}
		criContainer(&t.Container, ctr.GetLabels())
		if t.Container.Name == "" {
			t.Container.Name = ctr.GetMetadata().GetName()
		}
		fillPod(&t.Container, byID[ctr.GetPodSandboxId()].GetMetadata())
		tasks = append(tasks, t)
	}
	// Forget what is no longer listed.
	c.known = known
	return tasks, nil
}

// status returns what the cached or, for an id not seen before, the
// runtime's verbose status says of a container or sandbox. One that is
// gone, or whose status has no usable pid, gives a zero pid.
func (c *CRI) status(ctx context.Context, id string, sandbox bool) (criStatus, error) {
	if st, ok := c.known[id]; ok {
		return st, nil
	}
	var (
		info map[string]string
		st   criStatus
		err  error
	)
	if sandbox {
		var resp *runtimeapi.PodSandboxStatusResponse
		resp, err = c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
		info = resp.GetInfo()
	} else {
		var resp *runtimeapi.ContainerStatusResponse
		resp, err = c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
		info = resp.GetInfo()
		st.image = criImage(resp.GetStatus().GetImage(), resp.GetStatus().GetImageRef())
		st.digest = criDigest(resp.GetStatus().GetImageRef())
	}
	if status.Code(err) == codes.NotFound {
		return criStatus{}, nil // removed since the listing
	}
	if err != nil {
		return criStatus{}, fmt.Errorf("asking the CRI runtime for the status of %s: %w", clip(id), err)
	}
	// A status without a pid will not grow one: it is cached as such,
	// so that it is not asked again at every refresh.
	st.pid, _ = parseInfoPID(info)
	return st, nil
}

// parseInfoPID returns the host pid in a verbose status's "info" JSON,
// where containerd's CRI plugin and CRI-O both put it. The JSON comes
// from the runtime but holds the container's spec, which its creator
// chose; only a top-level "pid" that is a plain positive integer no larger
// than the kernel's pid limit is accepted.
func parseInfoPID(info map[string]string) (uint32, error) {
	s, ok := info["info"]
	if !ok {
		return 0, fmt.Errorf("%w: no \"info\" entry", ErrNoPID)
	}
	if len(s) > maxInfo {
		return 0, fmt.Errorf("%w: \"info\" is %d bytes, more than %d", ErrNoPID, len(s), maxInfo)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		return 0, fmt.Errorf("%w: \"info\" is not a JSON object: %w", ErrNoPID, err)
	}
	raw, ok := fields["pid"]
	if !ok {
		return 0, fmt.Errorf("%w: \"info\" has no \"pid\"", ErrNoPID)
	}
	// ParseUint refuses signs, fractions, exponents, strings and null.
	pid, err := strconv.ParseUint(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil || pid == 0 || pid > maxPID {
		return 0, fmt.Errorf("%w: \"pid\" is %q, not a pid", ErrNoPID, clip(string(raw)))
	}
	return uint32(pid), nil
}

// criImage picks the name a container's image is best known by: the one
// in the pod spec where the runtime reports it, else the status's image
// unless that is a bare image id (newer kubelets create containers by
// id), else the repository of the image reference by digest.
func criImage(spec *runtimeapi.ImageSpec, imageRef string) string {
	if s := spec.GetUserSpecifiedImage(); s != "" {
		return s
	}
	if s := spec.GetImage(); s != "" && !isImageID(s) {
		return s
	}
	if repo, d, ok := strings.Cut(imageRef, "@"); ok && validDigest(d) {
		return repo
	}
	return ""
}

// criDigest returns the manifest digest in a status's image_ref when it is
// a reference by digest ("repo@sha256:…"). A bare "sha256:…" image_ref is
// the image id — the digest of the image's config, which containerd and
// CRI-O report for an image they know by no repository digest — and is
// not a manifest digest, so it gives "".
func criDigest(imageRef string) string {
	return digestFromRef(imageRef)
}

// isImageID reports whether s is an image id: "sha256:<64 hex>" or the
// bare hex.
func isImageID(s string) bool {
	return validDigest(s) || isID(s)
}

// criRuntime maps the runtime_name of a CRI Version response to a
// wire.Container runtime.
func criRuntime(name string) string {
	if strings.EqualFold(name, "cri-o") || strings.EqualFold(name, "crio") {
		return RuntimeCRIO
	}
	return RuntimeContainerd
}

// fillPod completes a container's pod fields from its sandbox's metadata
// where its labels did not give them.
func fillPod(c *wire.Container, m *runtimeapi.PodSandboxMetadata) {
	if m == nil {
		return
	}
	if c.Pod == "" {
		c.Pod = m.GetName()
	}
	if c.Namespace == "" {
		c.Namespace = m.GetNamespace()
	}
	if c.PodUID == "" {
		c.PodUID = m.GetUid()
	}
}

// Watch streams the runtime's container events and calls changed after
// each. A runtime without GetContainerEvents gives an error wrapping
// ErrEventsUnsupported.
func (c *CRI) Watch(ctx context.Context, changed func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		return criEventsError(err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return criEventsError(err)
		}
		changed()
	}
}

// criEventsError wraps an error of the events stream; gRPC reports an
// unimplemented server-streaming method at the first Recv.
func criEventsError(err error) error {
	if status.Code(err) == codes.Unimplemented {
		return fmt.Errorf("%w: %w", ErrEventsUnsupported, err)
	}
	return fmt.Errorf("receiving CRI container events: %w", err)
}

var (
	_ Source  = (*CRI)(nil)
	_ Watcher = (*CRI)(nil)
)
