// Package java reads Maven artifacts from Java archives: .jar, .war, .ear,
// .par and Jenkins plugins (.hpi, .jpi), and the archives nested in them
// (WEB-INF/lib, BOOT-INF/lib, an ear's modules), down to three levels.
//
// An archive's META-INF/maven/**/pom.properties files are authoritative:
// Maven writes one for the artifact it builds, and shading copies those of
// the artifacts it merges in, so each yields a package. An archive without
// them (distributions repackage jars and drop Maven's metadata) is named
// from its file name and META-INF/MANIFEST.MF instead; see coordinates for
// the rules and their limits. A package found that way whose groupId cannot
// be inferred is reported under its artifactId alone, with no package URL:
// no OSV record matches it, but the inventory shows it.
//
// It does not read pom.xml files, Gradle or Maven lock files, or the
// Maven repository Debian keeps under /usr/share/maven-repo, and it does not
// look jars up by checksum.
package java

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	// Name identifies the extractor.
	Name = "language/java"
	// Ecosystem is the OSV ecosystem of Maven artifacts, named there
	// "groupId:artifactId".
	Ecosystem = "Maven"

	// maxArchiveSize bounds the outermost archive. Its entries are read
	// in place, so the bound is on the work done, not on memory.
	maxArchiveSize = 1 << 30
)

// Extractor reads Java archives.
type Extractor struct{}

// New returns a Java archive extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a regular file named like a Java
// archive. Files of any size are required, so that one past the limit is
// reported by Extract rather than passed over.
func (e *Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && isArchive(p)
}

// Extract reads the packages in an archive and the archives nested in it.
// Damage in one part (a nested archive that is corrupt or too large, an
// unreadable pom.properties) is reported in the error returned alongside
// the packages read from the rest.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Size > maxArchiveSize {
		return nil, fmt.Errorf("archive %q is %d bytes, over %d: %w", f.Path, f.Size, maxArchiveSize, extract.ErrTooLarge)
	}
	w := newWalker(defaultLimits)
	pkgs := w.archive(ctx, f.Content, f.Size, f.Path, 0)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return pkgs, w.err()
}

// archiveExts are the extensions of the zip files that hold Java classes
// and the Maven metadata of the artifacts they were built from.
var archiveExts = []string{".jar", ".war", ".ear", ".par", ".hpi", ".jpi"}

func isArchive(p string) bool {
	ext := path.Ext(p)
	for _, e := range archiveExts {
		if strings.EqualFold(ext, e) {
			return len(path.Base(p)) > len(e)
		}
	}
	return false
}

// newPackage returns the package an archive at path holds. Without a
// groupId the name is the bare artifactId and there is no package URL:
// the package URL of a Maven artifact needs its groupId.
func newPackage(group, artifact, version, path string) model.Package {
	p := model.Package{
		Name:      artifact,
		Version:   version,
		Ecosystem: Ecosystem,
		Path:      path,
		Extractor: Name,
	}
	if group != "" {
		p.Name = group + ":" + artifact
		p.PURL = packageurl.NewPackageURL(packageurl.TypeMaven, group, artifact, version, nil, "").ToString()
	}
	return p
}
