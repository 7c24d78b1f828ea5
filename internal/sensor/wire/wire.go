// Package wire is the message format between Bulwark's node sensor and the
// server: the events a sensor reports (process executions, DNS queries and
// outbound connections, each attributed to its container and carrying its
// process ancestry), the batches they travel in, and the limits and schema
// checks the server applies, since a sensor's messages are hostile input.
//
// A batch is JSON, gzip-compressed on the wire. The package owns the types,
// their validation and the bounded decoding of a request body; it does not
// send, buffer or store them.
package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Event kinds.
const (
	KindExec    = "exec"    // a process executed a program
	KindDNS     = "dns"     // a process sent a DNS query
	KindConnect = "connect" // a process opened an outbound TCP connection
)

// Bounds of a batch, enforced by Validate and DecodeBatch.
const (
	// MaxBatchBytes bounds a batch's JSON after decompression.
	MaxBatchBytes = 16 << 20
	// MaxCompressedBytes bounds a request body.
	MaxCompressedBytes = 4 << 20
	// MaxEvents bounds the events of one batch.
	MaxEvents = 10_000
	// MaxAncestors bounds an event's ancestry.
	MaxAncestors = 16
	// MaxArgs bounds a process's arguments, MaxArgBytes their total size.
	MaxArgs     = 128
	MaxArgBytes = 4096
	// MaxString bounds every other string field.
	MaxString = 4096
	// MaxLabel bounds names and ids (node, container, pod, namespace).
	MaxLabel = 253
)

// Batch is what a sensor sends in one request.
type Batch struct {
	// ID identifies the batch, so that a batch sent again after a lost
	// response is stored once: 32 lowercase hex digits, chosen by the
	// sensor when the batch was made.
	ID string `json:"id"`
	// Node is the node the sensor runs on. The server trusts the node of
	// the sensor's credential, not this field, and refuses a mismatch.
	Node string `json:"node"`
	// Sensor is the sensor's version.
	Sensor string    `json:"sensor,omitempty"`
	SentAt time.Time `json:"sentAt"`
	// Dropped counts events the sensor lost since its previous batch:
	// ring buffer overruns and a full on-disk buffer.
	Dropped uint64  `json:"dropped,omitempty"`
	Events  []Event `json:"events"`
}

// Event is one thing a sensor saw.
type Event struct {
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Process is the process the event is about: for exec the new
	// program, for dns and connect the sender.
	Process Process `json:"process"`
	// Ancestors are the process's parent, grandparent and so on, nearest
	// first, up to MaxAncestors; empty when unknown.
	Ancestors []Process `json:"ancestors,omitempty"`
	// Container is the container the process runs in; nil for a process
	// of the host.
	Container *Container `json:"container,omitempty"`
	// DNS is set on dns events.
	DNS *DNSQuery `json:"dns,omitempty"`
	// Remote is the destination of a connect event, "IP:port".
	Remote string `json:"remote,omitempty"`
}

// Process is one process as the sensor knows it.
type Process struct {
	PID  uint32 `json:"pid"`
	PPID uint32 `json:"ppid,omitempty"`
	UID  uint32 `json:"uid"`
	// Comm is the kernel's command name (at most 15 bytes).
	Comm string `json:"comm,omitempty"`
	// Exe is the path the program was executed as.
	Exe string `json:"exe,omitempty"`
	// Args are its arguments, argv[0] first; ArgsTruncated says the
	// sensor cut some.
	Args          []string `json:"args,omitempty"`
	ArgsTruncated bool     `json:"argsTruncated,omitempty"`
	// Drift: the executable was not in the container's image (it lives
	// in the container's writable layer).
	Drift bool `json:"drift,omitempty"`
	// Stdin, Stdout and Stderr say what file descriptors 0-2 referred to
	// at exec: "", "file", "pipe", "char", "tcp", "udp", "unix", "socket"
	// or "other".
	Stdin  string `json:"stdin,omitempty"`
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	// Remote is the peer ("IP:port") of the first of fds 0-2 that is a
	// connected TCP or UDP socket.
	Remote string `json:"remote,omitempty"`
	// Start is when the process (or the exec) began, if known.
	Start time.Time `json:"start,omitzero"`
}

// Container is where a process runs, as the node's container runtime
// describes it.
type Container struct {
	ID string `json:"id"`
	// Name is the Kubernetes container name, or the runtime's name.
	Name string `json:"name,omitempty"`
	// Runtime is "containerd" or "cri-o"; RuntimeNamespace the
	// containerd namespace ("k8s.io" under Kubernetes).
	Runtime          string `json:"runtime,omitempty"`
	RuntimeNamespace string `json:"runtimeNamespace,omitempty"`
	// Pod, Namespace and PodUID are set for Kubernetes pods.
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	PodUID    string `json:"podUID,omitempty"`
	// Image is the reference the container was created from; Digest the
	// image's manifest digest ("sha256:…") when the runtime knows it.
	Image  string `json:"image,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// DNSQuery is the question of a DNS query.
type DNSQuery struct {
	// Name is the queried name, lower case, without the trailing dot.
	Name string `json:"name"`
	// Type is the query type's mnemonic ("A", "AAAA", "TXT") or
	// "TYPE<n>".
	Type string `json:"type"`
	// Server is the resolver it was sent to, "IP:port", if known.
	Server string `json:"server,omitempty"`
	// Truncated says the sensor saw only the start of the question (it
	// copies a bounded prefix of each datagram): Name holds the labels
	// read, Type may be empty. Long names are what DNS tunnelling sends.
	Truncated bool `json:"truncated,omitempty"`
}

// ErrInvalid is wrapped by every error about a malformed batch or event.
var ErrInvalid = errors.New("invalid sensor message")

var (
	batchIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	digestPattern  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	fileTypes      = map[string]bool{"": true, "file": true, "pipe": true, "char": true, "tcp": true, "udp": true, "unix": true, "socket": true, "other": true}
)

// Validate checks a batch against the schema and the bounds. The error
// names the first offending event and field.
func (b *Batch) Validate() error {
	if !batchIDPattern.MatchString(b.ID) {
		return fmt.Errorf("%w: batch id %q is not 32 lowercase hex digits", ErrInvalid, clip(b.ID))
	}
	if err := label("", "node", b.Node, true); err != nil {
		return err
	}
	if err := text("", "sensor", b.Sensor, MaxLabel); err != nil {
		return err
	}
	if len(b.Events) > MaxEvents {
		return fmt.Errorf("%w: %d events, at most %d", ErrInvalid, len(b.Events), MaxEvents)
	}
	for i := range b.Events {
		if err := b.Events[i].Validate(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	return nil
}

// Validate checks one event against the schema and the bounds.
func (e *Event) Validate() error {
	switch e.Kind {
	case KindExec:
		if e.DNS != nil || e.Remote != "" {
			return fmt.Errorf("%w: an exec event has dns or remote", ErrInvalid)
		}
	case KindDNS:
		if e.DNS == nil {
			return fmt.Errorf("%w: a dns event has no query", ErrInvalid)
		}
		if err := e.DNS.validate(); err != nil {
			return err
		}
		if e.Remote != "" {
			return fmt.Errorf("%w: a dns event has remote", ErrInvalid)
		}
	case KindConnect:
		if e.DNS != nil {
			return fmt.Errorf("%w: a connect event has a dns query", ErrInvalid)
		}
		if err := addrPort("", "remote", e.Remote, true); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, clip(e.Kind))
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: no time", ErrInvalid)
	}
	if err := e.Process.validate("process."); err != nil {
		return err
	}
	if len(e.Ancestors) > MaxAncestors {
		return fmt.Errorf("%w: %d ancestors, at most %d", ErrInvalid, len(e.Ancestors), MaxAncestors)
	}
	for i := range e.Ancestors {
		if err := e.Ancestors[i].validate("ancestor."); err != nil {
			return fmt.Errorf("ancestors[%d]: %w", i, err)
		}
	}
	if e.Container != nil {
		if err := e.Container.validate(); err != nil {
			return err
		}
	}
	return nil
}

// validate checks a process; field names in its errors start with prefix,
// joined only when one fails, so that checking allocates nothing.
func (p *Process) validate(prefix string) error {
	if err := text(prefix, "comm", p.Comm, MaxString); err != nil {
		return err
	}
	if err := text(prefix, "exe", p.Exe, MaxString); err != nil {
		return err
	}
	if len(p.Args) > MaxArgs {
		return fmt.Errorf("%w: %sargs: %d arguments, at most %d", ErrInvalid, prefix, len(p.Args), MaxArgs)
	}
	n := 0
	for _, a := range p.Args {
		n += len(a)
	}
	if n > MaxArgBytes {
		return fmt.Errorf("%w: %sargs: %d bytes, at most %d", ErrInvalid, prefix, n, MaxArgBytes)
	}
	for _, f := range [...]struct{ name, value string }{{"stdin", p.Stdin}, {"stdout", p.Stdout}, {"stderr", p.Stderr}} {
		if !fileTypes[f.value] {
			return fmt.Errorf("%w: %s%s: unknown file type %q", ErrInvalid, prefix, f.name, clip(f.value))
		}
	}
	return addrPort(prefix, "remote", p.Remote, false)
}

func (c *Container) validate() error {
	if err := label("container.", "id", c.ID, true); err != nil {
		return err
	}
	for _, f := range [...]struct{ name, value string }{
		{"name", c.Name}, {"runtime", c.Runtime}, {"runtimeNamespace", c.RuntimeNamespace},
		{"pod", c.Pod}, {"namespace", c.Namespace}, {"podUID", c.PodUID},
	} {
		if err := label("container.", f.name, f.value, false); err != nil {
			return err
		}
	}
	if err := text("container.", "image", c.Image, MaxString); err != nil {
		return err
	}
	if c.Digest != "" && !digestPattern.MatchString(c.Digest) {
		return fmt.Errorf("%w: container.digest %q is not sha256:<64 hex>", ErrInvalid, clip(c.Digest))
	}
	return nil
}

func (q *DNSQuery) validate() error {
	if q.Name == "" {
		return fmt.Errorf("%w: dns.name is empty", ErrInvalid)
	}
	if err := text("dns.", "name", q.Name, 255); err != nil {
		return err
	}
	if err := text("dns.", "type", q.Type, 16); err != nil {
		return err
	}
	return addrPort("dns.", "server", q.Server, false)
}

// label checks a name or id: printable, at most MaxLabel bytes.
func label(prefix, field, s string, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s%s is empty", ErrInvalid, prefix, field)
	}
	return text(prefix, field, s, MaxLabel)
}

// text checks a string has no control characters and is at most max bytes
// long. (JSON decoding has already replaced invalid UTF-8.)
func text(prefix, field, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s%s is %d bytes, at most %d", ErrInvalid, prefix, field, len(s), max)
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s%s has a control or invalid character at byte %d", ErrInvalid, prefix, field, i)
		}
	}
	return nil
}

func addrPort(prefix, field, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%w: %s%s is empty", ErrInvalid, prefix, field)
		}
		return nil
	}
	if _, err := netip.ParseAddrPort(s); err != nil {
		return fmt.Errorf("%w: %s%s %q is not IP:port", ErrInvalid, prefix, field, clip(s))
	}
	return nil
}

// clip shortens a hostile value quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
