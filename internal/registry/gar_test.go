package registry

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeGoogleToken is Google's OAuth 2.0 token endpoint for service
// accounts (https://developers.google.com/identity/protocols/oauth2/service-account#httprest):
// POST with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and an
// RS256-signed assertion whose iss is the account, aud the endpoint and
// scope the asked one, valid at most an hour; it returns
// {"access_token","expires_in","token_type"}.
type fakeGoogleToken struct {
	t     *testing.T
	srv   *httptest.Server
	key   *rsa.PublicKey
	email string
	calls atomic.Int64
}

func newFakeGoogleToken(t *testing.T, key *rsa.PublicKey, email string) *fakeGoogleToken {
	g := &fakeGoogleToken{t: t, key: key, email: email}
	g.srv = httptest.NewTLSServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGoogleToken) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	f := formOf(r)
	if r.Method != http.MethodPost || f.Get("grant_type") != jwtBearerGrant {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type"}`)
		return
	}
	claims, err := verifyRS256(f.Get("assertion"), g.key)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, err.Error())
		return
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	switch {
	case claims["iss"] != g.email:
		g.t.Errorf("assertion iss %v, want %s", claims["iss"], g.email)
	case claims["aud"] != g.srv.URL+"/token":
		g.t.Errorf("assertion aud %v, want %s/token", claims["aud"], g.srv.URL)
	case claims["scope"] != googleScope:
		g.t.Errorf("assertion scope %v", claims["scope"])
	case exp-iat > 3600 || exp <= float64(time.Now().Unix()):
		g.t.Errorf("assertion valid from %v to %v", iat, exp)
	}
	g.calls.Add(1)
	fmt.Fprint(w, `{"access_token":"ya29.test-access-token","expires_in":3599,"token_type":"Bearer"}`)
}

// verifyRS256 checks a JWT's RS256 signature and returns its claims.
func verifyRS256(jwt string, key *rsa.PublicKey) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT")
	}
	var header struct{ Alg, Typ string }
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if json.Unmarshal(h, &header) != nil || header.Alg != "RS256" {
		return nil, fmt.Errorf("header %s, want alg RS256", h)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}

// serviceAccountJSON returns a key file for a new RSA key.
func serviceAccountJSON(t *testing.T, email string) (string, *rsa.PrivateKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "key-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": email, "token_uri": "https://oauth2.googleapis.com/token",
	})
	return string(sa), key
}

func TestGAR(t *testing.T) {
	const email = "scanner@proj.iam.gserviceaccount.com"
	saJSON, key := serviceAccountJSON(t, email)
	tokens := newFakeGoogleToken(t, &key.PublicKey, email)
	// Artifact Registry's registry: a bearer challenge whose token service
	// (GET /v2/token) takes basic auth oauth2accesstoken:<access token>.
	tokenService := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		if user != "oauth2accesstoken" || pw != "ya29.test-access-token" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"token":"gar-registry-token","expires_in":3600}`)
	})
	front, upstream := frontRegistry(t, func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer gar-registry-token"
	}, func(host string) string {
		return `Bearer realm="https://` + host + `/v2/token",service="` + host + `"`
	}, tokenService)
	img := pushRandom(t, upstream, "proj/docker/app:v1")
	pushRandom(t, upstream, "other/docker/app:v1")
	cfg := Config{
		Type: TypeGAR, URL: strings.TrimPrefix(front.URL, "https://"), Namespace: "proj/docker",
		Credentials: Credentials{GoogleServiceAccountJSON: saJSON},
		Endpoints:   Endpoints{GoogleToken: tokens.srv.URL + "/token"},
		Transport:   front.Client().Transport,
	}
	c := mustNew(t, cfg)
	ctx := withTimeout(t, time.Minute)
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"proj/docker/app"}, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "proj/docker/app")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"v1"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "proj/docker/app:v1", front.Client().Transport), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
	if n := tokens.calls.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1 (cached)", n)
	}

	otherJSON, _ := serviceAccountJSON(t, email) // a key the endpoint does not know
	cfg.Credentials.GoogleServiceAccountJSON = otherJSON
	_, err = mustNew(t, cfg).Repositories(ctx)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("Repositories with an unknown key: %v, want ErrUnauthorized (400 invalid_grant)", err)
	}
}
