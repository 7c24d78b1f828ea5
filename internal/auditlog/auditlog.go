// Package auditlog ingests Kubernetes audit events (audit.k8s.io/v1) for
// control-plane threat detection: every request to an API server is
// evidence. It parses events, bounds what hostile input can cost, redacts
// secret material from them and hands them, in order, to a Sink.
//
// Two sources exist: Webhook, the receiving end of kube-apiserver's audit
// webhook backend (--audit-webhook-config-file), and FileSource, which tails
// the JSON-lines log of its log backend (--audit-log-path) across rotation
// and restarts. Cloud log services (EKS CloudWatch Logs, GKE Cloud Logging,
// AKS diagnostic settings) do not have sources yet; they are meant to
// implement Source.
//
// The package does not store events, does not detect anything in them and
// does not authenticate webhook callers: the sink, the detectors and the
// server that mounts Webhook behind bearer-token authentication own that.
package auditlog

import (
	"context"
	"errors"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Event is one audit event after parsing and redaction.
type Event = auditv1.Event

// Sink receives batches of events in order, never concurrently from one
// source. A nil error means the batch is durably accepted: the source may
// forget it (the file source then commits its offset). A sink must not
// modify the slice after it returns.
type Sink func(ctx context.Context, events []Event) error

// Source is somewhere events come from.
type Source interface {
	// Name identifies the source in logs.
	Name() string
	// Run delivers events to sink until ctx is done.
	Run(ctx context.Context, sink Sink) error
}

// Limits on what one input may cost.
const (
	// MaxBodySize bounds a webhook request body (one EventList).
	MaxBodySize = 8 << 20
	// MaxEvents bounds the events in one EventList.
	MaxEvents = 10_000
	// MaxLineSize bounds one line of an audit log file (one Event).
	MaxLineSize = 4 << 20
	// MaxObjectSize bounds one request or response object; Redact drops
	// larger ones.
	MaxObjectSize = 3 << 20
)

var (
	// ErrMalformed marks input that is not a valid audit event or event list.
	ErrMalformed = errors.New("malformed audit data")
	// ErrTooLarge marks input over one of the limits.
	ErrTooLarge = errors.New("audit data over limit")
)
