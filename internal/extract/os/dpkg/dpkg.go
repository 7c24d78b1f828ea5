// Package dpkg extracts the packages dpkg installed on Debian and Ubuntu
// roots: var/lib/dpkg/status, and the one-file-per-package database under
// var/lib/dpkg/status.d/ that distroless images ship instead. It owns
// reading those files into model.Package values; matching them against
// vulnerabilities is not its business.
package dpkg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// Name identifies the extractor.
const Name = "os/dpkg"

// Limits on what is read. Real status files are a few MiB at most; their
// longest lines (Depends, Provides, Description) are a few KiB and their
// largest stanzas (long Conffiles lists) some hundred KiB.
const (
	MaxFileSize   = 64 << 20
	MaxLineSize   = 1 << 20
	MaxStanzaSize = 4 << 20
)

const (
	statusPath = "var/lib/dpkg/status"
	statusDir  = "var/lib/dpkg/status.d/"
)

// ErrMalformed marks stanzas and lines that are not a valid dpkg database
// entry. Extract reports them and goes on with the rest of the file.
var ErrMalformed = errors.New("malformed dpkg database")

// Extractor reads dpkg databases.
type Extractor struct{}

var _ extract.Extractor = (*Extractor)(nil)

// New returns a dpkg extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (*Extractor) Version() int { return 1 }

// Required reports whether path is var/lib/dpkg/status or a package file in
// var/lib/dpkg/status.d/ (but not its *.md5sums files). Sizes are not
// judged here: Extract refuses files that are too large, so they are
// reported rather than skipped unseen.
func (*Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	if !mode.IsRegular() {
		return false
	}
	if p == statusPath {
		return true
	}
	dir, base := path.Split(p)
	return dir == statusDir && base != "" && !strings.HasSuffix(base, ".md5sums")
}

// Extract reads the installed packages in f. For a file with malformed
// stanzas it returns the packages it could read together with an error
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
		st, err := p.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", f.Path, err)
			}
			return pkgs, errors.Join(fmt.Errorf("%s: %w", f.Path, err), p.problems.Err())
		}
		if st == nil {
			return pkgs, p.problems.Err()
		}
		pkg, ok := p.pkg(st)
		if !ok {
			continue
		}
		pkg.Ecosystem = eco
		pkg.PURL = purl(namespace, distro, pkg.Name, pkg.Version, st.arch)
		pkg.Path = f.Path
		pkg.Extractor = Name
		pkgs = append(pkgs, pkg)
	}
}

// ecosystem is the OSV ecosystem of the root's packages: the release's when
// the root is Debian or Ubuntu, plain "Debian" otherwise (a dpkg database
// on an unknown or derived distribution).
func ecosystem(o *extract.OS) string {
	if o != nil && (o.ID == "debian" || o.ID == "ubuntu") {
		if eco := o.Ecosystem(); eco != "" {
			return eco
		}
	}
	return "Debian"
}

// purlDistro returns the PURL namespace ("debian", "ubuntu") and the distro
// qualifier ("debian-12", "" when the release is unknown).
func purlDistro(o *extract.OS) (namespace, distro string) {
	if o == nil || (o.ID != "debian" && o.ID != "ubuntu") {
		return "debian", ""
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
	return packageurl.NewPackageURL(packageurl.TypeDebian, namespace, name, version, q, "").ToString()
}
