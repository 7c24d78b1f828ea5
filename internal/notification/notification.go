// Package notification reads the push notifications a registry sends when
// an image is pushed — the event envelopes of the Docker distribution
// registry and of registries built on it — and turns them into the
// manifest pushes Bulwark should scan.
//
// It owns parsing and validating an envelope. It does not own the HTTP
// endpoint the registry posts to, authenticating the registry, or what is
// done with a push.
package notification

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// MediaType is the Content-Type of an event envelope.
const MediaType = "application/vnd.docker.distribution.events.v1+json"

const (
	// DefaultLimit is the body size Parse allows when given a limit <= 0.
	// An event is under 1 KiB, so this is thousands of events.
	DefaultLimit = 8 << 20
	// MaxEvents is the most events Parse accepts in one envelope.
	MaxEvents = 10000
)

// Push is a manifest (image or index) pushed to a registry.
type Push struct {
	// Host is the registry's host[:port] as the pusher addressed it.
	Host string
	// Repository is the repository path within the registry, "library/x".
	Repository string
	// Digest is the manifest's digest, "sha256:<hex>".
	Digest string
	// Tag is the tag pushed, empty for a push by digest.
	Tag string
	// MediaType is the manifest's media type.
	MediaType string
	// Timestamp is when the registry handled the push.
	Timestamp time.Time
	// EventID is the registry's id for the event; a registry retrying a
	// delivery sends the same id again.
	EventID string
}

// Reference is the pushed manifest by digest, ready to pull. Pass
// name.Insecure for a registry served over plain HTTP.
func (p Push) Reference(opts ...name.Option) (name.Digest, error) {
	// Built from parts rather than parsed from "host/repo@digest": a host
	// without a dot or port, such as a cluster's "registry", would be
	// taken for the first path component of a Docker Hub repository.
	reg, err := name.NewRegistry(p.Host, append(opts, name.StrictValidation)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("reference of pushed manifest: %w", err)
	}
	if err := validRepository(p.Repository); err != nil {
		return name.Digest{}, fmt.Errorf("reference of pushed manifest: %w", err)
	}
	if err := validDigest(p.Digest); err != nil {
		return name.Digest{}, fmt.Errorf("reference of pushed manifest: %w", err)
	}
	return reg.Repo(p.Repository).Digest(p.Digest), nil
}

// manifestTypes are the media types of manifests worth scanning: the
// Docker schema 2 and OCI image manifests and the indexes over them.
var manifestTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
}

// AcceptsContentType reports whether contentType, a Content-Type header,
// is one an envelope is sent with: MediaType or, from some registries and
// proxies, application/json.
func AcceptsContentType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == MediaType || mt == "application/json")
}

// ErrTooLarge is returned by Parse for a body over its limit.
var ErrTooLarge = errors.New("notification body too large")

// EventError is why an event of an envelope was rejected.
type EventError struct {
	// Index is the event's position in the envelope, from 0.
	Index int
	// ID is the event's id, when it could be read.
	ID  string
	Err error
}

func (e *EventError) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("event %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("event %d (id %q): %v", e.Index, e.ID, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// Parse reads an event envelope of at most limit bytes (DefaultLimit when
// limit <= 0) and returns its manifest pushes in order. Other events —
// pulls, deletes, mounts, blob pushes — are ignored.
//
// A push event that is invalid (a bad digest, repository, host or tag) is
// left out and reported in rejected, a *EventError each, so one bad event
// does not lose the others. err is for a body that is not an envelope at
// all, is over the limit, or holds more than MaxEvents events.
func Parse(r io.Reader, limit int64) (pushes []Push, rejected []error, err error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading notification body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("%w: over the %d-byte limit", ErrTooLarge, limit)
	}
	var envelope struct {
		// Events are decoded one by one so one malformed event does not
		// fail the envelope.
		Events *[]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return nil, nil, fmt.Errorf("decoding notification envelope: %w", err)
	}
	if envelope.Events == nil {
		return nil, nil, errors.New(`decoding notification envelope: no "events" list`)
	}
	events := *envelope.Events
	if len(events) > MaxEvents {
		return nil, nil, fmt.Errorf("notification envelope has %d events, over the limit of %d", len(events), MaxEvents)
	}
	for i, raw := range events {
		push, ok, err := parseEvent(raw)
		if err != nil {
			rejected = append(rejected, &EventError{Index: i, ID: eventID(raw), Err: err})
			continue
		}
		if ok {
			pushes = append(pushes, push)
		}
	}
	return pushes, rejected, nil
}

// eventID reads just the id of an event that failed to decode whole.
func eventID(raw json.RawMessage) string {
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &e) // best effort: the id only labels the error
	return e.ID
}
