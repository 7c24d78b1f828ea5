package admission

import (
	"context"
	"errors"
	"time"
)

// ErrNotSupported is returned by a [Facts] provider that cannot scan inline.
var ErrNotSupported = errors.New("inline scan not supported")

// ErrNotFound may be returned by [Facts.Image] for an image the server
// knows nothing about; the reviewer treats it as an unscanned image rather
// than as a failure.
var ErrNotFound = errors.New("image not known")

// Summary counts an image's vulnerabilities by severity.
type Summary struct {
	Critical, High, Medium, Low, Unknown, Fixable int
}

// Vulnerability is one finding of an image scan.
type Vulnerability struct {
	ID           string
	Aliases      []string
	Severity     string // CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
	CVSS         float64
	Fixable      bool
	Package      string
	Version      string
	FixedVersion string
}

// ImageFacts is what the server knows about one image reference.
type ImageFacts struct {
	Reference  string // as written in the pod spec
	Registry   string
	Repository string
	Tag        string
	// Digest is resolved (tag → digest) by the provider; "" if it could not
	// be, and such an image is treated as unscanned.
	Digest          string
	Scanned         bool
	ScannedAt       time.Time // changes when the scan result changes
	Summary         Summary
	Vulnerabilities []Vulnerability
}

// Facts is provided by the server: store lookups, tag resolution with a
// cache and optionally an inline scan. Image is called on every review and
// must be a lookup.
type Facts interface {
	Image(ctx context.Context, reference string) (*ImageFacts, error)
	// ScanNow scans a never-scanned image within ctx's deadline (the "scan"
	// unscanned policy); it may return ErrNotSupported.
	ScanNow(ctx context.Context, reference string) (*ImageFacts, error)
}
