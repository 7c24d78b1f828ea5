// Package gobinary reads the modules compiled into Go executables from the
// build information the Go toolchain embeds in them (the data `go version
// -m` prints): the main module, every dependency and the standard library
// of the toolchain that built the binary.
//
// It does not read go.mod or go.sum files, and it does not guess versions
// from the contents of binaries built without module information.
package gobinary

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	// Name identifies the extractor.
	Name = "language/gobinary"
	// Ecosystem is the OSV ecosystem of Go modules and the standard library.
	Ecosystem = "Go"
	// StdlibName is the name the Go vulnerability database gives the
	// standard library. Advisories for the go command itself are under
	// "toolchain", which no binary contains.
	StdlibName = "stdlib"

	// maxSize passes over larger executables: few Go programs come near
	// it, and larger files with an execute bit are rarely programs.
	maxSize = 512 << 20
	// develVersion is the version of a module built from a directory: the
	// main module without version control information, or a dependency
	// replaced by a local directory.
	develVersion = "(devel)"
)

// Extractor reads Go executables.
type Extractor struct{}

// New returns a Go binary extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a regular file with an executable bit
// set and at most 512 MiB. Every such file is read, whatever its name: Go
// programs are installed anywhere.
func (e *Extractor) Required(_ string, mode fs.FileMode, size int64) bool {
	return mode.IsRegular() && mode&0o111 != 0 && size > 0 && size <= maxSize
}

// Extract returns the modules and standard library compiled into f. A file
// that is not a Go executable yields no packages and no error; a Go
// executable whose build information cannot be read (a truncated or
// corrupt file) is an error.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.Size > maxSize {
		return nil, fmt.Errorf("executable %q is %d bytes, over %d: %w", f.Path, f.Size, maxSize, extract.ErrTooLarge)
	}
	r := io.NewSectionReader(f.Content, 0, f.Size)
	bi, err := buildinfo.Read(r)
	if err != nil {
		damaged, checkErr := isDamagedGoExecutable(r, err)
		if checkErr != nil {
			return nil, fmt.Errorf("reading %q: %w", f.Path, checkErr)
		}
		if !damaged {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Go build info of %q: %w", f.Path, err)
	}
	return packages(bi, f.Path), nil
}

// packages lists the main module when it has a version, the standard
// library, then the dependencies in the order the binary records them.
func packages(bi *buildinfo.BuildInfo, path string) []model.Package {
	pkgs := make([]model.Package, 0, len(bi.Deps)+2)
	if bi.Main.Path != "" && bi.Main.Version != "" && bi.Main.Version != develVersion {
		pkgs = append(pkgs, module(bi.Main.Path, bi.Main.Version, path))
	}
	if v, ok := stdlibVersion(bi.GoVersion); ok {
		pkgs = append(pkgs, model.Package{
			Name:      StdlibName,
			Version:   v,
			Ecosystem: Ecosystem,
			PURL:      purl(StdlibName, "v"+v),
			Path:      path,
			Extractor: Name,
		})
	}
	for _, dep := range bi.Deps {
		m := resolved(dep)
		if m.Path == "" {
			continue
		}
		pkgs = append(pkgs, module(m.Path, m.Version, path))
	}
	return pkgs
}

// resolved returns the module whose code was compiled in for dep: the
// replacement, when there is one. A replacement by a local directory keeps
// its file path ("../fork") with version "(devel)": no advisory names it,
// as with govulncheck, yet the inventory shows it.
func resolved(dep *debug.Module) *debug.Module {
	if dep.Replace != nil && dep.Replace.Path != "" {
		return dep.Replace
	}
	return dep
}

// module returns the package for a module. OSV records Go versions without
// the leading "v" of module versions; package URLs keep it. A module built
// from a directory has no version, and a file path is no package URL.
func module(modPath, version, path string) model.Package {
	if version == develVersion {
		version = ""
	}
	p := model.Package{
		Name:      modPath,
		Version:   strings.TrimPrefix(version, "v"),
		Ecosystem: Ecosystem,
		Path:      path,
		Extractor: Name,
	}
	if version != "" {
		p.PURL = purl(modPath, version)
	}
	return p
}

// purl returns the package URL of a module. The path keeps its case: module
// paths are case-sensitive ("github.com/Azure/x" and "github.com/azure/x"
// are different modules to the module proxy), as syft and Trivy do too.
func purl(modPath, version string) string {
	ns, name := "", modPath
	if i := strings.LastIndexByte(modPath, '/'); i >= 0 {
		ns, name = modPath[:i], modPath[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
}

// isDamagedGoExecutable tells a Go executable whose build information could
// not be read apart from a file that is not a Go executable at all. The file
// must carry the Go build ID near its start. buildinfo's errors are not
// exported, and it says "not a Go executable" both for a well-formed
// executable without build information (toolchains before Go 1.13) and for
// one cut off before its build information; so that error means damage only
// when the ELF sections run past the end of the file, and any other error
// (the container did not parse) means damage.
//
// The error returned is from reading the file itself, which buildinfo
// folds into its own errors.
func isDamagedGoExecutable(r *io.SectionReader, readErr error) (bool, error) {
	// Most executables in an image are well-formed and not Go: they end
	// here, before the build ID is looked for.
	if readErr.Error() == "not a Go executable" && !truncatedELF(r) {
		return false, nil
	}
	return hasGoBuildID(r)
}

// buildIDPrefixSize is how much of a file the Go toolchain itself searches
// for a build ID (cmd/internal/buildid).
const buildIDPrefixSize = 32 << 10

var (
	// goNoteLE and goNoteBE are the type and name of the ELF note holding
	// the Go build ID (type 4, name "Go").
	goNoteLE = []byte("\x04\x00\x00\x00Go\x00\x00")
	goNoteBE = []byte("\x00\x00\x00\x04Go\x00\x00")
	// goBuildIDText starts the build ID in non-ELF executables.
	goBuildIDText = []byte("\xff Go build ID: \"")
)

func hasGoBuildID(r *io.SectionReader) (bool, error) {
	buf := make([]byte, min(buildIDPrefixSize, r.Size()))
	if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
		return false, err
	}
	return bytes.Contains(buf, goNoteLE) || bytes.Contains(buf, goNoteBE) || bytes.Contains(buf, goBuildIDText), nil
}

// truncatedELF reports whether r is an ELF file whose program or section
// data extends past its end.
func truncatedELF(r *io.SectionReader) bool {
	ef, err := elf.NewFile(r)
	if err != nil {
		return false
	}
	size := uint64(r.Size())
	for _, p := range ef.Progs {
		if p.Off > size || p.Filesz > size-p.Off {
			return true
		}
	}
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		if s.Offset > size || s.FileSize > size-s.Offset {
			return true
		}
	}
	return false
}
