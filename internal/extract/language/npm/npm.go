// Package npm reads npm packages from two places: npm lock files
// (package-lock.json and npm-shrinkwrap.json, lockfileVersion 1, 2 and 3),
// which list what `npm ci` installs, and the package.json of each package
// installed under a node_modules directory.
//
// Both are reported, each package with the file it was read from; a scan
// merges the duplicates. It does not read a project's own package.json (its
// dependency ranges are not installed versions), yarn or pnpm lock files,
// or npm's hidden lock file node_modules/.package-lock.json, which repeats
// what the installed package.json files say.
package npm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	// Name identifies the extractor.
	Name = "language/npm"
	// Ecosystem is the OSV ecosystem of npm packages.
	Ecosystem = "npm"

	maxLockSize     = 256 << 20
	maxManifestSize = 1 << 20

	// maxNameLen is npm's limit on package names, scope included.
	maxNameLen = 214
	// maxVersionLen is node-semver's limit on version strings.
	maxVersionLen = 256
)

// Extractor reads npm lock files and installed package.json files.
type Extractor struct{}

// New returns an npm extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a lock file outside node_modules or the
// package.json of an installed package. Files of any size are required, so
// that one past the limit is reported by Extract rather than passed over.
func (e *Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && (isLockfile(p) || isInstalledManifest(p))
}

// Extract reads the packages in a lock file or an installed package.json.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case isLockfile(f.Path):
		data, err := read(f, maxLockSize)
		if err != nil {
			return nil, err
		}
		return parseLockfile(ctx, data, f.Path)
	case isInstalledManifest(f.Path):
		data, err := read(f, maxManifestSize)
		if err != nil {
			return nil, err
		}
		return parseManifest(data, f.Path)
	}
	return nil, fmt.Errorf("%q is neither an npm lock file nor an installed package.json", f.Path)
}

// isLockfile reports whether p is a lock file of a project. Lock files
// inside node_modules come with published packages and say nothing about
// what is installed.
func isLockfile(p string) bool {
	base := path.Base(p)
	return (base == "package-lock.json" || base == "npm-shrinkwrap.json") &&
		!strings.HasPrefix(p, "node_modules/") && !strings.Contains(p, "/node_modules/")
}

// isInstalledManifest reports whether p is the package.json at the top of
// an installed package: node_modules/NAME/package.json or
// node_modules/@SCOPE/NAME/package.json. Other package.json files inside a
// package (test fixtures, "exports" subdirectories) are not installed
// packages, though some carry a name and version.
func isInstalledManifest(p string) bool {
	segs := strings.Split(p, "/")
	n := len(segs)
	if n < 3 || segs[n-1] != "package.json" {
		return false
	}
	dir := segs[n-2]
	if dir == "" || dir[0] == '.' || dir[0] == '@' {
		return false
	}
	if segs[n-3] == "node_modules" {
		return true
	}
	return n >= 4 && segs[n-4] == "node_modules" && len(segs[n-3]) > 1 && segs[n-3][0] == '@'
}

func read(f *extract.File, limit int64) ([]byte, error) {
	if f.Size > limit {
		return nil, fmt.Errorf("%q is %d bytes, over %d: %w", f.Path, f.Size, limit, extract.ErrTooLarge)
	}
	data := make([]byte, f.Size)
	if _, err := io.ReadFull(f.Reader(), data); err != nil {
		return nil, fmt.Errorf("reading %q: %w", f.Path, err)
	}
	// Node strips a byte order mark from package.json; encoding/json does not.
	return bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), nil
}

// newPackage returns the package, or false when name or version cannot be
// an npm package's.
func newPackage(name, version, path string) (model.Package, bool) {
	if name == "" || len(name) > maxNameLen || version == "" || len(version) > maxVersionLen {
		return model.Package{}, false
	}
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: Ecosystem,
		PURL:      purl(name, version),
		Path:      path,
		Extractor: Name,
	}, true
}

// purl returns pkg:npm/NAME@VERSION, the scope as the namespace:
// pkg:npm/%40babel/core@7.24.0.
func purl(name, version string) string {
	ns := ""
	if scope, rest, ok := strings.Cut(name, "/"); ok && strings.HasPrefix(scope, "@") {
		ns, name = scope, rest
	}
	return packageurl.NewPackageURL(packageurl.TypeNPM, ns, name, version, nil, "").ToString()
}
