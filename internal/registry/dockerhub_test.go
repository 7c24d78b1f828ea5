package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// fakeDockerHub speaks the Docker Hub API as documented at
// https://docs.docker.com/reference/api/hub/latest/: POST /v2/users/login
// with {"username","password"} returns {"token": JWT}; namespace
// repositories and tags are pages of {"count","next","results"} with
// "next" an absolute URL, at most page_size results each.
type fakeDockerHub struct {
	srv                *httptest.Server
	username, password string
	repos              map[string][]string // repository name -> tags
	logins             int
}

func newFakeDockerHub(t *testing.T, username, password string, repos map[string][]string) *fakeDockerHub {
	h := &fakeDockerHub{username: username, password: password, repos: repos}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/users/login", h.login)
	mux.HandleFunc("GET /v2/namespaces/{ns}/repositories", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for n := range h.repos {
			names = append(names, n)
		}
		h.page(w, r, sortedCopy(names))
	})
	mux.HandleFunc("GET /v2/namespaces/{ns}/repositories/{repo}/tags", func(w http.ResponseWriter, r *http.Request) {
		tags, ok := h.repos[r.PathValue("repo")]
		if !ok {
			http.Error(w, `{"message":"object not found"}`, http.StatusNotFound)
			return
		}
		h.page(w, r, tags)
	})
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeDockerHub) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"detail":"bad request"}`, http.StatusBadRequest)
		return
	}
	if body.Username != h.username || body.Password != h.password {
		w.WriteHeader(http.StatusUnauthorized)
		// A careless server echoing the secret must not leak it into errors.
		fmt.Fprintf(w, `{"detail":"Incorrect authentication credentials %s"}`, body.Password)
		return
	}
	h.logins++
	exp := time.Now().Add(time.Hour).Unix()
	payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":%q,"exp":%d}`, h.username, exp))
	fmt.Fprintf(w, `{"token":"eyJhbGciOiJIUzI1NiJ9.%s.c2ln"}`, payload)
}

// page answers one page of items, requiring the login token when the fake
// has a user (public namespaces are listed anonymously).
func (h *fakeDockerHub) page(w http.ResponseWriter, r *http.Request, items []string) {
	if h.username != "" && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer eyJ") {
		http.Error(w, `{"detail":"authentication required"}`, http.StatusUnauthorized)
		return
	}
	size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
	if size < 1 || size > 100 {
		http.Error(w, `{"message":"invalid page_size"}`, http.StatusBadRequest)
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	start, end := min((page-1)*size, len(items)), min(page*size, len(items))
	out := struct {
		Count   int              `json:"count"`
		Next    *string          `json:"next"`
		Results []map[string]any `json:"results"`
	}{Count: len(items)}
	for _, it := range items[start:end] {
		out.Results = append(out.Results, map[string]any{"name": it})
	}
	if end < len(items) {
		next := fmt.Sprintf("%s%s?page=%d&page_size=%d", h.srv.URL, r.URL.Path, page+1, size)
		out.Next = &next
	}
	_ = json.NewEncoder(w).Encode(out)
}

func TestDockerHub(t *testing.T) {
	// The registry does token auth as registry-1.docker.io does.
	reg := testenv.StartDistributionTokenAuth(t)
	img := pushRandom(t, reg, "acme/web:1.0")
	repos := map[string][]string{"web": {"1.0"}}
	for i := range 7 {
		repos[fmt.Sprintf("svc-%d", i)] = []string{"a", "b", "c", "d", "e"}
	}
	hub := newFakeDockerHub(t, reg.Username, reg.Password, repos)
	cfg := Config{
		Type: TypeDockerHub, URL: reg.Host, Insecure: true, Namespace: "acme",
		Credentials: Credentials{Username: reg.Username, Password: reg.Password},
		Endpoints:   Endpoints{DockerHubAPI: hub.srv.URL},
		Transport:   hub.srv.Client().Transport,
	}
	c := mustNew(t, cfg)
	c.(interface{ client() *httpClient }).client().pageSize = 3
	ctx := withTimeout(t, time.Minute)

	got, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	want := []string{"acme/svc-0", "acme/svc-1", "acme/svc-2", "acme/svc-3", "acme/svc-4", "acme/svc-5", "acme/svc-6", "acme/web"}
	if diff := cmp.Diff(want, sortedCopy(got)); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "acme/svc-3")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if hub.logins != 1 {
		t.Errorf("logged in %d times, want 1 (the JWT is cached)", hub.logins)
	}
	if got, want := pullDigest(t, c, "acme/web:1.0", nil), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}

	cfg.Credentials.Password = "wrong-secret-value"
	_, err = mustNew(t, cfg).Repositories(ctx)
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a wrong password: %v, want ErrUnauthorized", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestDockerHubAnonymousPublicNamespace(t *testing.T) {
	hub := newFakeDockerHub(t, "", "", map[string][]string{"nginx": {"latest"}})
	c := mustNew(t, Config{Type: TypeDockerHub, Namespace: "library", Endpoints: Endpoints{DockerHubAPI: hub.srv.URL}, Transport: hub.srv.Client().Transport})
	if c.Host() != "index.docker.io" {
		t.Errorf("Host() = %q, want index.docker.io", c.Host())
	}
	got, err := c.Repositories(withTimeout(t, time.Minute))
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"library/nginx"}, got); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
}
