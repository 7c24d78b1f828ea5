package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// dockerHub lists through the Docker Hub API
// (https://docs.docker.com/reference/api/hub/latest/): a JWT from
// POST /v2/users/login, then GET /v2/namespaces/{ns}/repositories and
// .../repositories/{name}/tags, paginated by the "next" URL of each page.
// Pulls go to the registry with the same username and password or token.
type dockerHub struct {
	base
	api       string
	namespace string
	auth      authn.Authenticator
	jwt       *cachedToken // nil for anonymous listing of public repositories
}

func newDockerHub(b base) (*dockerHub, error) {
	c := b.cfg.Credentials
	h := &dockerHub{base: b, api: "https://hub.docker.com", namespace: b.cfg.Namespace, auth: staticAuth(c)}
	if b.cfg.Endpoints.DockerHubAPI != "" {
		h.api = strings.TrimSuffix(b.cfg.Endpoints.DockerHubAPI, "/")
	}
	if h.namespace == "" {
		h.namespace = c.Username
	}
	if h.namespace == "" {
		return nil, errors.New("registry config: Namespace (or Credentials.Username) is required for type dockerhub")
	}
	if strings.ContainsAny(h.namespace, "/?#%") {
		return nil, fmt.Errorf("registry config: Namespace %q is not a Docker Hub namespace", h.namespace)
	}
	secret := c.Password
	if secret == "" {
		secret = c.Token
	}
	if (c.Username == "") != (secret == "") {
		return nil, errors.New("registry config: dockerhub needs both Credentials.Username and Credentials.Password (or Token), or neither")
	}
	if c.Username != "" {
		h.jwt = newCachedToken(func(ctx context.Context) (string, time.Time, error) {
			return h.login(ctx, c.Username, secret)
		})
	}
	return h, nil
}

// login exchanges the username and password or access token for a JWT.
func (h *dockerHub) login(ctx context.Context, username, secret string) (string, time.Time, error) {
	var out struct {
		Token string `json:"token"`
	}
	body := map[string]string{"username": username, "password": secret}
	if _, err := h.http.getJSON(ctx, request{url: h.api + "/v2/users/login", json: body}, &out); err != nil {
		return "", time.Time{}, fmt.Errorf("logging in to Docker Hub: %w", err)
	}
	if out.Token == "" {
		return "", time.Time{}, fmt.Errorf("logging in to Docker Hub: %w: no token in answer", ErrBadResponse)
	}
	return out.Token, jwtExpiry(out.Token, time.Now().Add(5*time.Minute)), nil
}

func (h *dockerHub) header(ctx context.Context) (http.Header, error) {
	if h.jwt == nil {
		return nil, nil
	}
	token, err := h.jwt.get(ctx)
	if err != nil {
		return nil, err
	}
	return http.Header{"Authorization": {"Bearer " + token}}, nil
}

func (h *dockerHub) Repositories(ctx context.Context) ([]string, error) {
	start := h.api + "/v2/namespaces/" + url.PathEscape(h.namespace) + "/repositories?page_size=" + pageSizeParam(h.http, 100)
	names, err := h.list(ctx, start)
	if err != nil {
		return nil, h.listErr(err)
	}
	repos := make([]string, 0, len(names))
	for _, n := range names {
		repos = append(repos, h.namespace+"/"+n)
	}
	return h.selected(repos), nil
}

func (h *dockerHub) Tags(ctx context.Context, repo string) ([]string, error) {
	ns, name, ok := strings.Cut(repo, "/")
	if err := checkRepo(repo); err != nil || !ok || strings.Contains(name, "/") {
		return nil, h.tagsErr(repo, errors.New("not a Docker Hub repository (namespace/name)"))
	}
	start := h.api + "/v2/namespaces/" + ns + "/repositories/" + name + "/tags?page_size=" + pageSizeParam(h.http, 100)
	tags, err := h.list(ctx, start)
	if err != nil {
		return nil, h.tagsErr(repo, err)
	}
	return tags, nil
}

// list follows a Hub listing, returning the name of each result.
func (h *dockerHub) list(ctx context.Context, start string) ([]string, error) {
	header, err := h.header(ctx)
	if err != nil {
		return nil, err
	}
	return h.http.paginate(ctx, start, func(ctx context.Context, u *url.URL) ([]string, string, error) {
		var page struct {
			Next    *string `json:"next"`
			Results []struct {
				Name string `json:"name"`
			} `json:"results"`
		}
		if _, err := h.http.getJSON(ctx, request{url: u.String(), header: header}, &page); err != nil {
			return nil, "", err
		}
		names := make([]string, 0, len(page.Results))
		for _, r := range page.Results {
			names = append(names, r.Name)
		}
		next := ""
		if page.Next != nil {
			next = *page.Next
		}
		return names, next, nil
	})
}

func (h *dockerHub) Authenticator(context.Context) (authn.Authenticator, error) {
	return h.auth, nil
}

// pageSizeParam is the page size a provider takes at most.
func pageSizeParam(c *httpClient, most int) string {
	return strconv.Itoa(min(c.pageSize, most))
}
