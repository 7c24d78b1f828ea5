package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"
)

// Registry is an OCI registry serving plain HTTP on loopback.
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	// Username and Password are the basic-auth credentials; both are empty
	// when the registry accepts anyone.
	Username, Password string

	blobGets *atomic.Int64
}

// BlobGets counts the blobs (layers and configs) an in-process registry
// has served, so a test can show a scan did not download anything; it is
// zero for the other registries.
func (r *Registry) BlobGets() int64 {
	if r.blobGets == nil {
		return 0
	}
	return r.blobGets.Load()
}

// InProcessRegistry serves go-containerregistry's registry from the test
// binary. It accepts anyone and is closed when t ends.
func InProcessRegistry(t testing.TB) *Registry {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	gets := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			gets.Add(1)
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), blobGets: gets}
}

// StartDistribution runs Debian's docker-registry (distribution 2.8) with
// filesystem storage in a temporary directory and htpasswd basic auth for a
// random user. It is stopped when t ends.
func StartDistribution(t testing.TB) *Registry {
	t.Helper()
	return startDistribution(t, false)
}

// StartDistributionTokenAuth runs docker-registry with token
// authentication: clients are sent to a token server (served by the test
// binary) that checks a random user's password and issues a signed JWT
// granting what was asked, as Docker Hub, Harbor and GitLab do.
func StartDistributionTokenAuth(t testing.TB) *Registry {
	t.Helper()
	return startDistribution(t, true)
}

func startDistribution(t testing.TB, token bool) *Registry {
	t.Helper()
	Integration(t)
	bin, err := systemBinary("docker-registry", "docker-registry", "/usr/bin")
	if err != nil {
		fatal(t, "starting docker-registry", err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	r := &Registry{
		Host:     fmt.Sprintf("127.0.0.1:%d", port),
		Username: "bulwark-" + randomHex(4),
		Password: randomHex(16),
	}
	dir := t.TempDir()
	var auth string
	if token {
		ts, err := startTokenServer(r.Username, r.Password)
		if err != nil {
			t.Fatalf("starting token server: %v", err)
		}
		t.Cleanup(ts.close)
		if auth, err = ts.distributionConfig(dir); err != nil {
			t.Fatalf("starting docker-registry: %v", err)
		}
	} else if auth, err = htpasswdConfig(dir, r); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	config, err := writeDistributionConfig(dir, r, auth)
	if err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	logs, err := logDir(t, "registry")
	if err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	proc, err := startProcess(logs, "docker-registry", processOptions{}, bin, "serve", config)
	if err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() { proc.Stop(10 * time.Second) })

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := waitFor(ctx, "docker-registry", proc, 100*time.Millisecond, r.asksForAuth); err != nil {
		t.Fatal(err)
	}
	return r
}

// htpasswdConfig writes an htpasswd file for r's user into dir and returns
// the registry's auth configuration.
func htpasswdConfig(dir string, r *Registry) (string, error) {
	// The minimum cost keeps tests fast: the registry checks the password
	// on every request of a push.
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		return "", fmt.Errorf("hashing registry password: %w", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, fmt.Appendf(nil, "%s:%s\n", r.Username, hash), 0o600); err != nil {
		return "", fmt.Errorf("writing htpasswd: %w", err)
	}
	return fmt.Sprintf("auth:\n  htpasswd:\n    realm: bulwark-test\n    path: %q\n", htpasswd), nil
}

// writeDistributionConfig writes the registry's config, with the given
// auth section, into dir and returns its path.
func writeDistributionConfig(dir string, r *Registry, auth string) (string, error) {
	config := filepath.Join(dir, "config.yml")
	yaml := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: %q
  secret: %q
%s`, filepath.Join(dir, "storage"), r.Host, randomHex(16), auth)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return "", fmt.Errorf("writing registry config: %w", err)
	}
	return config, nil
}

// asksForAuth reports whether the registry answers /v2/ with 401, which it
// does once it serves and only when authentication is on.
func (r *Registry) asksForAuth(ctx context.Context) (bool, error) {
	code, err := httpStatus(ctx, "http://"+r.Host+"/v2/")
	if err != nil {
		return false, err
	}
	if code != http.StatusUnauthorized {
		return false, fmt.Errorf("GET /v2/: status %d, want 401", code)
	}
	return true, nil
}

// Auth returns the registry's credentials, or anonymous access.
func (r *Registry) Auth() authn.Authenticator {
	if r.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.Username, Password: r.Password}
}

// Options returns the remote options for talking to the registry. No
// special transport is needed: go-containerregistry speaks plain HTTP to
// loopback addresses.
func (r *Registry) Options() []remote.Option {
	return []remote.Option{remote.WithAuth(r.Auth())}
}

// Ref parses "repo:tag" or "repo@digest" as a reference in this registry.
func (r *Registry) Ref(t testing.TB, repoTag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatalf("parsing reference %q: %v", repoTag, err)
	}
	return ref
}

// PushImage pushes img as repoTag and returns its reference by digest.
func (r *Registry) PushImage(t testing.TB, repoTag string, img v1.Image) name.Digest {
	t.Helper()
	ref := r.Ref(t, repoTag)
	if err := remote.Write(ref, img, append(r.Options(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatalf("computing digest of %s: %v", ref, err)
	}
	return ref.Context().Digest(digest.String())
}

// PushTarball pushes the single image of a docker-archive tarball (as
// written by `docker save` or crane) as repoTag.
func (r *Registry) PushTarball(t testing.TB, repoTag, path string) name.Digest {
	t.Helper()
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("reading image tarball %s: %v", path, err)
	}
	return r.PushImage(t, repoTag, img)
}

// PushDir pushes an image built from dir by ImageFromDir as repoTag.
func (r *Registry) PushDir(t testing.TB, repoTag, dir string) name.Digest {
	t.Helper()
	img, err := ImageFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r.PushImage(t, repoTag, img)
}

// ImageFromDir builds a linux/amd64 image whose single layer is the tree
// under dir: regular files, directories and symlinks with their modes.
// Owners and times are not kept — every entry is root's, dated 1970 — so
// the same tree always gives the same digest. The tree is read now; dir may
// change or go away afterwards.
func ImageFromDir(dir string) (v1.Image, error) {
	layerTar, err := tarDir(dir)
	if err != nil {
		return nil, fmt.Errorf("building image from %s: %w", dir, err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("building layer from %s: %w", dir, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("building image from %s: %w", dir, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config of image from %s: %w", dir, err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	return mutate.ConfigFile(img, cfg)
}

// tarDir returns an uncompressed tar of the tree under dir, in lexical order.
func tarDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return addTarEntry(tw, path, filepath.ToSlash(rel))
	})
	if err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addTarEntry writes the file at path to tw under name.
func addTarEntry(tw *tar.Writer, path, name string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: tarMode(fi.Mode()), ModTime: time.Unix(0, 0)}
	switch {
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	case fi.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case fi.Mode()&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = os.Readlink(path); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: unsupported file type %s", path, fi.Mode().Type())
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar header for %s: %w", path, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("writing %s into tar: %w", path, err)
	}
	return nil
}

// tarMode converts Go's file mode bits to the Unix ones tar stores.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b)
}
