package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeHarbor answers Harbor's v2.0 API (swagger:
// https://github.com/goharbor/harbor/blob/main/api/v2.0/swagger.yaml):
// /api/v2.0/projects, /projects/{p}/repositories and
// /projects/{p}/repositories/{r}/artifacts, paginated by page and
// page_size with X-Total-Count, {r} with slashes encoded twice; basic auth.
// Its registry sends clients to /service/token, which takes the same
// basic credentials, as Harbor's does.
type fakeHarbor struct {
	user, password string
	projects       map[string]map[string][]string // project -> repository (with project) -> tags
	endless        bool                           // every page full, forever
}

func (h *fakeHarbor) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && u == h.user && p == h.password
}

func (h *fakeHarbor) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !h.authorized(r) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}`)
		return
	}
	if r.URL.Path == "/service/token" {
		fmt.Fprint(w, `{"token":"harbor-registry-token","expires_in":1800}`)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v2.0/"), "/")
	var items []any
	switch {
	case len(parts) == 1 && parts[0] == "projects":
		for _, p := range sortedCopy(mapKeys(h.projects)) {
			items = append(items, map[string]any{"name": p, "project_id": len(items) + 1})
		}
	case len(parts) == 3 && parts[2] == "repositories":
		for _, repo := range sortedCopy(mapKeys(h.projects[parts[1]])) {
			items = append(items, map[string]any{"name": repo})
		}
	case len(parts) == 5 && parts[4] == "artifacts":
		if r.URL.Query().Get("with_tag") != "true" {
			http.Error(w, "want with_tag", http.StatusBadRequest)
			return
		}
		// {r} arrives encoded twice: one decoding leaves %2F.
		name := strings.ReplaceAll(strings.ReplaceAll(parts[3], "%252F", "/"), "%2F", "<unencoded>")
		tags, ok := h.projects[parts[1]][parts[1]+"/"+name]
		if !ok {
			http.Error(w, `{"errors":[{"code":"NOT_FOUND"}]}`, http.StatusNotFound)
			return
		}
		// One artifact per two tags, to check they are all collected.
		for i := 0; i < len(tags); i += 2 {
			var ts []map[string]string
			for _, t := range tags[i:min(i+2, len(tags))] {
				ts = append(ts, map[string]string{"name": t})
			}
			items = append(items, map[string]any{"digest": "sha256:" + strings.Repeat(strconv.Itoa(i%10), 64), "tags": ts})
		}
	default:
		http.NotFound(w, r)
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	if page < 1 || size < 1 || size > 100 {
		http.Error(w, "bad paging", http.StatusBadRequest)
		return
	}
	if h.endless {
		items = make([]any, size)
		for i := range items {
			items[i] = map[string]any{"name": fmt.Sprintf("p%d-%d", page, i)}
		}
		_ = json.NewEncoder(w).Encode(items)
		return
	}
	w.Header().Set("X-Total-Count", strconv.Itoa(len(items)))
	start, end := min((page-1)*size, len(items)), min(page*size, len(items))
	_ = json.NewEncoder(w).Encode(items[start:end])
}

func TestHarbor(t *testing.T) {
	fake := &fakeHarbor{user: "robot$scanner", password: "robot-secret", projects: map[string]map[string][]string{
		"library": {"library/app": {"1.0", "1.1", "2.0"}, "library/team/svc": {"a", "b", "c", "d", "e"}},
		"infra":   {"infra/db": {"15"}},
	}}
	front, upstream := frontRegistry(t, func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer harbor-registry-token"
	}, func(host string) string {
		return `Bearer realm="https://` + host + `/service/token",service="harbor-registry"`
	}, http.HandlerFunc(fake.serveHTTP))
	img := pushRandom(t, upstream, "library/team/svc:a")

	cfg := Config{
		Type: TypeHarbor, URL: strings.TrimPrefix(front.URL, "https://"),
		Credentials: Credentials{Username: "robot$scanner", Password: "robot-secret"},
		Transport:   front.Client().Transport,
	}
	c := mustNew(t, cfg)
	c.(interface{ client() *httpClient }).client().pageSize = 1
	ctx := withTimeout(t, time.Minute)
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"infra/db", "library/app", "library/team/svc"}, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "library/team/svc")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "library/team/svc:a", front.Client().Transport), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}

	project := cfg
	project.Namespace = "infra"
	repos, err = mustNew(t, project).Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories of project infra: %v", err)
	}
	if diff := cmp.Diff([]string{"infra/db"}, repos); diff != "" {
		t.Errorf("Repositories of project infra (-want +got):\n%s", diff)
	}

	cfg.Credentials.Password = "wrong"
	if _, err := mustNew(t, cfg).Repositories(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a wrong password: %v, want ErrUnauthorized", err)
	}
}

func TestHarborEndlessPages(t *testing.T) {
	fake := &fakeHarbor{user: "u", password: "p", endless: true}
	front, _ := frontRegistry(t, func(*http.Request) bool { return false }, func(string) string { return "Basic" }, http.HandlerFunc(fake.serveHTTP))
	c := mustNew(t, Config{Type: TypeHarbor, URL: strings.TrimPrefix(front.URL, "https://"), Credentials: Credentials{Username: "u", Password: "p"}, Transport: front.Client().Transport})
	fastLimits(t, c).maxPages = 20
	if _, err := c.Repositories(withTimeout(t, 30*time.Second)); !errors.Is(err, ErrLimit) {
		t.Errorf("Repositories: %v, want ErrLimit", err)
	}
}
