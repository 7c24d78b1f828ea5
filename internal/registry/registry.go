// Package registry owns Bulwark's registry connectors: for each kind of
// registry it authenticates, lists repositories and their tags, and gives an
// authn.Authenticator with which go-containerregistry pulls (or pushes)
// images. It does not pull images, schedule scans or store configurations;
// the server does that with what a Connector returns.
//
// Every connector names repositories so that Host()+"/"+repo+":"+tag is a
// pullable reference, and Tags takes the same names.
//
// Listing is bounded against hostile or broken servers: response bodies,
// pages and items are capped, pagination links must stay on the host they
// came from, transient failures (429, 5xx) are retried a few times with
// backoff, and 401/403 answers are reported as ErrUnauthorized.
//
// The generic OCI connector is tested against real registries
// (distribution's docker-registry and go-containerregistry's in-memory
// registry). Docker Hub, ECR, ACR, GAR, Artifactory and Harbor are tested
// only against local fakes of their documented APIs; where a fake fronts a
// real local registry, pulls go through real registry code.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Type is a kind of registry.
type Type string

// The kinds of registries Bulwark connects to.
const (
	// TypeOCI is any registry speaking the distribution API with basic or
	// bearer-token authentication.
	TypeOCI Type = "oci"
	// TypeDockerHub lists through the Docker Hub API and pulls from
	// registry-1.docker.io.
	TypeDockerHub Type = "dockerhub"
	// TypeECR is Amazon Elastic Container Registry.
	TypeECR Type = "ecr"
	// TypeACR is Azure Container Registry.
	TypeACR Type = "acr"
	// TypeGAR is Google Artifact Registry (and Container Registry).
	TypeGAR Type = "gar"
	// TypeArtifactory is JFrog Artifactory's Docker repositories.
	TypeArtifactory Type = "artifactory"
	// TypeHarbor is Harbor, through its v2.0 API.
	TypeHarbor Type = "harbor"
)

// Types lists every Type, in the order a user interface offers them.
func Types() []Type {
	return []Type{TypeOCI, TypeDockerHub, TypeECR, TypeACR, TypeGAR, TypeArtifactory, TypeHarbor}
}

// Valid reports whether t is one of Types.
func (t Type) Valid() bool {
	for _, k := range Types() {
		if t == k {
			return true
		}
	}
	return false
}

// Config says how to reach and authenticate to one registry.
type Config struct {
	Type Type
	// URL is the registry as it appears in image references
	// ("registry.example.com", "localhost:5000",
	// "123456789012.dkr.ecr.eu-west-1.amazonaws.com"), optionally with an
	// "https://" prefix; for dockerhub it may be empty (index.docker.io).
	URL string
	// Insecure talks plain HTTP to the registry.
	Insecure bool
	// Namespace is the Docker Hub namespace, Harbor project, Artifactory
	// repository key, or ACR/GAR path prefix; empty lists everything the
	// provider allows.
	Namespace string
	// Repositories are path.Match globs selecting repositories by the names
	// Repositories returns ("*" does not cross "/"); empty selects all.
	Repositories []string
	Credentials  Credentials
	// Endpoints override provider API endpoints; the zero value means the
	// real ones.
	Endpoints Endpoints
	// Transport carries every HTTP call; nil means http.DefaultTransport.
	Transport http.RoundTripper
}

// Credentials are the secrets of a registry; each Type uses some of them.
type Credentials struct {
	Username, Password string
	// Token is an access token or personal access token.
	Token                                                          string
	AWSAccessKeyID, AWSSecretAccessKey, AWSSessionToken, AWSRegion string
	AzureTenantID, AzureClientID, AzureClientSecret                string
	// GoogleServiceAccountJSON is a service-account key file's contents.
	GoogleServiceAccountJSON string
}

// Redacted returns c with every secret replaced by "". Identifiers that are
// not secret (user name, key ID, region, tenant and client ID) are kept so a
// user can see which identity is configured.
func (c Credentials) Redacted() Credentials {
	c.Password = ""
	c.Token = ""
	c.AWSSecretAccessKey = ""
	c.AWSSessionToken = ""
	c.AzureClientSecret = ""
	c.GoogleServiceAccountJSON = ""
	return c
}

// secrets returns the non-empty secret values of c, for scrubbing them from
// error messages.
func (c Credentials) secrets() []string {
	var out []string
	for _, s := range []string{c.Password, c.Token, c.AWSSecretAccessKey, c.AWSSessionToken, c.AzureClientSecret, c.GoogleServiceAccountJSON} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Endpoints override provider API endpoints, as base URLs
// ("https://host:port"). Tests point them at local fakes.
type Endpoints struct {
	// DockerHubAPI defaults to https://hub.docker.com.
	DockerHubAPI string
	// AWS is the ECR API endpoint; it defaults to the SDK's endpoint for
	// the region.
	AWS string
	// AzureLogin defaults to https://login.microsoftonline.com.
	AzureLogin string
	// GoogleToken overrides the service account's token_uri.
	GoogleToken string
}

// Connector lists and authenticates to one registry. Implementations are
// safe for concurrent use.
type Connector interface {
	Type() Type
	// Host is the host[:port] used in image references.
	Host() string
	// Repositories lists the repositories selected by Config.Repositories.
	Repositories(ctx context.Context) ([]string, error)
	// Tags lists the tags of repo, a name Repositories returns.
	Tags(ctx context.Context, repo string) ([]string, error)
	// Authenticator returns credentials for pulls and pushes; it renews
	// short-lived tokens itself.
	Authenticator(ctx context.Context) (authn.Authenticator, error)
}

// Errors callers tell apart with errors.Is.
var (
	// ErrUnauthorized marks a registry or provider API refusing the
	// credentials (HTTP 401 or 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrLimit marks a listing abandoned for exceeding a bound: body size,
	// pages or items.
	ErrLimit = errors.New("listing limit exceeded")
	// ErrBadResponse marks an answer Bulwark cannot use: not JSON, not the
	// expected shape, or pagination that loops or leaves the host.
	ErrBadResponse = errors.New("bad response")
)

// New validates cfg and returns the connector for its Type.
func New(cfg Config) (Connector, error) {
	if !cfg.Type.Valid() {
		return nil, fmt.Errorf("registry config: Type %q is not one of %v", cfg.Type, Types())
	}
	for _, glob := range cfg.Repositories {
		if _, err := path.Match(glob, ""); err != nil {
			return nil, fmt.Errorf("registry config: Repositories: bad pattern %q: %w", glob, err)
		}
	}
	host, err := normalizeHost(cfg)
	if err != nil {
		return nil, err
	}
	b := base{cfg: cfg, host: host, http: newHTTPClient(cfg.Transport, cfg.Credentials.secrets())}
	switch cfg.Type {
	case TypeOCI:
		return newOCI(b)
	case TypeDockerHub:
		return newDockerHub(b)
	case TypeECR:
		return newECR(b)
	case TypeACR:
		return newACR(b)
	case TypeGAR:
		return newGAR(b)
	case TypeArtifactory:
		return newArtifactory(b)
	default:
		return newHarbor(b)
	}
}

// HostOf returns the registry host images of a registry of type typ at url
// are named under, as go-containerregistry names it ("index.docker.io" for
// Docker Hub), so a running image's reference can be matched to the
// registered registry that serves it.
func HostOf(typ Type, url string) (string, error) {
	h, err := normalizeHost(Config{Type: typ, URL: url})
	if err != nil {
		return "", err
	}
	reg, err := name.NewRegistry(h)
	if err != nil {
		return "", fmt.Errorf("registry host %q: %w", h, err)
	}
	return reg.RegistryStr(), nil
}

// normalizeHost returns the registry host of cfg.URL without scheme or
// trailing slash, rejecting paths (those belong in Namespace).
func normalizeHost(cfg Config) (string, error) {
	u := strings.TrimSuffix(strings.TrimPrefix(cfg.URL, "https://"), "/")
	if u == "" {
		if cfg.Type == TypeDockerHub {
			return name.DefaultRegistry, nil
		}
		return "", fmt.Errorf("registry config: URL is required for type %s", cfg.Type)
	}
	if strings.Contains(u, "://") {
		return "", fmt.Errorf("registry config: URL %q: only an https:// scheme may be given; set Insecure for plain HTTP", cfg.URL)
	}
	if strings.Contains(u, "/") {
		return "", fmt.Errorf("registry config: URL %q must be a host[:port]; put the path in Namespace", cfg.URL)
	}
	if _, err := name.NewRegistry(u); err != nil {
		return "", fmt.Errorf("registry config: URL %q: %w", cfg.URL, err)
	}
	return u, nil
}

// base is what every connector shares.
type base struct {
	cfg  Config
	host string
	http *httpClient
}

func (b *base) Type() Type   { return b.cfg.Type }
func (b *base) Host() string { return b.host }

// scheme is how the registry host is reached.
func (b *base) scheme() string {
	if b.cfg.Insecure {
		return "http"
	}
	return "https"
}

// registry is the host as go-containerregistry names it.
func (b *base) registry() name.Registry {
	var opts []name.Option
	if b.cfg.Insecure {
		opts = append(opts, name.Insecure)
	}
	reg, _ := name.NewRegistry(b.host, opts...) // validated by New
	return reg
}

// selected keeps the repositories matching Config.Repositories.
func (b *base) selected(repos []string) []string {
	if len(b.cfg.Repositories) == 0 {
		return repos
	}
	var out []string
	for _, r := range repos {
		for _, glob := range b.cfg.Repositories {
			if ok, _ := path.Match(glob, r); ok {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// listErr wraps an error of listing repositories.
func (b *base) listErr(err error) error {
	return fmt.Errorf("listing repositories of %s: %w", b.host, err)
}

// tagsErr wraps an error of listing tags.
func (b *base) tagsErr(repo string, err error) error {
	return fmt.Errorf("listing tags of %s/%s: %w", b.host, repo, err)
}

// require returns an error naming the first empty field of fields, given
// as name/value pairs.
func require(t Type, fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return fmt.Errorf("registry config: %s is required for type %s", fields[i], t)
		}
	}
	return nil
}

// client is the connector's HTTP client; tests adjust its limits.
func (b *base) client() *httpClient { return b.http }
