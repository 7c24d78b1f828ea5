// Package dotnet reads NuGet packages from the .deps.json files the .NET
// SDK publishes with every application (APP.deps.json beside APP.dll),
// which the runtime reads to load the application's dependencies.
//
// Only the libraries of type "package" are reported: those restored from
// NuGet feeds, which OSV's NuGet records name. Projects of the solution
// ("project"), assemblies referenced by path ("reference") and the runtime
// packs of self-contained applications ("runtimepack") are left out. It
// does not read project files, packages.lock.json, project.assets.json or
// the assemblies themselves.
package dotnet

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	// Name identifies the extractor.
	Name = "language/dotnet"
	// Ecosystem is the OSV ecosystem of NuGet packages.
	Ecosystem = "NuGet"

	// maxSize bounds a .deps.json; those of large applications are a
	// few megabytes.
	maxSize = 64 << 20
	// maxIDLen is NuGet's limit on package ids.
	maxIDLen = 100
	// maxVersionLen bounds a version; real ones are far shorter.
	maxVersionLen = 256
	// ctxCheckEvery is how many libraries are read between checks of the
	// context.
	ctxCheckEvery = 1024
)

// Extractor reads .deps.json files.
type Extractor struct{}

// New returns a .NET extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a .deps.json file. Files of any size
// are required, so that one past the limit is reported by Extract rather
// than passed over.
func (e *Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	base := path.Base(p)
	return mode.IsRegular() && strings.HasSuffix(base, ".deps.json") && base != ".deps.json"
}

// depsFile holds the part of a .deps.json the extractor reads: its
// "libraries" map, keyed "ID/VERSION".
type depsFile struct {
	Libraries map[string]library `json:"libraries"`
}

type library struct {
	Type string `json:"type"`
}

// Extract reads the NuGet packages a .deps.json lists, ordered by id and
// version: JSON objects carry no order.
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
	// The SDK writes no byte order mark, but editors add one.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	var deps depsFile
	if err := json.Unmarshal(data, &deps); err != nil {
		return nil, fmt.Errorf("parsing %q: %v: %w", f.Path, err, extract.ErrMalformed)
	}

	var pkgs []model.Package
	n := 0
	for key, lib := range deps.Libraries {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if lib.Type != "package" {
			continue
		}
		id, version, ok := strings.Cut(key, "/")
		if !ok || !validID(id) || !validVersion(version) {
			continue
		}
		pkgs = append(pkgs, model.Package{
			Name:      id,
			Version:   version,
			Ecosystem: Ecosystem,
			PURL:      packageurl.NewPackageURL(packageurl.TypeNuget, "", id, version, nil, "").ToString(),
			Path:      f.Path,
			Extractor: Name,
		})
	}
	slices.SortFunc(pkgs, func(a, b model.Package) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return pkgs, nil
}

// validID reports whether s is a NuGet package id: letters, digits, ".",
// "-" and "_". The case is kept as the file has it; NuGet ids are
// case-insensitive.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
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

// validVersion reports whether s can be a NuGet version: it starts with a
// digit and holds printable ASCII without spaces or "/".
func validVersion(s string) bool {
	if s == "" || len(s) > maxVersionLen || s[0] < '0' || s[0] > '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '/' {
			return false
		}
	}
	return true
}
