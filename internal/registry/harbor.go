package registry

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// harbor lists through Harbor's v2.0 API
// (https://goharbor.io/docs/main/build-customize-contribute/configure-swagger/,
// swagger at /devcenter-api-2.0): GET /api/v2.0/projects,
// .../projects/{p}/repositories and .../repositories/{r}/artifacts, each
// paginated by page and page_size with the total in X-Total-Count. Basic
// auth (users or robot accounts "robot$name") for the API and pulls.
type harbor struct {
	base
	api    string
	header http.Header
	auth   authn.Authenticator
}

func newHarbor(b base) (*harbor, error) {
	c := b.cfg.Credentials
	h := &harbor{base: b, api: b.scheme() + "://" + b.host + "/api/v2.0", auth: staticAuth(c)}
	if (c.Username == "") != (c.Password == "") {
		return nil, errors.New("registry config: harbor needs both Credentials.Username and Password, or neither (public projects only)")
	}
	if c.Username != "" {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(c.Username, c.Password)
		h.header = http.Header{"Authorization": req.Header.Values("Authorization")}
	}
	if b.cfg.Namespace != "" && checkRepo(b.cfg.Namespace) != nil || strings.Contains(b.cfg.Namespace, "/") {
		return nil, errors.New("registry config: Namespace is not a Harbor project name")
	}
	return h, nil
}

func (h *harbor) Repositories(ctx context.Context) ([]string, error) {
	projects := []string{h.cfg.Namespace}
	if h.cfg.Namespace == "" {
		var err error
		if projects, err = h.names(ctx, "/projects", nil); err != nil {
			return nil, h.listErr(err)
		}
	}
	var repos []string
	for _, p := range projects {
		if checkRepo(p) != nil || strings.Contains(p, "/") {
			continue // not a project name Harbor would give
		}
		names, err := h.names(ctx, "/projects/"+p+"/repositories", nil)
		if err != nil {
			return nil, h.listErr(err)
		}
		if len(repos)+len(names) > h.http.maxItems {
			return nil, h.listErr(ErrLimit)
		}
		repos = append(repos, names...)
	}
	return h.selected(repos), nil
}

// names lists the "name" of every item of a paginated Harbor collection.
func (h *harbor) names(ctx context.Context, path string, query url.Values) ([]string, error) {
	return h.pages(ctx, path, query, func(resp *response) ([]string, error) {
		var items []struct {
			Name string `json:"name"`
		}
		if err := decodeJSON(resp, &items); err != nil {
			return nil, err
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			out = append(out, it.Name)
		}
		return out, nil
	})
}

func (h *harbor) Tags(ctx context.Context, repo string) ([]string, error) {
	project, rest, ok := strings.Cut(repo, "/")
	if err := checkRepo(repo); err != nil || !ok {
		return nil, h.tagsErr(repo, errors.New("not a Harbor repository (project/name)"))
	}
	// Harbor takes a repository name with slashes encoded twice.
	path := "/projects/" + project + "/repositories/" + url.PathEscape(url.PathEscape(rest)) + "/artifacts"
	tags, err := h.pages(ctx, path, url.Values{"with_tag": {"true"}}, func(resp *response) ([]string, error) {
		var artifacts []struct {
			Tags []struct {
				Name string `json:"name"`
			} `json:"tags"`
		}
		if err := decodeJSON(resp, &artifacts); err != nil {
			return nil, err
		}
		var out []string
		for _, a := range artifacts {
			for _, t := range a.Tags {
				out = append(out, t.Name)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, h.tagsErr(repo, err)
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

// pages follows Harbor's page numbers until a short page or the
// X-Total-Count is reached.
func (h *harbor) pages(ctx context.Context, path string, query url.Values, decode func(*response) ([]string, error)) ([]string, error) {
	size := min(h.http.pageSize, 100)
	pageURL := func(page int) string {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.Itoa(size))
		return h.api + path + "?" + q.Encode()
	}
	page := 1
	return h.http.paginate(ctx, pageURL(1), func(ctx context.Context, u *url.URL) ([]string, string, error) {
		resp, err := h.http.do(ctx, request{url: u.String(), header: h.header})
		if err != nil {
			return nil, "", err
		}
		items, err := decode(resp)
		if err != nil {
			return nil, "", err
		}
		total, err := strconv.Atoi(resp.header.Get("X-Total-Count"))
		if len(items) < size || err == nil && page*size >= total {
			return items, "", nil
		}
		page++
		return items, pageURL(page), nil
	})
}

func (h *harbor) Authenticator(context.Context) (authn.Authenticator, error) {
	return h.auth, nil
}
