package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// artifactory lists JFrog Artifactory's Docker repositories through its
// REST API (https://jfrog.com/help/r/jfrog-rest-apis/):
// GET /artifactory/api/repositories?packageType=docker for the repository
// keys, then each repository's distribution API under
// /artifactory/api/docker/{repoKey}/v2/. Requests carry the access token as
// a bearer token, or basic auth. Repositories are named "{repoKey}/{image}",
// which is the reference path of Artifactory's repository-path access
// method ("host/repoKey/image:tag").
type artifactory struct {
	base
	api    string
	header http.Header
	auth   authn.Authenticator
}

func newArtifactory(b base) (*artifactory, error) {
	c := b.cfg.Credentials
	a := &artifactory{base: b, api: b.scheme() + "://" + b.host + "/artifactory", auth: staticAuth(c)}
	switch {
	case c.Token != "":
		a.header = http.Header{"Authorization": {"Bearer " + c.Token}}
	case c.Username != "" && c.Password != "":
		a.header = http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))}}
	default:
		return nil, errors.New("registry config: artifactory needs Credentials.Token (access token) or Username and Password")
	}
	if b.cfg.Namespace != "" {
		if err := checkRepoKey(b.cfg.Namespace); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (a *artifactory) Repositories(ctx context.Context) ([]string, error) {
	keys := []string{a.cfg.Namespace}
	if a.cfg.Namespace == "" {
		var err error
		if keys, err = a.dockerRepositoryKeys(ctx); err != nil {
			return nil, a.listErr(err)
		}
	}
	var repos []string
	for _, key := range keys {
		images, err := a.distribution(key).catalog(ctx)
		if err != nil {
			return nil, a.listErr(err)
		}
		if len(repos)+len(images) > a.http.maxItems {
			return nil, a.listErr(ErrLimit)
		}
		for _, img := range images {
			repos = append(repos, key+"/"+img)
		}
	}
	return a.selected(repos), nil
}

// dockerRepositoryKeys lists the keys of the Docker repositories.
func (a *artifactory) dockerRepositoryKeys(ctx context.Context) ([]string, error) {
	var list []struct {
		Key         string `json:"key"`
		PackageType string `json:"packageType"`
	}
	if _, err := a.http.getJSON(ctx, request{url: a.api + "/api/repositories?packageType=docker", header: a.header}, &list); err != nil {
		return nil, err
	}
	if len(list) > a.http.maxItems {
		return nil, ErrLimit
	}
	var keys []string
	for _, r := range list {
		// Older servers ignore packageType; skip what is not Docker, and
		// keys that could not be part of a URL path.
		if strings.EqualFold(r.PackageType, "docker") && checkRepoKey(r.Key) == nil {
			keys = append(keys, r.Key)
		}
	}
	return keys, nil
}

func (a *artifactory) Tags(ctx context.Context, repo string) ([]string, error) {
	key, image, ok := strings.Cut(repo, "/")
	if !ok || checkRepoKey(key) != nil {
		return nil, a.tagsErr(repo, errors.New("not an Artifactory repository (repoKey/image)"))
	}
	tags, err := a.distribution(key).tags(ctx, image)
	if err != nil {
		return nil, a.tagsErr(repo, err)
	}
	return tags, nil
}

// distribution is the Docker API of one Artifactory repository, which
// takes the API credentials directly.
func (a *artifactory) distribution(key string) *distribution {
	return &distribution{http: a.http, reg: a.registry(), base: a.api + "/api/docker/" + key, header: a.header}
}

func (a *artifactory) Authenticator(context.Context) (authn.Authenticator, error) {
	return a.auth, nil
}

// checkRepoKey accepts Artifactory repository keys, which may be used in
// URL paths as they are.
func checkRepoKey(key string) error {
	if key == "" || len(key) > 64 || key == "." || key == ".." {
		return errors.New("invalid Artifactory repository key")
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return errors.New("invalid Artifactory repository key")
		}
	}
	return nil
}
