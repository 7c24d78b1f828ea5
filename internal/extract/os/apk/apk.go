// Package apk extracts the packages apk installed on Alpine, Wolfi and
// Chainguard roots from lib/apk/db/installed. It owns reading that file
// into model.Package values; matching them against vulnerabilities is not
// its business.
package apk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// Name identifies the extractor.
const Name = "os/apk"

// Limits on what is read. A full Alpine desktop's database is a few MiB;
// its longest lines (dependency lists) are a few KiB.
const (
	MaxFileSize = 64 << 20
	MaxLineSize = 1 << 20
)

const installedPath = "lib/apk/db/installed"

// ErrMalformed marks lines and package entries that are not valid.
// Extract reports them and goes on with the rest of the file.
var ErrMalformed = errors.New("malformed apk database")

// Extractor reads apk databases.
type Extractor struct{}

var _ extract.Extractor = (*Extractor)(nil)

// New returns an apk extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (*Extractor) Version() int { return 1 }

// Required reports whether path is lib/apk/db/installed. Sizes are not
// judged here: Extract refuses files that are too large, so they are
// reported rather than skipped unseen.
func (*Extractor) Required(path string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && path == installedPath
}

// Extract reads the installed packages in f. For a file with malformed
// entries it returns the packages it could read together with an error
// wrapping ErrMalformed that names the file and the lines at fault.
func (*Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if f.Size > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, limit %d: %w", f.Path, f.Size, MaxFileSize, extract.ErrTooLarge)
	}
	eco := ecosystem(f.OS)
	namespace, distro := purlDistro(f.OS)
	p := newParser(f.Reader(), f.Path)
	var pkgs []model.Package
	for {
		e, err := p.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			return pkgs, errors.Join(fmt.Errorf("%s: %w", f.Path, err), p.problems.Err())
		}
		if e == nil {
			return pkgs, p.problems.Err()
		}
		pkg, ok := p.pkg(e)
		if !ok {
			continue
		}
		pkg.Ecosystem = eco
		pkg.PURL = purl(namespace, distro, pkg.Name, pkg.Version, e.arch)
		pkg.Path = f.Path
		pkg.Extractor = Name
		pkgs = append(pkgs, pkg)
	}
}

// apkDistros are the distributions whose packages apk installs and OSV
// knows.
var apkDistros = map[string]bool{"alpine": true, "wolfi": true, "chainguard": true}

// ecosystem is the OSV ecosystem of the root's packages: the release's on
// Alpine, Wolfi and Chainguard, plain "Alpine" otherwise (an apk database
// on an unknown or derived distribution).
func ecosystem(o *extract.OS) string {
	if o != nil && apkDistros[o.ID] {
		if eco := o.Ecosystem(); eco != "" {
			return eco
		}
	}
	return "Alpine"
}

// purlDistro returns the PURL namespace ("alpine", "wolfi") and the distro
// qualifier ("alpine-3.19.1", "" when the release is unknown).
func purlDistro(o *extract.OS) (namespace, distro string) {
	if o == nil || !apkDistros[o.ID] {
		return "alpine", ""
	}
	if o.VersionID != "" {
		distro = o.ID + "-" + o.VersionID
	}
	return o.ID, distro
}

func purl(namespace, distro, name, version, arch string) string {
	var q packageurl.Qualifiers
	if arch != "" {
		q = append(q, packageurl.Qualifier{Key: "arch", Value: arch})
	}
	if distro != "" {
		q = append(q, packageurl.Qualifier{Key: "distro", Value: distro})
	}
	return packageurl.NewPackageURL(packageurl.TypeApk, namespace, name, version, q, "").ToString()
}
