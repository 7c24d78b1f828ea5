package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// oci is a registry reached only through the distribution API, with
// go-containerregistry's transport doing basic or bearer-token auth.
type oci struct {
	base
	auth authn.Authenticator
}

func newOCI(b base) (*oci, error) {
	return &oci{base: b, auth: staticAuth(b.cfg.Credentials)}, nil
}

// staticAuth is Username/Password as basic credentials; a Token is the
// password when a Username is given, else a registry bearer token; no
// credentials is anonymous.
func staticAuth(c Credentials) authn.Authenticator {
	switch {
	case c.Username != "" && c.Password != "":
		return &authn.Basic{Username: c.Username, Password: c.Password}
	case c.Username != "" && c.Token != "":
		return &authn.Basic{Username: c.Username, Password: c.Token}
	case c.Token != "":
		return authn.FromConfig(authn.AuthConfig{RegistryToken: c.Token})
	default:
		return authn.Anonymous
	}
}

func (o *oci) Repositories(ctx context.Context) ([]string, error) {
	repos, err := o.distribution(o.auth).catalog(ctx)
	if err != nil {
		return nil, o.listErr(err)
	}
	return o.selected(repos), nil
}

func (o *oci) Tags(ctx context.Context, repo string) ([]string, error) {
	tags, err := o.distribution(o.auth).tags(ctx, repo)
	if err != nil {
		return nil, o.tagsErr(repo, err)
	}
	return tags, nil
}

func (o *oci) Authenticator(context.Context) (authn.Authenticator, error) {
	return o.auth, nil
}

func (o *oci) distribution(auth authn.Authenticator) *distribution {
	return &distribution{http: o.http, reg: o.registry(), base: o.scheme() + "://" + o.host, auth: auth}
}

// distribution lists a registry through the distribution API: /v2/_catalog
// and /v2/<repo>/tags/list, paginated with n and Link headers.
type distribution struct {
	http *httpClient
	reg  name.Registry
	// base is the URL the /v2/ paths hang off: the registry itself, or a
	// proxy of it (Artifactory's /artifactory/api/docker/<key>).
	base string
	// auth authenticates through go-containerregistry's transport, which
	// answers the registry's basic or bearer challenge; nil sends header
	// as is.
	auth   authn.Authenticator
	header http.Header
}

// catalog lists every repository.
func (d *distribution) catalog(ctx context.Context) ([]string, error) {
	rt, err := d.transport(ctx, "registry:catalog:*")
	if err != nil {
		return nil, err
	}
	start := d.base + "/v2/_catalog?n=" + strconv.Itoa(d.http.pageSize)
	return sorted(d.http.paginate(ctx, start, func(ctx context.Context, u *url.URL) ([]string, string, error) {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		resp, err := d.http.getJSON(ctx, request{url: u.String(), header: d.header, transport: rt}, &page)
		if err != nil {
			return nil, "", err
		}
		return page.Repositories, nextLink(resp.header), nil
	}))
}

// tags lists the tags of repo.
func (d *distribution) tags(ctx context.Context, repo string) ([]string, error) {
	if err := checkRepo(repo); err != nil {
		return nil, err
	}
	rt, err := d.transport(ctx, d.reg.Repo(repo).Scope(transport.PullScope))
	if err != nil {
		return nil, err
	}
	start := d.base + "/v2/" + repo + "/tags/list?n=" + strconv.Itoa(d.http.pageSize)
	return sorted(d.http.paginate(ctx, start, func(ctx context.Context, u *url.URL) ([]string, string, error) {
		var page struct {
			Tags []string `json:"tags"`
		}
		resp, err := d.http.getJSON(ctx, request{url: u.String(), header: d.header, transport: rt}, &page)
		if err != nil {
			return nil, "", err
		}
		return page.Tags, nextLink(resp.header), nil
	}))
}

// sorted sorts and deduplicates a listing: registries differ in order, and
// a page boundary that moves during a listing can repeat an item.
func sorted(items []string, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	slices.Sort(items)
	return slices.Compact(items), nil
}

// transport returns the round tripper for a listing with scope, nil for the
// client's own when d.auth is nil.
func (d *distribution) transport(ctx context.Context, scope string) (http.RoundTripper, error) {
	if d.auth == nil {
		return nil, nil
	}
	rt, err := transport.NewWithContext(ctx, d.reg, d.auth, d.http.transport, []string{scope})
	if err != nil {
		return nil, d.http.transportErr(err)
	}
	return rt, nil
}

// transportErr turns go-containerregistry's errors into this package's:
// a refused token exchange becomes a StatusError (so ErrUnauthorized).
func (c *httpClient) transportErr(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return &StatusError{Code: terr.StatusCode, Detail: c.scrub(transportDetail(terr))}
	}
	return c.scrubErr(err)
}

// checkRepo rejects names that are not repository names, so a caller's
// string cannot reach into other API paths ("../", "?").
func checkRepo(repo string) error {
	if len(repo) > 255 || !repoName.MatchString(repo) {
		return fmt.Errorf("invalid repository name %q", truncate(repo, 300))
	}
	return nil
}

// repoName is the distribution spec's repository name grammar.
var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
