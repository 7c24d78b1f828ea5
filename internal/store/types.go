package store

import (
	"errors"
	"time"
)

// ErrNotFound is returned when a row asked for by id or name does not
// exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a row would break a uniqueness rule, such
// as a second registry with the same name.
var ErrConflict = errors.New("already exists")

// Registry is a registry Bulwark watches. Credentials are sealed by the
// caller; the store never sees them in the clear.
type Registry struct {
	ID          int64
	Name        string
	Type        string
	URL         string
	Settings    RegistrySettings
	Credentials []byte
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// NextPollAt is when the registry is next due to be listed;
	// LastPolledAt and LastError say how the last listing went.
	NextPollAt   time.Time
	LastPolledAt time.Time
	LastError    string
}

// RegistrySettings are a registry's options other than its address and
// credentials, kept as one JSON document so new options need no
// migration.
type RegistrySettings struct {
	Namespace    string   `json:"namespace,omitempty"`
	Repositories []string `json:"repositories,omitempty"`
	Insecure     bool     `json:"insecure,omitempty"`
	// PollInterval is how often the registry is listed for new digests;
	// zero means the server's default, negative means never (push
	// notifications only).
	PollInterval Duration `json:"pollInterval,omitempty"`
	// RateLimit is the most requests per second sent to the registry;
	// zero means the server's default.
	RateLimit float64 `json:"rateLimit,omitempty"`
	// MaxTags bounds how many tags of each repository are scanned, newest
	// listing order first; zero means the server's default.
	MaxTags int `json:"maxTags,omitempty"`
	// PublishReports attaches each scan report to the image as an OCI
	// referrer.
	PublishReports bool `json:"publishReports,omitempty"`
	// Region and similar provider options.
	Region string `json:"region,omitempty"`
}

// Duration is a time.Duration that reads and writes as a Go duration
// string ("15m").
type Duration time.Duration

// MarshalText writes the duration as "1h0m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Repository is a repository seen in a registry's listing.
type Repository struct {
	ID          int64
	RegistryID  int64
	Name        string
	FirstSeenAt time.Time
	LastSeenAt  time.Time
}

// Image is an image by manifest digest. The same digest seen in several
// repositories or under several tags is one image with several Refs.
type Image struct {
	ID          int64
	Digest      string
	Platform    string
	OS          string
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	// ScannedAt is when its layers were last read; MatchedAt when its
	// packages were last matched (later than ScannedAt after a database
	// update); DBBuiltAt is the build time of the database used. All are
	// zero until the first scan.
	ScannedAt time.Time
	MatchedAt time.Time
	DBBuiltAt time.Time
	Packages  int
	Summary   Summary
	Warnings  []string
	Refs      []ImageRef
}

// Summary counts an image's open findings.
type Summary struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Unknown  int `json:"unknown"`
	Fixable  int `json:"fixable"`
}

// ImageRef is a place an image was seen: a repository in a registry and,
// when known, a tag.
type ImageRef struct {
	ImageID    int64
	RegistryID int64
	Host       string
	Repository string
	Tag        string
	FirstSeen  time.Time
	LastSeen   time.Time
}

// Finding is a vulnerability in a package of an image. FixedAt is zero
// while the finding is open; it is set when a later scan or match no
// longer reports it, and cleared if it comes back.
type Finding struct {
	ID             int64
	ImageID        int64
	ImageDigest    string
	VulnID         string
	Aliases        []string
	PackageName    string
	PackageVersion string
	Ecosystem      string
	PURL           string
	Path           string
	FixedVersion   string
	Severity       string
	SeverityRank   int
	CVSS           float64
	Summary        string
	FirstSeenAt    time.Time
	FixedAt        time.Time
}

// Scan kinds: a pull reads the image from its registry; a rematch matches
// the stored packages against the current database.
const (
	ScanPull    = "pull"
	ScanRematch = "rematch"
)

// Scan statuses.
const (
	ScanQueued    = "queued"
	ScanRunning   = "running"
	ScanSucceeded = "succeeded"
	ScanFailed    = "failed"
)

// Scan is one job in the scan queue and, once finished, its record.
type Scan struct {
	ID         int64
	Kind       string
	Reason     string
	RegistryID int64
	// Reference is what to scan: "host/repo@sha256:…" for pulls, the
	// digest for rematches.
	Reference   string
	ImageID     int64
	Status      string
	Attempts    int
	MaxAttempts int
	Error       string
	Findings    int
	QueuedAt    time.Time
	NotBefore   time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	LeaseOwner  string
	LeaseUntil  time.Time
}

// Roles an API token can have, least to most.
const (
	RoleViewer  = "viewer"
	RoleAnalyst = "analyst"
	RoleAdmin   = "admin"
)

// Token is an API token; only the SHA-256 of the token is stored, with a
// short prefix to tell tokens apart in listings.
type Token struct {
	ID         int64
	Name       string
	Role       string
	Hash       string
	Prefix     string
	CreatedAt  time.Time
	CreatedBy  string
	ExpiresAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// AuditEntry is one user action: every mutating API call lands here.
type AuditEntry struct {
	ID         int64
	At         time.Time
	Actor      string
	Role       string
	Action     string
	Method     string
	Path       string
	Target     string
	Status     int
	RemoteAddr string
	Detail     map[string]any
}
