package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeArtifactory answers JFrog Artifactory's REST API as documented at
// https://jfrog.com/help/r/jfrog-rest-apis/get-repositories and
// .../docker-registry-api: GET /artifactory/api/repositories (filtered by
// packageType) lists {"key","type","packageType"}; each Docker repository
// serves the distribution API under /artifactory/api/docker/{key}/v2/,
// paginated with n, last and Link. It takes "Bearer <access token>" or
// basic auth.
type fakeArtifactory struct {
	token, user, password string
	images                map[string]map[string][]string // key -> image -> tags
}

func (a *fakeArtifactory) ok(r *http.Request) bool {
	if r.Header.Get("Authorization") == "Bearer "+a.token {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == a.user && p == a.password
}

func (a *fakeArtifactory) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !a.ok(r) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"status":401,"message":"Bad credentials"}]}`)
		return
	}
	if r.URL.Path == "/artifactory/api/repositories" {
		if r.URL.Query().Get("packageType") != "docker" {
			http.Error(w, `{"errors":[{"status":400,"message":"want packageType"}]}`, http.StatusBadRequest)
			return
		}
		// Like older servers, answer other package types too.
		_ = json.NewEncoder(w).Encode([]map[string]string{
			{"key": "docker-local", "type": "LOCAL", "packageType": "Docker"},
			{"key": "docker-remote", "type": "REMOTE", "packageType": "Docker"},
			{"key": "npm-local", "type": "LOCAL", "packageType": "Npm"},
			{"key": "../evil", "type": "LOCAL", "packageType": "Docker"},
		})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/artifactory/api/docker/")
	key, rest, _ := strings.Cut(rest, "/v2/")
	images, known := a.images[key]
	if !ok || !known {
		http.NotFound(w, r)
		return
	}
	var items []string
	var field string
	if rest == "_catalog" {
		items, field = sortedCopy(mapKeys(images)), "repositories"
	} else if image, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		items, field = images[image], "tags"
	} else {
		http.NotFound(w, r)
		return
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	last := r.URL.Query().Get("last")
	start := 0
	if last != "" {
		start = slices.Index(items, last) + 1
	}
	end := min(start+n, len(items))
	if end < len(items) {
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {items[end-1]}}
		w.Header().Set("Link", `<`+r.URL.Path+`?`+q.Encode()+`>; rel="next"`)
	}
	_ = json.NewEncoder(w).Encode(map[string][]string{field: items[start:end]})
}

func TestArtifactory(t *testing.T) {
	fake := &fakeArtifactory{token: "jfrog-access-token", user: "scanner", password: "pw", images: map[string]map[string][]string{
		"docker-local":  {"app": {"v1", "v2", "v3"}, "lib/base": {"1"}, "tool": {"x"}},
		"docker-remote": {"library/nginx": {"latest"}},
	}}
	// The registry itself (repository path access method) takes the
	// access token as a bearer token.
	front, upstream := frontRegistry(t, fake.ok, func(host string) string {
		return `Bearer realm="https://` + host + `/artifactory/api/docker/docker-local/v2/token",service="` + host + `"`
	}, http.HandlerFunc(fake.serveHTTP))
	img := pushRandom(t, upstream, "docker-local/app:v1")

	cfg := Config{
		Type: TypeArtifactory, URL: strings.TrimPrefix(front.URL, "https://"),
		Credentials: Credentials{Token: "jfrog-access-token"},
		Transport:   front.Client().Transport,
	}
	c := mustNew(t, cfg)
	c.(interface{ client() *httpClient }).client().pageSize = 2
	ctx := withTimeout(t, time.Minute)
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	want := []string{"docker-local/app", "docker-local/lib/base", "docker-local/tool", "docker-remote/library/nginx"}
	if diff := cmp.Diff(want, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "docker-local/app")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"v1", "v2", "v3"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "docker-local/app:v1", front.Client().Transport), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}

	one := mustNew(t, Config{Type: TypeArtifactory, URL: cfg.URL, Namespace: "docker-remote", Credentials: Credentials{Username: "scanner", Password: "pw"}, Transport: cfg.Transport})
	repos, err = one.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories of docker-remote with basic auth: %v", err)
	}
	if diff := cmp.Diff([]string{"docker-remote/library/nginx"}, repos); diff != "" {
		t.Errorf("Repositories of docker-remote (-want +got):\n%s", diff)
	}

	cfg.Credentials.Token = "expired"
	if _, err := mustNew(t, cfg).Repositories(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a bad token: %v, want ErrUnauthorized", err)
	}
}
