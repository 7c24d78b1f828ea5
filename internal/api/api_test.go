package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/notification"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// recordingScheduler stands in for the scheduler, whose own tests run it
// against real registries; here it records what the API asked of it.
type recordingScheduler struct {
	mu      sync.Mutex
	pushes  []notification.Push
	scans   []string
	polls   []int64
	rematch int
	db      *store.DB
	// ingested are the clusters audit batches were posted for.
	ingested []string
}

func (r *recordingScheduler) Notify(ctx context.Context, p []notification.Push) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushes = append(r.pushes, p...)
	return len(p), nil
}

func (r *recordingScheduler) ScanNow(ctx context.Context, registryID int64, ref string) (*store.Scan, error) {
	r.mu.Lock()
	r.scans = append(r.scans, ref)
	r.mu.Unlock()
	j := &store.Scan{Kind: store.ScanPull, Reason: "manual", RegistryID: registryID, Reference: ref}
	if _, err := r.db.Enqueue(ctx, j); err != nil {
		return nil, err
	}
	return r.db.ScanJob(ctx, j.ID)
}

func (r *recordingScheduler) PollNow(ctx context.Context, id int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.polls = append(r.polls, id)
	return nil
}

func (r *recordingScheduler) Rematch(ctx context.Context, reason string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rematch++
	return 0, nil
}

type fixture struct {
	t     *testing.T
	db    *store.DB
	srv   *httptest.Server
	sched *recordingScheduler
	admin string
	api   *Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	sched := &recordingScheduler{db: db}
	reg := prometheus.NewRegistry()
	s, err := New(Options{Store: db, Scheduler: sched, Box: box, Gatherer: reg, Registerer: reg, Version: "test", PostureChecks: testChecks,
		DetectionRules: detect.Builtin(), AuditIngest: func(cluster string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sched.mu.Lock()
				sched.ingested = append(sched.ingested, cluster)
				sched.mu.Unlock()
				w.WriteHeader(http.StatusOK)
			})
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, db: db, srv: srv, sched: sched, api: s}
	f.admin = f.token("root", store.RoleAdmin)
	return f
}

// token stores a token with a role and returns it.
func (f *fixture) token(name, role string) string {
	tok, hash := NewToken()
	if err := f.db.CreateToken(context.Background(), &store.Token{Name: name, Role: role, Hash: hash, Prefix: tok[:10]}); err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fixture) call(token, method, path string, body any) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	viewer := f.token("viewer", store.RoleViewer)
	analyst := f.token("analyst", store.RoleAnalyst)
	revoked := f.token("gone", store.RoleAdmin)
	gone, _ := f.db.TokenByHash(context.Background(), HashToken(revoked))
	f.db.RevokeToken(context.Background(), gone.ID)
	expiredTok, hash := NewToken()
	f.db.CreateToken(context.Background(), &store.Token{Name: "old", Role: store.RoleAdmin, Hash: hash, ExpiresAt: time.Now().Add(-time.Minute)})

	reg := map[string]any{"name": "r", "type": "oci", "url": "localhost:5000"}
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"no token", "", "GET", "/api/v1/images", nil, 401},
		{"not a bulwark token", "abc", "GET", "/api/v1/images", nil, 401},
		{"unknown token", TokenPrefix + strings.Repeat("0", 64), "GET", "/api/v1/images", nil, 401},
		{"revoked", revoked, "GET", "/api/v1/images", nil, 401},
		{"expired", expiredTok, "GET", "/api/v1/images", nil, 401},
		{"viewer reads", viewer, "GET", "/api/v1/images", nil, 200},
		{"viewer may not add registries", viewer, "POST", "/api/v1/registries", reg, 403},
		{"analyst may not add registries", analyst, "POST", "/api/v1/registries", reg, 403},
		{"analyst queues scans", analyst, "POST", "/api/v1/scans", map[string]string{"reference": "localhost:5000/a:1"}, 202},
		{"viewer may not read tokens", viewer, "GET", "/api/v1/tokens", nil, 403},
		{"metrics need a token", "", "GET", "/metrics", nil, 401},
		{"metrics", viewer, "GET", "/metrics", nil, 200},
		{"openapi needs a token", "", "GET", "/api/v1/openapi.json", nil, 401},
		{"healthz is open", "", "GET", "/healthz", nil, 200},
		{"readyz is open", "", "GET", "/readyz", nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(tc.token, tc.method, tc.path, tc.body)
			if code != tc.want {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
		})
	}
}

func TestRegistryCredentialsAreNeverReturned(t *testing.T) {
	f := newFixture(t)
	const secret = "s3cr3t-password-value"
	code, body := f.call(f.admin, "POST", "/api/v1/registries", map[string]any{
		"name": "hub", "type": "oci", "url": "localhost:5000", "insecure": true, "pollInterval": "5m",
		"credentials": map[string]string{"username": "bob", "password": secret}})
	if code != 201 {
		t.Fatalf("create = %d %s", code, body)
	}
	if bytes.Contains(body, []byte(secret)) {
		t.Fatal("create response contains the password")
	}
	var created registryView
	json.Unmarshal(body, &created)
	if !created.Credentials.Set || created.Credentials.Username != "bob" || created.PollInterval != "5m0s" {
		t.Errorf("created = %+v", created)
	}
	row, err := f.db.Registry(context.Background(), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(row.Credentials, []byte(secret)) || len(row.Credentials) == 0 {
		t.Fatal("the store holds the password in the clear (or nothing)")
	}
	// An update without credentials keeps them; renaming re-seals them.
	code, body = f.call(f.admin, "PUT", fmt.Sprintf("/api/v1/registries/%d", created.ID), map[string]any{"name": "hub2", "type": "oci", "url": "localhost:5001", "insecure": true})
	if code != 200 || bytes.Contains(body, []byte(secret)) {
		t.Fatalf("update = %d %s", code, body)
	}
	var updated registryView
	json.Unmarshal(body, &updated)
	if !updated.Credentials.Set || updated.Credentials.Username != "bob" || updated.Name != "hub2" {
		t.Errorf("updated = %+v", updated)
	}
	for _, path := range []string{"/api/v1/registries", fmt.Sprintf("/api/v1/registries/%d", created.ID), "/api/v1/audit"} {
		if _, body := f.call(f.admin, "GET", path, nil); bytes.Contains(body, []byte(secret)) {
			t.Errorf("GET %s returns the password", path)
		}
	}
	code, _ = f.call(f.admin, "POST", "/api/v1/registries", map[string]any{"name": "hub2", "type": "oci", "url": "x:1"})
	if code != 409 {
		t.Errorf("duplicate name = %d, want 409", code)
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"unknown field", "POST", "/api/v1/registries", `{"name":"a","type":"oci","url":"h:1","bogus":1}`, 400},
		{"trailing data", "POST", "/api/v1/registries", `{"name":"a","type":"oci","url":"h:1"} {}`, 400},
		{"not JSON", "POST", "/api/v1/registries", `<xml/>`, 400},
		{"huge body", "POST", "/api/v1/registries", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 400},
		{"unknown type", "POST", "/api/v1/registries", map[string]any{"name": "a", "type": "ftp", "url": "h:1"}, 400},
		{"no URL", "POST", "/api/v1/registries", map[string]any{"name": "a", "type": "oci"}, 400},
		{"poll too often", "POST", "/api/v1/registries", map[string]any{"name": "a", "type": "oci", "url": "h:1", "pollInterval": "1s"}, 400},
		{"bad id", "GET", "/api/v1/registries/abc", nil, 400},
		{"negative id", "GET", "/api/v1/images/-1", nil, 400},
		{"missing image", "GET", "/api/v1/images/12345", nil, 404},
		{"bad severity", "GET", "/api/v1/findings?severity=SEVERE", nil, 400},
		{"bad sort", "GET", "/api/v1/findings?sort=rank", nil, 400},
		{"bad state", "GET", "/api/v1/findings?state=maybe", nil, 400},
		{"bad limit", "GET", "/api/v1/findings?limit=100000", nil, 400},
		{"bad page token", "GET", "/api/v1/findings?pageToken=zzz", nil, 400},
		{"bad fixable", "GET", "/api/v1/findings?fixable=perhaps", nil, 400},
		{"unknown registry", "GET", "/api/v1/findings?registry=nope", nil, 404},
		{"bad role", "POST", "/api/v1/tokens", map[string]string{"name": "x", "role": "root"}, 400},
		{"empty reference", "POST", "/api/v1/scans", map[string]string{"reference": ""}, 400},
		{"wrong method", "PATCH", "/api/v1/registries", nil, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(f.admin, tc.method, tc.path, tc.body)
			if code != tc.want {
				t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
			if code >= 400 && code != 405 {
				var p problem
				if err := json.Unmarshal(body, &p); err != nil || p.Error == "" {
					t.Errorf("error body %s is not a problem document", body)
				}
			}
		})
	}
}

func TestMutationsAreAudited(t *testing.T) {
	f := newFixture(t)
	f.call(f.admin, "POST", "/api/v1/registries", map[string]any{"name": "r1", "type": "oci", "url": "localhost:5000"})
	f.call(f.admin, "POST", "/api/v1/registries", map[string]any{"name": "r1", "type": "oci", "url": "localhost:5000"}) // 409, audited too
	code, body := f.call(f.admin, "POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "viewer"})
	if code != 201 {
		t.Fatalf("token create = %d %s", code, body)
	}
	var tok tokenView
	json.Unmarshal(body, &tok)
	if !strings.HasPrefix(tok.Token, TokenPrefix) {
		t.Fatalf("new token = %q", tok.Token)
	}
	if code, _ := f.call(tok.Token, "GET", "/api/v1/images", nil); code != 200 {
		t.Errorf("new token cannot read: %d", code)
	}
	f.call(f.admin, "DELETE", fmt.Sprintf("/api/v1/tokens/%d", tok.ID), nil)
	if code, _ := f.call(tok.Token, "GET", "/api/v1/images", nil); code != 401 {
		t.Errorf("revoked token reads: %d", code)
	}
	_, body = f.call(f.admin, "GET", "/api/v1/audit", nil)
	var log listPage[auditView]
	json.Unmarshal(body, &log)
	type entry struct {
		Actor, Action, Target string
		Status                int
	}
	var got []entry
	for _, e := range log.Items {
		got = append(got, entry{e.Actor, e.Action, e.Target, e.Status})
	}
	want := []entry{
		{"root", "token.revoke", fmt.Sprint(tok.ID), 204},
		{"root", "token.create", "ci", 201},
		{"root", "registry.create", "r1", 409},
		{"root", "registry.create", "r1", 201},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
	if bytes.Contains(body, []byte(tok.Token)) {
		t.Error("the audit log holds a token value")
	}
}

func TestFindingsThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id, err := f.db.SeeImage(ctx, "sha256:"+strings.Repeat("a", 64), store.ImageRef{Host: "localhost:5000", Repository: "app", Tag: "v1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var fs []model.Finding
	sevs := []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityLow}
	for i := 0; i < 30; i++ {
		fixed := ""
		if i%2 == 0 {
			fixed = "2.0"
		}
		fs = append(fs, model.Finding{VulnerabilityID: fmt.Sprintf("CVE-2026-%04d", i), Severity: sevs[i%3], FixedVersion: fixed,
			Package: model.Package{Name: fmt.Sprintf("p%d", i%4), Version: "1.0"}})
	}
	if _, err := f.db.SaveResult(ctx, id, store.Result{Packages: []model.Package{{Name: "p0", Version: "1.0"}}, Findings: fs, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var all []findingView
	path := "/api/v1/findings?limit=7&severity=CRITICAL,HIGH&fixable=true"
	for i := 0; i < 10; i++ {
		code, body := f.call(f.admin, "GET", path, nil)
		if code != 200 {
			t.Fatalf("GET %s = %d %s", path, code, body)
		}
		var p listPage[findingView]
		json.Unmarshal(body, &p)
		all = append(all, p.Items...)
		if p.NextPageToken == "" {
			break
		}
		path = "/api/v1/findings?limit=7&severity=CRITICAL,HIGH&fixable=true&pageToken=" + p.NextPageToken
	}
	if len(all) != 10 {
		t.Errorf("%d critical/high fixable findings, want 10", len(all))
	}
	for _, x := range all {
		if !x.Fixable || (x.Severity != "CRITICAL" && x.Severity != "HIGH") || x.ImageDigest == "" {
			t.Errorf("finding %+v does not match the filter", x)
		}
	}
	code, body := f.call(f.admin, "GET", "/api/v1/images?registry=&repository=app&severity=HIGH", nil)
	var imgs listPage[imageView]
	json.Unmarshal(body, &imgs)
	if code != 200 || len(imgs.Items) != 1 || imgs.Items[0].Summary.Critical != 10 || imgs.Items[0].Refs[0].Tag != "v1" {
		t.Errorf("images = %d %s", code, body)
	}
	code, body = f.call(f.admin, "GET", fmt.Sprintf("/api/v1/images/%d/packages", id), nil)
	if code != 200 || !bytes.Contains(body, []byte(`"p0"`)) {
		t.Errorf("packages = %d %s", code, body)
	}
}

func TestNotificationsReachTheScheduler(t *testing.T) {
	f := newFixture(t)
	body := `{"events":[{"id":"e1","timestamp":"2026-11-25T10:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"digest":"sha256:` + strings.Repeat("b", 64) + `","repository":"team/app","url":"http://localhost:5000/v2/team/app/manifests/sha256:` + strings.Repeat("b", 64) + `","tag":"v2"},
		"request":{"host":"localhost:5000","method":"PUT"}}]}`
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/notifications/registry", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token("registry-hook", store.RoleAnalyst))
	req.Header.Set("Content-Type", notification.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("notification = %d", resp.StatusCode)
	}
	if len(f.sched.pushes) != 1 || f.sched.pushes[0].Repository != "team/app" || f.sched.pushes[0].Tag != "v2" {
		t.Errorf("scheduler got %+v", f.sched.pushes)
	}
	code, _ := f.call(f.admin, "POST", "/api/v1/notifications/registry", `{"events":[]}`)
	if code != 202 {
		t.Errorf("empty envelope as application/json = %d", code)
	}
}

func TestMetricsExposeHTTPLatency(t *testing.T) {
	f := newFixture(t)
	f.call(f.admin, "GET", "/api/v1/images", nil)
	_, body := f.call(f.admin, "GET", "/metrics", nil)
	if !bytes.Contains(body, []byte(`bulwark_http_request_duration_seconds_bucket{code="200",method="GET",route="/api/v1/images"`)) {
		t.Errorf("metrics lack the latency histogram:\n%s", body)
	}
}

// TestOpenAPIMatchesRoutes checks that every route is documented, every
// documented operation exists, and each answers something other than 404
// or 405 when called.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t)
	code, body := f.call(f.admin, "GET", "/api/v1/openapi.json", nil)
	if code != 200 {
		t.Fatalf("openapi.json = %d", code)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	routes := []string{"GET /metrics"}
	for _, rt := range f.api.routes() {
		routes = append(routes, rt.method+" "+rt.pattern)
	}
	sort.Strings(documented)
	sort.Strings(routes)
	if diff := cmp.Diff(routes, documented); diff != "" {
		t.Errorf("routes (-served +documented):\n%s", diff)
	}
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", "1")
		var body any
		if method == "POST" || method == "PUT" {
			body = "{}"
		}
		code, _ := f.call(f.admin, method, path, body)
		if code == 405 || (code == 404 && !strings.Contains(op, "{id}")) {
			t.Errorf("%s answered %d", op, code)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(`{"name":"a","type":"oci","url":"h:1"}`)
	f.Add(`{"credentials":{"password":1}}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		var req registryRequest
		decode(httptest.NewRecorder(), r, &req)
	})
}
