// Package rust reads Rust crates from two places: Cargo.lock files, which
// pin every crate a project builds with, and executables built with
// cargo-auditable, which embeds the crates compiled into them as
// zlib-compressed JSON in a .dep-v0 section (ELF, PE and Mach-O).
//
// Only crates from the crates.io registry are reported, since they are
// what OSV's crates.io records name: the project's own crates (path
// dependencies, workspace members), git dependencies and crates from other
// registries are left out, and so are the build-time dependencies
// (build scripts, procedural macros) cargo-auditable records, which are
// not compiled into the executable.
//
// It does not read Cargo.toml, executables built without cargo-auditable,
// the pre-0.1 rust-audit sections, or cargo-auditable data in WebAssembly
// modules.
package rust

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
	Name = "language/rust"
	// Ecosystem is the OSV ecosystem of Rust crates.
	Ecosystem = "crates.io"

	maxLockSize = 64 << 20
	// maxBinarySize passes over larger executables, as the Go binary
	// extractor does.
	maxBinarySize = 512 << 20

	// maxNameLen is crates.io's limit on crate names.
	maxNameLen = 64
	// maxVersionLen bounds a version; semantic versions with long
	// pre-release and build parts stay far below it.
	maxVersionLen = 256
	// ctxCheckEvery is how many lines or packages are read between checks
	// of the context.
	ctxCheckEvery = 1024
)

// Extractor reads Cargo.lock files and cargo-auditable executables.
type Extractor struct{}

// New returns a Rust extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a project's Cargo.lock, of any size, or
// a regular file with an executable bit set of at most 512 MiB: Rust
// programs are installed anywhere, under any name.
func (e *Extractor) Required(p string, mode fs.FileMode, size int64) bool {
	if !mode.IsRegular() {
		return false
	}
	return isLockfile(p) || (mode&0o111 != 0 && size > 0 && size <= maxBinarySize)
}

// Extract reads the crates of a Cargo.lock file or an executable. A file
// that is not an executable with cargo-auditable data yields no packages
// and no error.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if isLockfile(f.Path) {
		if f.Size > maxLockSize {
			return nil, fmt.Errorf("%q is %d bytes, over %d: %w", f.Path, f.Size, maxLockSize, extract.ErrTooLarge)
		}
		data := make([]byte, f.Size)
		if _, err := io.ReadFull(f.Reader(), data); err != nil {
			return nil, fmt.Errorf("reading %q: %w", f.Path, err)
		}
		return parseLockfile(ctx, bytes.TrimPrefix(data, []byte("\ufeff")), f.Path)
	}
	if f.Size > maxBinarySize {
		return nil, fmt.Errorf("executable %q is %d bytes, over %d: %w", f.Path, f.Size, maxBinarySize, extract.ErrTooLarge)
	}
	return readAuditable(ctx, f)
}

// isLockfile reports whether p is a project's Cargo.lock. Those in Cargo's
// download caches come with the source of published crates and say nothing
// about what is installed.
func isLockfile(p string) bool {
	if path.Base(p) != "Cargo.lock" {
		return false
	}
	for _, cache := range []string{".cargo/registry/", ".cargo/git/"} {
		if strings.HasPrefix(p, cache) || strings.Contains(p, "/"+cache) {
			return false
		}
	}
	return true
}

// newPackage returns the crate, or false when name or version cannot be a
// crates.io crate's.
func newPackage(name, version, path string) (model.Package, bool) {
	if !validName(name) || !validVersion(version) {
		return model.Package{}, false
	}
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: Ecosystem,
		PURL:      packageurl.NewPackageURL(packageurl.TypeCargo, "", name, version, nil, "").ToString(),
		Path:      path,
		Extractor: Name,
	}, true
}

// validName reports whether s is a crate name crates.io accepts: ASCII
// letters, digits, "-" and "_".
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validVersion reports whether s can be a semantic version: printable
// ASCII without spaces, starting with a digit.
func validVersion(s string) bool {
	if s == "" || len(s) > maxVersionLen || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
