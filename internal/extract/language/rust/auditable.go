package rust

import (
	"bytes"
	"compress/zlib"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	// sectionName is where cargo-auditable puts its data, in every
	// executable format (in the __DATA segment on Mach-O).
	sectionName = ".dep-v0"
	// maxSectionSize bounds the compressed data read from the section, and
	// maxJSONSize the JSON it inflates to. cargo-auditable's own reader
	// refuses JSON past 8 MiB; a program of a thousand crates needs under
	// 100 KiB.
	maxSectionSize = 8 << 20
	maxJSONSize    = 8 << 20
)

// auditData is the JSON cargo-auditable embeds (the VersionInfo of its
// auditable-serde crate).
type auditData struct {
	Packages []auditPackage `json:"packages"`
}

type auditPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Source is "crates.io", "git", "local", "registry" or another
	// string naming where the crate came from.
	Source string `json:"source"`
	// Kind is "build" for crates only used at build time; absent for
	// crates compiled into the executable.
	Kind string `json:"kind"`
}

// readAuditable returns the crates cargo-auditable recorded in an
// executable.
func readAuditable(ctx context.Context, f *extract.File) ([]model.Package, error) {
	r := &readRecorder{r: f.Content}
	section, err := depSection(io.NewSectionReader(r, 0, f.Size))
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("reading %q: %w", f.Path, r.err)
	case errors.Is(err, extract.ErrTooLarge):
		return nil, fmt.Errorf("executable %q: %w", f.Path, err)
	case err != nil:
		return nil, fmt.Errorf("reading the %s section of %q: %v: %w", sectionName, f.Path, err, extract.ErrMalformed)
	case section == nil:
		return nil, nil
	}

	zr, err := zlib.NewReader(bytes.NewReader(section))
	if err != nil {
		return nil, fmt.Errorf("inflating the %s section of %q: %v: %w", sectionName, f.Path, err, extract.ErrMalformed)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("inflating the %s section of %q: %v: %w", sectionName, f.Path, err, extract.ErrMalformed)
	}
	if len(data) > maxJSONSize {
		return nil, fmt.Errorf("the %s section of %q inflates past %d bytes: %w", sectionName, f.Path, maxJSONSize, extract.ErrTooLarge)
	}
	var audit auditData
	if err := json.Unmarshal(data, &audit); err != nil {
		return nil, fmt.Errorf("parsing the %s section of %q: %v: %w", sectionName, f.Path, err, extract.ErrMalformed)
	}

	var pkgs []model.Package
	for i, p := range audit.Packages {
		if i%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if p.Source != "crates.io" || p.Kind == "build" {
			continue
		}
		if pkg, ok := newPackage(p.Name, p.Version, f.Path); ok {
			pkgs = append(pkgs, pkg)
		}
	}
	return pkgs, nil
}

// depSection returns the content of the .dep-v0 section of an ELF, PE or
// Mach-O executable, or nil when r is none of those or has no such
// section: most executables are not Rust programs built with
// cargo-auditable. A file that starts like an executable but does not
// parse is not one either.
func depSection(r *io.SectionReader) ([]byte, error) {
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, nil
	}
	var rs io.ReadSeeker
	var size uint64
	switch {
	case bytes.Equal(magic[:], []byte(elf.ELFMAG)):
		ef, err := elf.NewFile(r)
		if err != nil {
			return nil, nil
		}
		s := ef.Section(sectionName)
		if s == nil || s.Type == elf.SHT_NOBITS {
			return nil, nil
		}
		rs, size = s.Open(), s.Size
	case magic[0] == 'M' && magic[1] == 'Z':
		pf, err := pe.NewFile(r)
		if err != nil {
			return nil, nil
		}
		s := pf.Section(sectionName)
		if s == nil {
			return nil, nil
		}
		rs, size = s.Open(), uint64(s.Size)
	case isMachO(magic):
		s := machoSection(r)
		if s == nil {
			return nil, nil
		}
		rs, size = s.Open(), s.Size
	default:
		return nil, nil
	}
	if size > maxSectionSize {
		return nil, fmt.Errorf("%s section is %d bytes, over %d: %w", sectionName, size, maxSectionSize, extract.ErrTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(rs, int64(size)))
	if err != nil {
		return nil, err
	}
	return data, nil
}

// isMachO reports whether magic starts a Mach-O file, 32 or 64-bit in
// either byte order, or a universal binary.
func isMachO(magic [4]byte) bool {
	switch magic {
	case [4]byte{0xfe, 0xed, 0xfa, 0xce}, [4]byte{0xfe, 0xed, 0xfa, 0xcf},
		[4]byte{0xce, 0xfa, 0xed, 0xfe}, [4]byte{0xcf, 0xfa, 0xed, 0xfe},
		[4]byte{0xca, 0xfe, 0xba, 0xbe}:
		return true
	}
	return false
}

// machoSection finds the section in a Mach-O file, or in the first
// architecture of a universal binary that has it. 0xcafebabe starts Java
// class files too; those do not parse.
func machoSection(r *io.SectionReader) *macho.Section {
	if mf, err := macho.NewFile(r); err == nil {
		return mf.Section(sectionName)
	}
	ff, err := macho.NewFatFile(r)
	if err != nil {
		return nil
	}
	for _, arch := range ff.Arches {
		if s := arch.Section(sectionName); s != nil {
			return s
		}
	}
	return nil
}

// readRecorder keeps the first error of the reader it wraps other than
// io.EOF, so that a failing layer is not taken for a file that is not an
// executable: debug/elf and the others fold read errors into their own.
type readRecorder struct {
	r   io.ReaderAt
	err error
}

func (r *readRecorder) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
