package attrib

import (
	"context"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Runtime names, as wire.Container.Runtime carries them.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
)

// Labels the CRI plugins of containerd and CRI-O put on the containers
// they create for the kubelet.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	// LabelContainerKind is "sandbox" on a pod's sandbox (pause)
	// container, "container" on the others.
	LabelContainerKind = "io.cri-containerd.kind"
)

// Source lists the containers of a node's container runtime that have a
// process, the truth attribution is checked against.
type Source interface {
	// Tasks lists the runtime's containers with a live first process.
	Tasks(ctx context.Context) ([]Task, error)
}

// Watcher is a Source that can say when its containers change, so that
// they are refreshed before the first event of a new one arrives.
type Watcher interface {
	// Watch calls changed after each container start, exit or removal
	// until ctx ends or the stream breaks; it returns the reason.
	Watch(ctx context.Context, changed func()) error
}

// Task is a container with its first process.
type Task struct {
	Container wire.Container
	// PID is the host pid of the container's first process.
	PID uint32
	// Sandbox marks a pod's sandbox (pause) container, which holds the
	// pod's namespaces but runs nothing of the user's; it is an
	// attribution target only where no other container matches.
	Sandbox bool
}

// criContainer fills in a container's Kubernetes fields from its CRI
// labels and reports whether it is a pod sandbox.
func criContainer(c *wire.Container, labels map[string]string) (sandbox bool) {
	c.Pod = labels[LabelPodName]
	c.Namespace = labels[LabelPodNamespace]
	c.PodUID = labels[LabelPodUID]
	c.Name = labels[LabelContainerName]
	if c.Name == "" {
		// nerdctl's name for containers outside Kubernetes.
		c.Name = labels["nerdctl/name"]
	}
	return labels[LabelContainerKind] == "sandbox"
}

// digestFromRef returns the digest of an image reference of the form
// "repo@sha256:…", which Kubernetes' CRI records for images pulled by
// digest; "" for any other reference.
func digestFromRef(ref string) string {
	_, d, ok := strings.Cut(ref, "@")
	if !ok || !validDigest(d) {
		return ""
	}
	return d
}

func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && isID(hex)
}

// sanitize makes a container's fields acceptable to wire.Container's
// validation: the server refuses a whole batch over one bad field, and
// labels are chosen by whoever created the container. Fields that do not
// fit are dropped; false means the id itself is unusable.
func sanitize(c *wire.Container) bool {
	if !fits(c.ID, wire.MaxLabel) || c.ID == "" {
		return false
	}
	for _, f := range []*string{&c.Name, &c.Runtime, &c.RuntimeNamespace, &c.Pod, &c.Namespace, &c.PodUID} {
		if !fits(*f, wire.MaxLabel) {
			*f = ""
		}
	}
	if !fits(c.Image, wire.MaxString) {
		c.Image = ""
	}
	if c.Digest != "" && !validDigest(c.Digest) {
		c.Digest = ""
	}
	return true
}

// fits reports whether s is at most max bytes of valid UTF-8 without
// control characters.
func fits(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}
