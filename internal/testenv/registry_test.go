package testenv

import (
	"archive/tar"
	"errors"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const slimTarball = "../../testdata/images/slim.tar"

func TestInProcessRegistry(t *testing.T) {
	r := InProcessRegistry(t)
	t.Run("Tarball", func(t *testing.T) { testPushTarball(t, r) })
	t.Run("Dir", func(t *testing.T) { testPushDir(t, r) })
}

func TestDistribution(t *testing.T) {
	testDistribution(t, StartDistribution(t))
}

func TestDistributionTokenAuth(t *testing.T) {
	testDistribution(t, StartDistributionTokenAuth(t))
}

func testDistribution(t *testing.T, r *Registry) {
	t.Run("Tarball", func(t *testing.T) { testPushTarball(t, r) })
	t.Run("Dir", func(t *testing.T) { testPushDir(t, r) })
	t.Run("RefusesBadCredentials", func(t *testing.T) {
		ref := r.PushDir(t, "bulwark/private:1", writeTree(t))
		for _, tc := range []struct {
			name string
			auth authn.Authenticator
		}{
			{"anonymous", authn.Anonymous},
			{"wrong password", &authn.Basic{Username: r.Username, Password: "wrong"}},
			{"unknown user", &authn.Basic{Username: "nobody", Password: r.Password}},
		} {
			_, err := remote.Image(ref, remote.WithAuth(tc.auth), remote.WithContext(t.Context()))
			if status := registryErrorStatus(err); status != http.StatusUnauthorized {
				t.Errorf("%s: pulling %s: status %d (err %v), want 401", tc.name, ref, status, err)
			}
		}
	})
}

func TestImageFromDir(t *testing.T) {
	dir := writeTree(t)
	first, err := ImageFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ImageFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d1, d2 := digest(t, first), digest(t, second); d1 != d2 {
		t.Errorf("same tree gave digests %s and %s, want equal", d1, d2)
	}
	cfg, err := first.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Platform().String(); got != "linux/amd64" {
		t.Errorf("platform = %s, want linux/amd64", got)
	}
	if diff := cmp.Diff(wantTree(), readTree(t, first)); diff != "" {
		t.Errorf("image layer (-want +got):\n%s", diff)
	}
}

// testPushTarball pushes the real fixture image and checks the registry
// gives back the same image, by digest and by tag, with the same files.
func testPushTarball(t *testing.T, r *Registry) {
	ref := r.PushTarball(t, "bulwark/slim:1", slimTarball)
	local, err := tarball.ImageFromPath(slimTarball, nil)
	if err != nil {
		t.Fatal(err)
	}
	pulled := pull(t, r, ref)
	if got := digest(t, pulled); got != ref.DigestStr() {
		t.Errorf("pulled digest %s, pushed %s", got, ref.DigestStr())
	}
	if got := digest(t, pull(t, r, r.Ref(t, "bulwark/slim:1"))); got != ref.DigestStr() {
		t.Errorf("tag resolves to %s, pushed %s", got, ref.DigestStr())
	}
	tree := readTree(t, pulled)
	if got := tree["etc/debian_version"].Content; got != "12.15\n" {
		t.Errorf("etc/debian_version = %q, want %q", got, "12.15\n")
	}
	if diff := cmp.Diff(readTree(t, local), tree); diff != "" {
		t.Errorf("pulled files differ from the tarball's (-tarball +pulled):\n%s", diff)
	}
}

// testPushDir pushes an image built from a directory and checks modes,
// symlinks and directories survive the round trip.
func testPushDir(t *testing.T, r *Registry) {
	ref := r.PushDir(t, "bulwark/dir:1", writeTree(t))
	pulled := pull(t, r, ref)
	if got := digest(t, pulled); got != ref.DigestStr() {
		t.Errorf("pulled digest %s, pushed %s", got, ref.DigestStr())
	}
	if diff := cmp.Diff(wantTree(), readTree(t, pulled)); diff != "" {
		t.Errorf("pulled image layer (-want +got):\n%s", diff)
	}
}

// writeTree creates the directory tree that wantTree describes.
func writeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, step := range []error{
		os.MkdirAll(filepath.Join(dir, "app", "bin"), 0o755),
		os.Mkdir(filepath.Join(dir, "tmp"), 0o755),
		os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky),
		os.WriteFile(filepath.Join(dir, "app", "bin", "run"), []byte("#!/bin/sh\necho hi\n"), 0o755),
		os.Chmod(filepath.Join(dir, "app", "bin", "run"), 0o755|os.ModeSetuid),
		os.WriteFile(filepath.Join(dir, "app", "config.json"), []byte(`{"debug":false}`), 0o640),
		os.Symlink("bin/run", filepath.Join(dir, "app", "start")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	return dir
}

func wantTree() map[string]treeEntry {
	return map[string]treeEntry{
		"app":             {Type: tar.TypeDir, Mode: 0o755},
		"app/bin":         {Type: tar.TypeDir, Mode: 0o755},
		"app/bin/run":     {Type: tar.TypeReg, Mode: 0o4755, Content: "#!/bin/sh\necho hi\n"},
		"app/config.json": {Type: tar.TypeReg, Mode: 0o640, Content: `{"debug":false}`},
		"app/start":       {Type: tar.TypeSymlink, Mode: 0o777, Link: "bin/run"},
		"tmp":             {Type: tar.TypeDir, Mode: 0o1777},
	}
}

// treeEntry is what a test compares of a file in an image.
type treeEntry struct {
	Type    byte
	Mode    int64
	Link    string
	Content string
}

// readTree returns the image's flattened filesystem by clean relative path:
// without the leading "./" some builders write or a directory's trailing "/".
func readTree(t *testing.T, img v1.Image) map[string]treeEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tree := map[string]treeEntry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tree
		}
		if err != nil {
			t.Fatalf("reading image layers: %v", err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s from image: %v", hdr.Name, err)
		}
		tree[strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")] = treeEntry{Type: hdr.Typeflag, Mode: hdr.Mode, Link: hdr.Linkname, Content: string(content)}
	}
}

func pull(t *testing.T, r *Registry, ref name.Reference) v1.Image {
	t.Helper()
	img, err := remote.Image(ref, append(r.Options(), remote.WithContext(t.Context()))...)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return img
}

func digest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("computing image digest: %v", err)
	}
	return d.String()
}

// registryErrorStatus returns the HTTP status of a registry error, or 0.
func registryErrorStatus(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}
