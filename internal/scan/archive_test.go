package scan

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// multiPlatform builds an index of two images: the fixture image as
// linux/amd64 and a small dpkg-only image as linux/arm64.
func multiPlatform(t *testing.T) v1.ImageIndex {
	t.Helper()
	amd, err := tarball.ImageFromPath(slimTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	arm := image(t, layer(t, entry{name: "var/lib/dpkg/status", body: dpkgStanza("arm-only", "1.0-1")}))
	cfg, err := arm.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "arm64"
	if arm, err = mutate.ConfigFile(arm, cfg); err != nil {
		t.Fatal(err)
	}
	return mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
}

func hasPackage(r *model.Report, name string) bool {
	for _, p := range r.Packages {
		if p.Name == name {
			return true
		}
	}
	return false
}

// tarDir writes dir's regular files into a tar at path, names relative.
func tarDir(t *testing.T, dir, path string) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(out)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

func TestScanOCILayoutArchiveByPlatform(t *testing.T) {
	dir := t.TempDir()
	if _, err := layout.Write(filepath.Join(dir, "layout"), multiPlatform(t)); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "image.oci.tar")
	tarDir(t, filepath.Join(dir, "layout"), archive)
	s := testScanner(t)
	for _, tc := range []struct {
		platform, want string
	}{{"", "libc6"}, {"linux/amd64", "libc6"}, {"linux/arm64", "arm-only"}} {
		img, err := ArchiveImage(archive, t.TempDir(), tc.platform)
		if err != nil {
			t.Fatalf("platform %q: %v", tc.platform, err)
		}
		r, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetArchive, Name: archive})
		if err != nil {
			t.Fatal(err)
		}
		if !hasPackage(r, tc.want) {
			t.Errorf("platform %q: no %s package", tc.platform, tc.want)
		}
	}
	if _, err := ArchiveImage(archive, t.TempDir(), "linux/s390x"); err == nil || !strings.Contains(err.Error(), "no image for platform") {
		t.Errorf("missing platform: err = %v", err)
	}
}

// TestScanImagePlatformAndDockerConfig pushes a multi-platform index to a
// registry with basic auth and scans each platform, with credentials from
// a Docker config file (DOCKER_CONFIG), as the keychain finds them.
func TestScanImagePlatformAndDockerConfig(t *testing.T) {
	reg := testenv.StartDistribution(t)
	ref := reg.Ref(t, "vulnlab/multi:1")
	if err := remote.WriteIndex(ref, multiPlatform(t), append(reg.Options(), remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("pushing index: %v", err)
	}
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(reg.Username + ":" + reg.Password))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	s := testScanner(t)
	for platform, want := range map[string]string{"linux/amd64": "libc6", "linux/arm64": "arm-only"} {
		img, _, err := RemoteImage(context.Background(), ref.String(), RegistryOptions{Insecure: true, Platform: platform})
		if err != nil {
			t.Fatalf("%s: %v", platform, err)
		}
		r, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: ref.String()})
		if err != nil {
			t.Fatal(err)
		}
		// The fixture image's config names no platform; the arm64 one does.
		if !hasPackage(r, want) || (platform == "linux/arm64" && r.Target.Platform != platform) {
			t.Errorf("%s: platform %q, %s found: %v", platform, r.Target.Platform, want, hasPackage(r, want))
		}
	}
}
