package k8s

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Limits on what a pull secret may hold; the API server caps a Secret at
// 1 MiB, so these only bound work on hostile content.
const (
	maxPullSecretBytes   = 1 << 20
	maxPullSecretEntries = 1000
)

// ErrBadPullSecret is returned for a pull secret whose content cannot be
// read as a Docker configuration.
var ErrBadPullSecret = errors.New("malformed image pull secret")

// PullCredential is one registry entry of a Docker configuration.
type PullCredential struct {
	// Match is the entry's key, normalised: "host[:port][/path]".
	Match         string
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
}

// dockerAuth is an entry of a Docker configuration's "auths" map (and of
// the legacy .dockercfg format, which is that map alone).
type dockerAuth struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// ParseDockerConfig reads the credentials of a Secret of type
// kubernetes.io/dockerconfigjson (data key ".dockerconfigjson") or
// kubernetes.io/dockercfg (".dockercfg"). Entries are returned in a
// deterministic order; a malformed secret is an error wrapping
// ErrBadPullSecret that never quotes the content.
func ParseDockerConfig(secretType corev1.SecretType, data map[string][]byte) ([]PullCredential, error) {
	var (
		raw   []byte
		auths map[string]dockerAuth
	)
	switch secretType {
	case corev1.SecretTypeDockerConfigJson:
		raw = data[corev1.DockerConfigJsonKey]
	case corev1.SecretTypeDockercfg:
		raw = data[corev1.DockerConfigKey]
	default:
		return nil, fmt.Errorf("%w: type %q is not a Docker configuration", ErrBadPullSecret, secretType)
	}
	if len(raw) > maxPullSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadPullSecret, len(raw), maxPullSecretBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if secretType == corev1.SecretTypeDockerConfigJson {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := dec.Decode(&cfg); err != nil {
			return nil, fmt.Errorf("%w: not JSON with an \"auths\" object", ErrBadPullSecret)
		}
		auths = cfg.Auths
	} else if err := dec.Decode(&auths); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object of registries", ErrBadPullSecret)
	}
	if len(auths) > maxPullSecretEntries {
		return nil, fmt.Errorf("%w: %d registries, limit %d", ErrBadPullSecret, len(auths), maxPullSecretEntries)
	}
	out := make([]PullCredential, 0, len(auths))
	for key, a := range auths {
		match := normaliseRegistryKey(key)
		if match == "" {
			continue
		}
		c := PullCredential{Match: match, Username: a.Username, Password: a.Password,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return nil, fmt.Errorf("%w: the \"auth\" of %q is not base64", ErrBadPullSecret, match)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("%w: the \"auth\" of %q is not user:password", ErrBadPullSecret, match)
			}
			c.Username, c.Password = user, pass
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b PullCredential) int { return cmp.Compare(a.Match, b.Match) })
	return out, nil
}

// dockerHub is how go-containerregistry names Docker Hub's registry.
const dockerHub = "index.docker.io"

// normaliseRegistryKey turns a Docker configuration key — "host",
// "host:port/path", "https://host/v1/", Docker Hub's legacy URL — into
// "host[:port][/path]" with Docker Hub's aliases folded into one name.
// It returns "" for a key with no host.
func normaliseRegistryKey(key string) string {
	key = strings.TrimSpace(key)
	if strings.Contains(key, "://") {
		u, err := url.Parse(key)
		if err != nil {
			return ""
		}
		key = u.Host + u.Path
	}
	host, p, _ := strings.Cut(key, "/")
	host = strings.ToLower(host)
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		host = dockerHub
	}
	if host == "" {
		return ""
	}
	p = strings.Trim(path.Clean("/"+p), "/")
	// Registry API roots are not repository paths.
	if p == "v1" || p == "v2" {
		p = ""
	}
	if p == "" {
		return host
	}
	return host + "/" + p
}

// matchScore reports whether credential key match applies to repository
// repo ("host[:port]/path"), and how specifically: the number of path
// segments matched plus one, or 0 for no match. A key's host may use "*"
// for one DNS label ("*.registry.example"), as the kubelet allows.
func matchScore(match, repo string) int {
	mHost, mPath, _ := strings.Cut(match, "/")
	rHost, rPath, _ := strings.Cut(repo, "/")
	if !hostMatches(mHost, rHost) {
		return 0
	}
	if mPath == "" {
		return 1
	}
	if rPath != mPath && !strings.HasPrefix(rPath, mPath+"/") {
		return 0
	}
	return 2 + strings.Count(mPath, "/")
}

func hostMatches(pattern, host string) bool {
	pHost, pPort, _ := strings.Cut(pattern, ":")
	hHost, hPort, _ := strings.Cut(host, ":")
	if pPort != hPort {
		return false
	}
	pl, hl := strings.Split(pHost, "."), strings.Split(hHost, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

// PullKeychain is a keychain over the credentials of image pull secrets:
// for a repository it returns the most specific matching entry, the first
// secret winning a tie (the kubelet's order: the pod's secrets, then its
// service account's), else anonymous access.
type PullKeychain []PullCredential

var _ authn.Keychain = PullKeychain(nil)

// Resolve implements authn.Keychain.
func (k PullKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	repo := r.String()
	if !strings.Contains(repo, "/") {
		repo = r.RegistryStr()
	}
	best, bestScore := -1, 0
	for i, c := range k {
		if s := matchScore(c.Match, repo); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return authn.Anonymous, nil
	}
	c := k[best]
	return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password,
		IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}), nil
}

// ReadPullSecrets reads the named secrets of a namespace through client
// and returns their credentials in order. A secret that is missing, not
// readable with the connector's permissions or not a Docker configuration
// is skipped, and the reasons are returned joined as the error alongside
// whatever was read; the error never holds a secret's content.
func ReadPullSecrets(ctx context.Context, client kubernetes.Interface, namespace string, names []string) (PullKeychain, error) {
	var (
		out  PullKeychain
		errs []error
	)
	for _, n := range names {
		s, err := client.CoreV1().Secrets(namespace).Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("reading pull secret %s/%s: %w", namespace, n, err))
			continue
		}
		creds, err := ParseDockerConfig(s.Type, s.Data)
		if err != nil {
			errs = append(errs, fmt.Errorf("pull secret %s/%s: %w", namespace, n, err))
			continue
		}
		out = append(out, creds...)
	}
	return out, errors.Join(errs...)
}
