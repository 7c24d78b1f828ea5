package scan

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RegistryOptions say how to reach a registry.
type RegistryOptions struct {
	// Insecure allows plain HTTP (go-containerregistry already uses it for
	// localhost and 127.0.0.1).
	Insecure bool
	// Platform picks the image of a multi-platform index ("linux/arm64").
	// Empty means linux/amd64.
	Platform string
	// Auth overrides the keychain (the Docker config file and its
	// credential helpers) when set.
	Auth authn.Authenticator
}

func parsePlatform(s string) (*v1.Platform, error) {
	if s == "" {
		return &v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil {
		return nil, fmt.Errorf("parsing platform %q: %w", s, err)
	}
	return p, nil
}

// RemoteImage fetches the manifest and config of an image in a registry;
// layers are streamed later, as the scan reads them.
func RemoteImage(ctx context.Context, ref string, opts RegistryOptions) (v1.Image, name.Reference, error) {
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(*platform), remote.WithUserAgent("bulwark")}
	if opts.Auth != nil {
		ropts = append(ropts, remote.WithAuth(opts.Auth))
	} else {
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching image %s: %w", r, err)
	}
	return img, r, nil
}

// ArchiveImage opens an image tarball: a docker-archive (`docker save`) or
// an OCI image layout in a tar (an oci-archive). OCI layouts are unpacked
// into work first, taking only the layout's own files.
func ArchiveImage(path, work, platform string) (v1.Image, error) {
	isOCI, err := tarHas(path, "oci-layout")
	if err != nil {
		return nil, err
	}
	if !isOCI {
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return nil, fmt.Errorf("reading docker archive %s: %w", path, err)
		}
		return img, nil
	}
	dir := filepath.Join(work, "oci-layout")
	if err := unpackLayout(path, dir); err != nil {
		return nil, err
	}
	return layoutImage(dir, platform)
}

// layoutImage picks the image for platform from an OCI layout directory.
func layoutImage(dir, platform string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout: %w", err)
	}
	want, err := parsePlatform(platform)
	if err != nil {
		return nil, err
	}
	return pickImage(idx, want, 0)
}

// pickImage walks an index (and nested indexes, a few levels deep) for the
// image matching the platform; an index with a single image and no
// platform information yields that image.
func pickImage(idx v1.ImageIndex, want *v1.Platform, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errors.New("image indexes nested too deeply")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading image index: %w", err)
	}
	var only []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading nested index %s: %w", d.Digest, err)
			}
			if img, err := pickImage(child, want, depth+1); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if d.Platform == nil {
				only = append(only, d)
				continue
			}
			if d.Platform.Satisfies(*want) {
				return idx.Image(d.Digest)
			}
		}
	}
	if len(only) == 1 {
		return idx.Image(only[0].Digest)
	}
	return nil, fmt.Errorf("no image for platform %s in the index", want)
}

// tarHas reports whether the tar at path holds a file named name at its top.
func tarHas(path, name string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("opening archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("reading archive %s: %w", path, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") == name {
			return true, nil
		}
	}
}

// unpackLayout extracts an OCI layout from a tar into dir, taking only
// oci-layout, index.json and blobs/<alg>/<hex> regular files; anything
// else in the archive is ignored, so no entry can write outside dir.
func unpackLayout(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading OCI archive %s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		rel := strings.TrimPrefix(hdr.Name, "./")
		if !layoutFile(rel) {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("unpacking OCI archive: %w", err)
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("unpacking OCI archive: %w", err)
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpacking %s from OCI archive: %w", rel, err)
		}
	}
}

// layoutFile reports whether rel is one of an OCI layout's own files.
func layoutFile(rel string) bool {
	if rel == "oci-layout" || rel == "index.json" {
		return true
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return false
	}
	return isToken(parts[1]) && isToken(parts[2])
}

func isToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
