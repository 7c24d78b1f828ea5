package attrib

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	namespacesapi "github.com/containerd/containerd/api/services/namespaces/v1"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// DefaultContainerdAddress is where containerd listens on a node.
const DefaultContainerdAddress = "/run/containerd/containerd.sock"

// namespaceHeader is the gRPC metadata key containerd reads the namespace
// of a request from.
const namespaceHeader = "containerd-namespace"

// Bounds on what one listing may return: a runtime with more is either
// broken or hostile, and attribution would be the least of its problems.
const (
	maxNamespaces = 256
	maxImages     = 65536
	// maxMessage bounds one gRPC response; containerd's own limit is 16 MiB.
	maxMessage = 16 << 20
)

// Containerd is a Source reading containerd's API over its socket: its
// namespaces, the containers in each with their labels and image, their
// tasks' pids, and the images' manifest digests. It speaks the generated
// gRPC API directly rather than through containerd's client module, which
// would pull in most of containerd.
type Containerd struct {
	conn       *grpc.ClientConn
	namespaces namespacesapi.NamespacesClient
	containers containersapi.ContainersClient
	tasks      tasksapi.TasksClient
	images     imagesapi.ImagesClient
	events     eventsapi.EventsClient
	only       []string
	max        int
}

// ContainerdOptions tunes a Containerd source.
type ContainerdOptions struct {
	// Namespaces limits the listing to these containerd namespaces; empty
	// lists all ("k8s.io" holds Kubernetes' containers, "moby" Docker's).
	Namespaces []string
	// MaxContainers bounds the containers listed per namespace; default
	// DefaultMaxContainers.
	MaxContainers int
}

// DialContainerd prepares a client of the containerd listening on the unix
// socket at address. It does not connect: the first call does, and a
// daemon that is down or restarts is reconnected to by later calls.
func DialContainerd(address string, opts ContainerdOptions) (*Containerd, error) {
	if address == "" {
		address = DefaultContainerdAddress
	}
	abs, err := filepath.Abs(address)
	if err != nil {
		return nil, fmt.Errorf("containerd socket path %q: %w", address, err)
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		return nil, fmt.Errorf("creating containerd client for %s: %w", abs, err)
	}
	max := opts.MaxContainers
	if max <= 0 {
		max = DefaultMaxContainers
	}
	return &Containerd{
		conn:       conn,
		namespaces: namespacesapi.NewNamespacesClient(conn),
		containers: containersapi.NewContainersClient(conn),
		tasks:      tasksapi.NewTasksClient(conn),
		images:     imagesapi.NewImagesClient(conn),
		events:     eventsapi.NewEventsClient(conn),
		only:       slices.Clone(opts.Namespaces),
		max:        max,
	}, nil
}

// Close closes the connection.
func (c *Containerd) Close() error { return c.conn.Close() }

// Tasks lists the containers with a created, running or paused task in
// each namespace.
func (c *Containerd) Tasks(ctx context.Context) ([]Task, error) {
	nss := c.only
	if len(nss) == 0 {
		resp, err := c.namespaces.List(ctx, &namespacesapi.ListNamespacesRequest{})
		if err != nil {
			return nil, fmt.Errorf("listing containerd namespaces: %w", err)
		}
		for _, ns := range resp.GetNamespaces() {
			if len(nss) == maxNamespaces {
				return nil, fmt.Errorf("containerd has more than %d namespaces", maxNamespaces)
			}
			nss = append(nss, ns.GetName())
		}
	}
	var all []Task
	for _, ns := range nss {
		tasks, err := c.namespaceTasks(metadata.AppendToOutgoingContext(ctx, namespaceHeader, ns), ns)
		if err != nil {
			return nil, err
		}
		all = append(all, tasks...)
	}
	return all, nil
}

func (c *Containerd) namespaceTasks(ctx context.Context, ns string) ([]Task, error) {
	resp, err := c.tasks.List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing tasks of containerd namespace %q: %w", ns, err)
	}
	pids := map[string]uint32{}
	for _, p := range resp.GetTasks() {
		switch p.GetStatus() {
		case tasktypes.Status_CREATED, tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		default:
			continue
		}
		id := p.GetID()
		if id == "" {
			id = p.GetContainerID()
		}
		if p.GetPid() != 0 && id != "" {
			pids[id] = p.GetPid()
		}
	}
	if len(pids) == 0 {
		return nil, nil
	}
	digests, err := c.imageDigests(ctx, ns)
	if err != nil {
		return nil, err
	}
	// Streamed: a plain List returns every container's OCI spec in one
	// message, which can outgrow any sensible message limit.
	stream, err := c.containers.ListStream(ctx, &containersapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing containers of containerd namespace %q: %w", ns, err)
	}
	var tasks []Task
	for n := 0; ; n++ {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("listing containers of containerd namespace %q: %w", ns, err)
		}
		if n == c.max {
			return nil, fmt.Errorf("containerd namespace %q has more than %d containers", ns, c.max)
		}
		ctr := msg.GetContainer()
		pid, ok := pids[ctr.GetID()]
		if !ok {
			continue
		}
		t := Task{PID: pid, Container: wire.Container{
			ID:               ctr.GetID(),
			Runtime:          RuntimeContainerd,
			RuntimeNamespace: ns,
			Image:            ctr.GetImage(),
		}}
		t.Sandbox = criContainer(&t.Container, ctr.GetLabels())
		t.Container.Digest = digests[ctr.GetImage()]
		if t.Container.Digest == "" {
			t.Container.Digest = digestFromRef(ctr.GetImage())
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

// imageDigests maps the namespace's image names to their manifest (or
// index) digests.
func (c *Containerd) imageDigests(ctx context.Context, ns string) (map[string]string, error) {
	resp, err := c.images.List(ctx, &imagesapi.ListImagesRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing images of containerd namespace %q: %w", ns, err)
	}
	if n := len(resp.GetImages()); n > maxImages {
		return nil, fmt.Errorf("containerd namespace %q has %d images, more than %d", ns, n, maxImages)
	}
	digests := make(map[string]string, len(resp.GetImages()))
	for _, img := range resp.GetImages() {
		if d := img.GetTarget().GetDigest(); validDigest(d) {
			digests[img.GetName()] = d
		}
	}
	return digests, nil
}

// containerdTopics are the events after which the set of containers with
// a process, or their pids, may have changed.
var containerdTopics = []string{"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete", "/containers/delete"}

// Watch subscribes to containerd's events of all namespaces and calls
// changed after each task creation, start, exit or deletion and each
// container removal.
func (c *Containerd) Watch(ctx context.Context, changed func()) error {
	filters := make([]string, len(containerdTopics))
	for i, t := range containerdTopics {
		filters[i] = fmt.Sprintf("topic==%q", t)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.events.Subscribe(ctx, &eventsapi.SubscribeRequest{Filters: filters})
	if err != nil {
		return fmt.Errorf("subscribing to containerd events: %w", err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("receiving containerd events: %w", err)
		}
		changed()
	}
}

var (
	_ Source  = (*Containerd)(nil)
	_ Watcher = (*Containerd)(nil)
)
