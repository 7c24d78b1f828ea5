package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeEntra is Microsoft Entra ID's token endpoint for the client
// credentials grant
// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):
// POST /{tenant}/oauth2/v2.0/token with client_id, client_secret and
// scope returns {"access_token","expires_in"}.
func fakeEntra(t *testing.T, tenant, clientID, secret string) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/"+tenant+"/oauth2/v2.0/token" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		f := formOf(r)
		if f.Get("grant_type") != "client_credentials" || f.Get("scope") != "https://management.azure.com/.default" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_request"}`)
			return
		}
		if f.Get("client_id") != clientID || f.Get("client_secret") != secret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"entra-access-token"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeACR is an Azure Container Registry's token service on the registry
// host, as documented in https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md:
// POST /oauth2/exchange (grant_type=access_token, service, tenant,
// access_token) returns a refresh_token; /oauth2/token trades a refresh
// token (POST grant_type=refresh_token, or GET with basic auth as the
// null user) or admin credentials (GET with basic auth) for an
// access_token for the asked scope. /v2/ takes only those access tokens.
type fakeACR struct {
	tenant                  string
	adminUser, adminPass    string
	mu                      sync.Mutex
	grants                  []string // grant types seen at /oauth2/token
	refreshToken, scopeSeen string
}

func (a *fakeACR) api(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.URL.Path {
	case "/oauth2/exchange":
		f := formOf(r)
		if r.Method != http.MethodPost || f.Get("grant_type") != "access_token" || f.Get("service") != r.Host || f.Get("tenant") != a.tenant {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if f.Get("access_token") != "entra-access-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		payload := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"exp":%d}`, time.Now().Add(3*time.Hour).Unix()))
		a.refreshToken = "eyJhbGciOiJSUzI1NiJ9." + payload + ".c2ln"
		_ = json.NewEncoder(w).Encode(map[string]string{"refresh_token": a.refreshToken})
	case "/oauth2/token":
		var ok bool
		var scope string
		if r.Method == http.MethodPost {
			f := formOf(r)
			a.grants = append(a.grants, f.Get("grant_type"))
			ok = f.Get("grant_type") == "refresh_token" && f.Get("refresh_token") == a.refreshToken && a.refreshToken != "" && f.Get("service") == r.Host
			scope = f.Get("scope")
		} else {
			a.grants = append(a.grants, "basic")
			user, pw, _ := r.BasicAuth()
			ok = user == acrNullUser && pw == a.refreshToken && a.refreshToken != "" || user == a.adminUser && pw == a.adminPass && a.adminUser != ""
			scope = r.URL.Query().Get("scope")
		}
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		a.scopeSeen = scope
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": "acr-access:" + scope})
	default:
		http.NotFound(w, r)
	}
}

func (a *fakeACR) authorized(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "Bearer acr-access:")
}

func acrChallenge(host string) string {
	return `Bearer realm="https://` + host + `/oauth2/token",service="` + host + `"`
}

func TestACRServicePrincipal(t *testing.T) {
	entra := fakeEntra(t, "tenant-1", "client-1", "client-secret")
	fake := &fakeACR{tenant: "tenant-1"}
	front, upstream := frontRegistry(t, fake.authorized, acrChallenge, http.HandlerFunc(fake.api))
	img := pushRandom(t, upstream, "prod/api:v1")
	pushRandom(t, upstream, "prod/api:v2")
	pushRandom(t, upstream, "dev/api:v1")
	cfg := Config{
		Type: TypeACR, URL: strings.TrimPrefix(front.URL, "https://"), Namespace: "prod",
		Credentials: Credentials{AzureTenantID: "tenant-1", AzureClientID: "client-1", AzureClientSecret: "client-secret"},
		Endpoints:   Endpoints{AzureLogin: entra.URL},
		Transport:   front.Client().Transport,
	}
	c := mustNew(t, cfg)
	ctx := withTimeout(t, time.Minute)
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"prod/api"}, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	if fake.scopeSeen != "registry:catalog:*" {
		t.Errorf("catalog token scope %q, want registry:catalog:*", fake.scopeSeen)
	}
	tags, err := c.Tags(ctx, "prod/api")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"v1", "v2"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if fake.scopeSeen != "repository:prod/api:pull" {
		t.Errorf("tags token scope %q, want repository:prod/api:pull", fake.scopeSeen)
	}
	if got, want := pullDigest(t, c, "prod/api:v1", front.Client().Transport), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
	// Listings use the refresh_token grant; the pull sends the refresh
	// token as the null user's password.
	if diff := cmp.Diff([]string{"refresh_token", "refresh_token", "basic"}, fake.grants); diff != "" {
		t.Errorf("token requests (-want +got):\n%s", diff)
	}

	cfg.Credentials.AzureClientSecret = "wrong"
	if _, err := mustNew(t, cfg).Repositories(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a wrong client secret: %v, want ErrUnauthorized", err)
	}
}

func TestACRAdminUser(t *testing.T) {
	fake := &fakeACR{adminUser: "myregistry", adminPass: "admin-password"}
	front, upstream := frontRegistry(t, fake.authorized, acrChallenge, http.HandlerFunc(fake.api))
	img := pushRandom(t, upstream, "app:v1")
	cfg := Config{
		Type: TypeACR, URL: strings.TrimPrefix(front.URL, "https://"),
		Credentials: Credentials{Username: "myregistry", Password: "admin-password"},
		Transport:   front.Client().Transport,
	}
	c := mustNew(t, cfg)
	repos, err := c.Repositories(withTimeout(t, time.Minute))
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"app"}, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "app:v1", front.Client().Transport), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
	cfg.Credentials.Password = "wrong"
	if _, err := mustNew(t, cfg).Repositories(withTimeout(t, time.Minute)); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a wrong password: %v, want ErrUnauthorized", err)
	}
}
