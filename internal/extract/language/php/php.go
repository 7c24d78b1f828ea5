// Package php reads Composer packages from two places: a project's
// composer.lock, which pins what `composer install` installs (its
// "packages" and its "packages-dev"), and the vendor/composer/installed.json
// Composer writes for what it did install (format 1, an array, and
// format 2 of Composer 2, an object).
//
// Both are reported, each package with the file it was read from; a scan
// merges the duplicates. It does not read composer.json, whose
// constraints are not installed versions, or the lock files that
// packages in vendor/ ship.
package php

import (
	"bytes"
	"context"
	"encoding/json"
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
	Name = "language/php"
	// Ecosystem is the OSV ecosystem of Composer packages.
	Ecosystem = "Packagist"

	// maxSize bounds a lock file or installed.json; with package
	// descriptions and autoload maps, large projects' are a few MiB.
	maxSize = 64 << 20
	// maxFieldLen bounds a name or version; real ones are far shorter.
	maxFieldLen = 256
	// ctxCheckEvery is how many packages are read between checks of the
	// context.
	ctxCheckEvery = 1024
)

// Extractor reads composer.lock and installed.json files.
type Extractor struct{}

// New returns a PHP extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a project's composer.lock or Composer's
// record of installed packages. Files of any size are required, so that
// one past the limit is reported by Extract rather than passed over.
func (e *Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && (isLockfile(p) || isInstalled(p))
}

// isLockfile reports whether p is a project's composer.lock, not one a
// package in vendor/ ships.
func isLockfile(p string) bool {
	return path.Base(p) == "composer.lock" && !strings.HasPrefix(p, "vendor/") && !strings.Contains(p, "/vendor/")
}

// isInstalled reports whether p is VENDOR/composer/installed.json. The
// vendor directory's name is configurable; its composer/ subdirectory's is
// not.
func isInstalled(p string) bool {
	return p == "composer/installed.json" || strings.HasSuffix(p, "/composer/installed.json")
}

// composerPackage holds the fields of a package in composer.lock or
// installed.json the extractor reads.
type composerPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type lockfile struct {
	Packages    []composerPackage `json:"packages"`
	PackagesDev []composerPackage `json:"packages-dev"`
}

// installedV2 is installed.json of Composer 2; Composer 1 wrote the bare
// array of packages. Development packages are among the packages, and
// named again in "dev-package-names".
type installedV2 struct {
	Packages []composerPackage `json:"packages"`
}

// Extract reads the packages of a composer.lock or installed.json.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Size > maxSize {
		return nil, fmt.Errorf("%q is %d bytes, over %d: %w", f.Path, f.Size, maxSize, extract.ErrTooLarge)
	}
	data := make([]byte, f.Size)
	if _, err := io.ReadFull(f.Reader(), data); err != nil {
		return nil, fmt.Errorf("reading %q: %w", f.Path, err)
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))

	var lists [][]composerPackage
	switch {
	case isLockfile(f.Path):
		var lock lockfile
		if err := json.Unmarshal(data, &lock); err != nil {
			return nil, fmt.Errorf("parsing composer lock file %q: %v: %w", f.Path, err, extract.ErrMalformed)
		}
		lists = [][]composerPackage{lock.Packages, lock.PackagesDev}
	case isInstalled(f.Path):
		pkgs, err := parseInstalled(data)
		if err != nil {
			return nil, fmt.Errorf("parsing %q: %v: %w", f.Path, err, extract.ErrMalformed)
		}
		lists = [][]composerPackage{pkgs}
	default:
		return nil, fmt.Errorf("%q is neither a composer.lock nor an installed.json", f.Path)
	}

	var out []model.Package
	seen := make(map[[2]string]bool)
	n := 0
	for _, list := range lists {
		for _, p := range list {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			pkg, ok := newPackage(p.Name, p.Version, f.Path)
			if !ok || seen[[2]string{pkg.Name, pkg.Version}] {
				continue
			}
			seen[[2]string{pkg.Name, pkg.Version}] = true
			out = append(out, pkg)
		}
	}
	return out, nil
}

// parseInstalled reads either format of installed.json.
func parseInstalled(data []byte) ([]composerPackage, error) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) > 0 && data[0] == '[' {
		var pkgs []composerPackage
		err := json.Unmarshal(data, &pkgs)
		return pkgs, err
	}
	var v2 installedV2
	err := json.Unmarshal(data, &v2)
	return v2.Packages, err
}

// newPackage returns the package, or false when name or version cannot be
// a Composer package's. Composer records tags as they are named, often
// with a leading "v" ("v5.4.3"), which OSV's versions do not have.
// Branches ("dev-main", "2.x-dev") are kept as they are. Names are
// case-insensitive to Composer and lower-case on Packagist, but a lock
// file keeps the case a package's own composer.json gives.
func newPackage(name, version, path string) (model.Package, bool) {
	name = strings.ToLower(name)
	if len(version) > 1 && (version[0] == 'v' || version[0] == 'V') && '0' <= version[1] && version[1] <= '9' {
		version = version[1:]
	}
	vendor, project, ok := strings.Cut(name, "/")
	if !ok || !validName(vendor) || !validName(project) || !validVersion(version) {
		return model.Package{}, false
	}
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: Ecosystem,
		PURL:      packageurl.NewPackageURL(packageurl.TypeComposer, vendor, project, version, nil, "").ToString(),
		Path:      path,
		Extractor: Name,
	}, true
}

// validName reports whether s, lower-cased, is a vendor or project name
// as Composer allows them: letters, digits, ".", "_" and "-".
func validName(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validVersion reports whether s can be a Composer version or branch:
// printable ASCII without spaces.
func validVersion(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
