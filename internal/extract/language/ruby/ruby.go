// Package ruby reads Ruby gems from two places: the specifications
// RubyGems writes for every gem it installs
// (GEM_HOME/specifications/NAME-VERSION[-PLATFORM].gemspec, and
// specifications/default/ for the default gems bundled with Ruby), and
// Bundler's lock files (Gemfile.lock, gems.locked).
//
// Both are reported, each gem with the file it was read from; a scan merges
// the duplicates. From lock files only gems from gem servers (GEM sections)
// are read: gems from git repositories or local paths are the project's own
// or unreleased code, which no OSV record names by version. It does not
// read a project's Gemfile or the gemspec of a project's source, whose
// versions come from Ruby code it does not run.
package ruby

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
	Name = "language/ruby"
	// Ecosystem is the OSV ecosystem of Ruby gems.
	Ecosystem = "RubyGems"

	// maxSpecSize bounds an installed gemspec; RubyGems writes them
	// without file lists, in a few kilobytes.
	maxSpecSize = 1 << 20
	maxLockSize = 16 << 20

	// maxFieldLen bounds a gem name or version; real ones are far shorter.
	maxFieldLen = 256
	// ctxCheckEvery is how many lines are read between checks of the
	// context.
	ctxCheckEvery = 1024
)

// Extractor reads installed gemspecs and Bundler lock files.
type Extractor struct{}

// New returns a Ruby extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is an installed gem's specification or a
// project's lock file. Files of any size are required, so that one past
// the limit is reported by Extract rather than passed over.
func (e *Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && (isInstalledSpec(p) || isLockfile(p))
}

// Extract reads the gems in an installed gemspec or a lock file.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch {
	case isInstalledSpec(f.Path):
		data, err := read(f, maxSpecSize)
		if err != nil {
			return nil, err
		}
		return parseGemspec(ctx, data, f.Path)
	case isLockfile(f.Path):
		data, err := read(f, maxLockSize)
		if err != nil {
			return nil, err
		}
		return parseLockfile(ctx, data, f.Path)
	}
	return nil, fmt.Errorf("%q is neither an installed gemspec nor a Bundler lock file", f.Path)
}

// isInstalledSpec reports whether p is a specification RubyGems wrote on
// installing a gem: specifications/*.gemspec or
// specifications/default/*.gemspec.
func isInstalledSpec(p string) bool {
	dir, base := path.Split(p)
	if !strings.HasSuffix(base, ".gemspec") || base == ".gemspec" {
		return false
	}
	dir = strings.TrimSuffix(dir, "/")
	dir = strings.TrimSuffix(dir, "/default")
	return dir == "specifications" || strings.HasSuffix(dir, "/specifications")
}

// isLockfile reports whether p is a project's lock file. Installed gems
// can ship their own (GEM_HOME/gems/NAME-VERSION/Gemfile.lock), recording
// how their authors developed them, not what is installed.
func isLockfile(p string) bool {
	base := path.Base(p)
	if base != "Gemfile.lock" && base != "gems.locked" {
		return false
	}
	segs := strings.Split(p, "/")
	for _, s := range segs[:max(len(segs)-2, 0)] {
		if s == "gems" {
			return false
		}
	}
	return true
}

func read(f *extract.File, limit int64) ([]byte, error) {
	if f.Size > limit {
		return nil, fmt.Errorf("%q is %d bytes, over %d: %w", f.Path, f.Size, limit, extract.ErrTooLarge)
	}
	data := make([]byte, f.Size)
	if _, err := io.ReadFull(f.Reader(), data); err != nil {
		return nil, fmt.Errorf("reading %q: %w", f.Path, err)
	}
	return bytes.TrimPrefix(data, []byte("\ufeff")), nil
}

// newPackage returns the gem, or false when name or version cannot be a
// gem's.
func newPackage(name, version, path string) (model.Package, bool) {
	if !validName(name) || !validVersion(version) {
		return model.Package{}, false
	}
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: Ecosystem,
		PURL:      packageurl.NewPackageURL(packageurl.TypeGem, "", name, version, nil, "").ToString(),
		Path:      path,
		Extractor: Name,
	}, true
}

// validName reports whether s is a gem name RubyGems accepts: letters,
// digits, ".", "-" and "_".
func validName(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validVersion reports whether s is a gem version: it starts with a digit
// and holds letters, digits and ".", as Gem::Version writes versions
// ("1.0.0", "7.1.0.rc2", "1.0.0.pre.1").
func validVersion(s string) bool {
	if s == "" || len(s) > maxFieldLen || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}
