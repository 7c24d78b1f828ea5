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
	// ClusterID is the cluster whose workloads run the image, for scans a
	// cluster asked for; PullSecrets name ("namespace/name") the image
	// pull secrets that may read it — names only, never their contents.
	ClusterID   int64
	PullSecrets []string
}

// Roles an API token can have: viewer, analyst and admin, least to most;
// and ingest, which may only send data (Kubernetes audit events) and read
// nothing.
const (
	RoleViewer  = "viewer"
	RoleAnalyst = "analyst"
	RoleAdmin   = "admin"
	RoleIngest  = "ingest"
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

// Cluster sources: a kubeconfig given by the user, or the cluster the
// server itself runs in (its service account).
const (
	ClusterSourceKubeconfig = "kubeconfig"
	ClusterSourceInCluster  = "in-cluster"
)

// Cluster statuses: pending until the first inventory, then whether the
// last one worked.
const (
	ClusterPending   = "pending"
	ClusterConnected = "connected"
	ClusterError     = "error"
)

// Cluster is a Kubernetes cluster Bulwark watches. Its kubeconfig is
// sealed by the caller and read only through ClusterConfig.
type Cluster struct {
	ID        int64
	Name      string
	Source    string
	Context   string
	Server    string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Status, Error and Version say how the last connection went;
	// SyncedAt is when the inventory was last replaced.
	Status   string
	Error    string
	Version  string
	SyncedAt time.Time
	// Namespaces, Workloads and Pods count the last inventory.
	Namespaces int
	Workloads  int
	Pods       int
}

// ClusterNamespace is a namespace of a cluster with its labels.
type ClusterNamespace struct {
	Name   string
	Labels map[string]string
}

// Container kinds of a pod.
const (
	ContainerInit      = "init"
	ContainerRegular   = "regular"
	ContainerEphemeral = "ephemeral"
)

// WorkloadContainer is a container of a running pod: the image it runs,
// by digest when the kubelet reported one, and the security settings the
// posture checks read.
type WorkloadContainer struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Image        string   `json:"image"`
	Digest       string   `json:"digest,omitempty"`
	Privileged   bool     `json:"privileged,omitempty"`
	RunAsNonRoot *bool    `json:"runAsNonRoot,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	HostPorts    []int32  `json:"hostPorts,omitempty"`
}

// WorkloadPod is a pod of a workload.
type WorkloadPod struct {
	Name       string              `json:"name"`
	Node       string              `json:"node,omitempty"`
	Phase      string              `json:"phase,omitempty"`
	Containers []WorkloadContainer `json:"containers"`
}

// Workload is a controller of a cluster (a Deployment, DaemonSet,
// StatefulSet, Job, CronJob or a pod of its own) with its pods as of the
// last inventory.
type Workload struct {
	ID        int64
	ClusterID int64
	// Cluster is the cluster's name, filled on reads.
	Cluster        string
	Namespace      string
	Kind           string
	Name           string
	ServiceAccount string
	// Exposure says how the workload is reachable from outside the
	// cluster ("LoadBalancer service web", "Ingress shop"); empty when
	// it is not.
	Exposure    []string
	HostNetwork bool
	HostPID     bool
	HostIPC     bool
	Pods        []WorkloadPod
	FirstSeenAt time.Time
	LastSeenAt  time.Time
}

// ClusterInventory is what runs in a cluster at one moment.
type ClusterInventory struct {
	Namespaces []ClusterNamespace
	Workloads  []Workload
}

// PostureFinding is a failed configuration check of a cluster resource.
// ResolvedAt is zero while the finding is open; it is set when an
// evaluation no longer reports it and cleared if it comes back.
type PostureFinding struct {
	ID        int64
	ClusterID int64
	// Cluster is the cluster's name, filled on reads.
	Cluster  string
	CheckID  string
	Title    string
	Severity string
	// Frameworks name the benchmark controls the check belongs to.
	Frameworks        []string
	ResourceKind      string
	ResourceNamespace string
	ResourceName      string
	Evidence          []string
	FirstSeenAt       time.Time
	LastSeenAt        time.Time
	ResolvedAt        time.Time
	// State is StateOpen or StateResolved, filled on reads.
	State string
}
