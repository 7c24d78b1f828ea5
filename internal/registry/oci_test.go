package registry

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestOCIInProcessRegistry(t *testing.T) {
	reg := testenv.InProcessRegistry(t)
	img := pushRandom(t, reg, "team/app:v1")
	pushRandom(t, reg, "team/app:v2")
	pushRandom(t, reg, "other:latest")

	c := mustNew(t, Config{Type: TypeOCI, URL: reg.Host, Insecure: true})
	ctx := withTimeout(t, time.Minute)
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	slices.Sort(repos)
	if diff := cmp.Diff([]string{"other", "team/app"}, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "team/app")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"v1", "v2"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "team/app:v1", nil), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}

	filtered := mustNew(t, Config{Type: TypeOCI, URL: reg.Host, Insecure: true, Repositories: []string{"team/*"}})
	repos, err = filtered.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"team/app"}, repos); diff != "" {
		t.Errorf("Repositories filtered by team/* (-want +got):\n%s", diff)
	}
}

// TestOCIDistribution runs against distribution's docker-registry with
// htpasswd basic auth; a page size of 10 makes both listings paginate.
func TestOCIDistribution(t *testing.T) {
	reg := testenv.StartDistribution(t)
	img := pushRandom(t, reg, "app:v0")
	var wantRepos []string
	for i := range 105 {
		repo := fmt.Sprintf("bulk/repo-%03d", i)
		reg.PushImage(t, repo+":latest", img)
		wantRepos = append(wantRepos, repo)
	}
	var wantTags []string
	for i := range 25 {
		tag := fmt.Sprintf("t%02d", i)
		reg.PushImage(t, "app:"+tag, img)
		wantTags = append(wantTags, tag)
	}
	wantTags = append(wantTags, "v0")
	wantRepos = append([]string{"app"}, wantRepos...)

	c := mustNew(t, Config{Type: TypeOCI, URL: reg.Host, Insecure: true, Credentials: Credentials{Username: reg.Username, Password: reg.Password}})
	c.(interface{ client() *httpClient }).client().pageSize = 10
	ctx := withTimeout(t, 2*time.Minute)

	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff(wantRepos, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "app")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff(wantTags, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "bulk/repo-042:latest", nil), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}

	bad := mustNew(t, Config{Type: TypeOCI, URL: reg.Host, Insecure: true, Credentials: Credentials{Username: reg.Username, Password: "wrong-" + reg.Password}})
	_, err = bad.Repositories(ctx)
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a wrong password: %v, want ErrUnauthorized", err)
	}
	_, err = bad.Tags(ctx, "app")
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Tags with a wrong password: %v, want ErrUnauthorized", err)
	}
}

// TestOCIDistributionTokenAuth checks the bearer-token dance (as Docker
// Hub and Harbor do it) through go-containerregistry's transport.
func TestOCIDistributionTokenAuth(t *testing.T) {
	reg := testenv.StartDistributionTokenAuth(t)
	img := pushRandom(t, reg, "secured/app:v1")
	c := mustNew(t, Config{Type: TypeOCI, URL: reg.Host, Insecure: true, Credentials: Credentials{Username: reg.Username, Password: reg.Password}})
	ctx := withTimeout(t, time.Minute)
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"secured/app"}, repos); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	tags, err := c.Tags(ctx, "secured/app")
	if err != nil {
		t.Fatalf("Tags: %v", err)
	}
	if diff := cmp.Diff([]string{"v1"}, tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	if got, want := pullDigest(t, c, "secured/app:v1", nil), wantDigest(t, img); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
	bad := mustNew(t, Config{Type: TypeOCI, URL: reg.Host, Insecure: true, Credentials: Credentials{Username: reg.Username, Password: "nope"}})
	if _, err := bad.Repositories(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Repositories with a wrong password: %v, want ErrUnauthorized", err)
	}
}

func TestTagsRejectsBadRepositoryNames(t *testing.T) {
	c := mustNew(t, Config{Type: TypeOCI, URL: "registry.invalid"})
	for _, repo := range []string{"", "../v2/_catalog", "a?b", "UPPER", "a//b", "a/"} {
		if _, err := c.Tags(t.Context(), repo); err == nil {
			t.Errorf("Tags(%q) succeeded, want an error", repo)
		}
	}
}
