package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeECR speaks the ECR API's AWS JSON 1.1 protocol
// (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/): POST /
// with X-Amz-Target "AmazonEC2ContainerRegistry_V20150921.<Operation>",
// a SigV4-signed Authorization header, and nextToken pagination. Errors
// are {"__type": code, "message"} with status 400.
type fakeECR struct {
	t                 *testing.T
	srv               *httptest.Server
	keyID, region     string
	registryID        string // expected registryId, "" for none
	repos             map[string][]string
	password          string
	tokenCalls        atomic.Int64
	expiresIn         time.Duration
	sawSecurityTokens atomic.Int64
}

// sigV4 is the shape of a SigV4 Authorization header for ECR.
var sigV4 = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/([a-z0-9-]+)/ecr/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$`)

func newFakeECR(t *testing.T, keyID, region string, repos map[string][]string) *fakeECR {
	e := &fakeECR{t: t, keyID: keyID, region: region, repos: repos, password: "ecr-registry-password", expiresIn: 12 * time.Hour}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *fakeECR) fail(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, msg)
}

func (e *fakeECR) serve(w http.ResponseWriter, r *http.Request) {
	m := sigV4.FindStringSubmatch(r.Header.Get("Authorization"))
	if r.Method != http.MethodPost || r.URL.Path != "/" || m == nil || r.Header.Get("X-Amz-Date") == "" {
		e.fail(w, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if m[1] != e.keyID {
		e.fail(w, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	if m[2] != e.region {
		e.fail(w, "InvalidSignatureException", "Credential should be scoped to a valid region.")
		return
	}
	if r.Header.Get("X-Amz-Security-Token") != "" {
		e.sawSecurityTokens.Add(1)
	}
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		NextToken      string `json:"nextToken"`
		MaxResults     int    `json:"maxResults"`
		Filter         struct {
			TagStatus string `json:"tagStatus"`
		} `json:"filter"`
	}
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != "application/x-amz-json-1.1" || json.Unmarshal(body, &in) != nil {
		e.fail(w, "SerializationException", "bad request body")
		return
	}
	if in.RegistryID != e.registryID {
		e.t.Errorf("registryId %q, want %q", in.RegistryID, e.registryID)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target := r.Header.Get("X-Amz-Target"); target {
	case "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories":
		names := sortedCopy(mapKeys(e.repos))
		items, next := tokenPage(names, in.NextToken, in.MaxResults)
		var out []map[string]any
		for _, n := range items {
			out = append(out, map[string]any{"repositoryName": n, "registryId": "123456789012", "createdAt": 1.7e9})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"repositories": out, "nextToken": next})
	case "AmazonEC2ContainerRegistry_V20150921.ListImages":
		if in.Filter.TagStatus != "TAGGED" {
			e.t.Errorf("ListImages filter.tagStatus %q, want TAGGED", in.Filter.TagStatus)
		}
		tags, ok := e.repos[in.RepositoryName]
		if !ok {
			e.fail(w, "RepositoryNotFoundException", "repository does not exist")
			return
		}
		items, next := tokenPage(tags, in.NextToken, in.MaxResults)
		var ids []map[string]any
		for _, tag := range items {
			ids = append(ids, map[string]any{"imageDigest": "sha256:" + strings.Repeat("0", 64), "imageTag": tag})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"imageIds": ids, "nextToken": next})
	case "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken":
		e.tokenCalls.Add(1)
		token := base64.StdEncoding.EncodeToString([]byte("AWS:" + e.password))
		_ = json.NewEncoder(w).Encode(map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": token,
			"expiresAt":          float64(time.Now().Add(e.expiresIn).Unix()),
			"proxyEndpoint":      "https://123456789012.dkr.ecr." + e.region + ".amazonaws.com",
		}}})
	default:
		e.fail(w, "UnknownOperationException", target)
	}
}

// tokenPage pages items with numeric string tokens; next is nil at the end.
func tokenPage(items []string, token string, size int) ([]string, *string) {
	start, _ := strconv.Atoi(token)
	if size <= 0 {
		size = 100
	}
	start = min(start, len(items))
	end := min(start+size, len(items))
	if end == len(items) {
		return items[start:end], nil
	}
	next := strconv.Itoa(end)
	return items[start:end], &next
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestECRListing(t *testing.T) {
	repos := map[string][]string{"team/api": {"v1", "v2", "v3"}, "team/web": {"latest"}, "other": {"x"}}
	e := newFakeECR(t, "AKIDTEST", "eu-west-1", repos)
	e.registryID = "123456789012"
	cfg := Config{
		Type: TypeECR, URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Namespace: "team",
		Credentials: Credentials{AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret", AWSSessionToken: "session"},
		Endpoints:   Endpoints{AWS: e.srv.URL},
		Transport:   e.srv.Client().Transport,
	}
	c := mustNew(t, cfg)
	c.(interface{ client() *httpClient }).client().pageSize = 1
	ctx := withTimeout(t, time.Minute)
	got, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"team/api", "team/web"}, got); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "team/api")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"v1", "v2", "v3"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if e.sawSecurityTokens.Load() == 0 {
		t.Error("no request carried the session token")
	}

	cfg.Credentials.AWSAccessKeyID = "AKIDWRONG"
	if _, err := mustNew(t, cfg).Repositories(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with an unknown key: %v, want ErrUnauthorized", err)
	}
}

func TestECRPull(t *testing.T) {
	e := newFakeECR(t, "AKIDTEST", "us-east-2", map[string][]string{"app": {"v1"}})
	// ECR's registry takes basic auth "AWS:<password>" from
	// GetAuthorizationToken.
	front, upstream := frontRegistry(t, func(r *http.Request) bool {
		user, pw, ok := r.BasicAuth()
		return ok && user == "AWS" && pw == e.password
	}, func(host string) string {
		return `Basic realm="https://` + host + `/",service="ecr.amazonaws.com"`
	}, nil)
	img := pushRandom(t, upstream, "app:v1")
	c := mustNew(t, Config{
		Type: TypeECR, URL: strings.TrimPrefix(front.URL, "https://"),
		Credentials: Credentials{AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret", AWSRegion: "us-east-2"},
		Endpoints:   Endpoints{AWS: e.srv.URL},
		Transport:   e.srv.Client().Transport,
	})
	for range 2 {
		if got, want := pullDigest(t, c, "app:v1", front.Client().Transport), wantDigest(t, img); got != want {
			t.Errorf("pulled digest %s, want %s", got, want)
		}
	}
	if n := e.tokenCalls.Load(); n != 1 {
		t.Errorf("GetAuthorizationToken called %d times, want 1 (cached until expiry)", n)
	}
}

func TestCachedTokenRenewsBeforeExpiry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	calls := 0
	tok := newCachedToken(func(context.Context) (string, time.Time, error) {
		calls++
		return strconv.Itoa(calls), now.Add(time.Hour), nil
	})
	tok.now = func() time.Time { return now }
	get := func() string {
		s, err := tok.get(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	start := now
	first, second := get(), get()
	if first != "1" || second != "1" {
		t.Fatalf("tokens %s, %s, want 1, 1 (cached)", first, second)
	}
	now = start.Add(54 * time.Minute)
	if got := get(); got != "1" {
		t.Errorf("at 54 minutes got token %s, want 1", got)
	}
	now = start.Add(56 * time.Minute)
	if got := get(); got != "2" {
		t.Errorf("at 56 minutes (within 5 minutes of expiry) got token %s, want 2", got)
	}
}

// TestECRDefaultCredentialChain checks a registry without keys signs with
// the AWS SDK's default chain, here the AWS_* environment variables (the
// same chain reads EKS web identity and instance roles, which cannot run
// here).
func TestECRDefaultCredentialChain(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	e := newFakeECR(t, "AKIDFROMENV", "eu-west-1", map[string][]string{"app": {"v1"}})
	e.registryID = "123456789012"
	c := mustNew(t, Config{
		Type: TypeECR, URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
		Endpoints: Endpoints{AWS: e.srv.URL}, Transport: e.srv.Client().Transport,
	})
	got, err := c.Repositories(withTimeout(t, time.Minute))
	if err != nil {
		t.Fatalf("Repositories with the environment's keys: %v", err)
	}
	if diff := cmp.Diff([]string{"app"}, got); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	if _, err := New(Config{Type: TypeECR, URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Credentials: Credentials{AWSAccessKeyID: "AKIDONLY"}}); err == nil {
		t.Error("a key id without its secret was accepted")
	}
}
