// Package python reads installed Python distributions from their core
// metadata files: METADATA in a *.dist-info directory (pip, wheels),
// PKG-INFO in a *.egg-info or *.egg/EGG-INFO directory (setuptools,
// Debian's python3-* packages), and *.egg-info files (distutils).
//
// It does not read requirements files, lock files (Pipfile.lock,
// poetry.lock, uv.lock) or zipped eggs and wheels.
package python

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	// Name identifies the extractor.
	Name = "language/python"
	// Ecosystem is the OSV ecosystem of Python distributions.
	Ecosystem = "PyPI"

	// maxHeaderSize bounds what is read of a metadata file: its headers,
	// which come before the description. The file may be larger.
	maxHeaderSize = 1 << 20
	// maxFieldLen bounds a name or version; real ones are far shorter.
	maxFieldLen = 256
	// ctxCheckEvery is how many header lines are read between checks of
	// the context.
	ctxCheckEvery = 1024
)

// Extractor reads Python distribution metadata.
type Extractor struct{}

// New returns a Python extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (e *Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (e *Extractor) Version() int { return 0 }

// Required reports whether path is a distribution's metadata file. Files of
// any size are required: only their headers are read.
func (e *Extractor) Required(p string, mode fs.FileMode, _ int64) bool {
	if !mode.IsRegular() {
		return false
	}
	return strings.HasSuffix(p, ".dist-info/METADATA") ||
		strings.HasSuffix(p, ".egg-info/PKG-INFO") ||
		strings.HasSuffix(p, ".egg/EGG-INFO/PKG-INFO") ||
		(strings.HasSuffix(p, ".egg-info") && path.Base(p) != ".egg-info")
}

// Extract reads the distribution's name and version from the metadata
// headers.
func (e *Extractor) Extract(ctx context.Context, f *extract.File) ([]model.Package, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name, version, err := readHeaders(ctx, f)
	if err != nil {
		return nil, err
	}
	return []model.Package{{
		Name:      name,
		Version:   version,
		Ecosystem: Ecosystem,
		PURL:      purl(name, version),
		Path:      f.Path,
		Extractor: Name,
	}}, nil
}

// readHeaders returns the Name and Version headers of a metadata file,
// stopping once both are read or at the blank line that ends the headers.
// The format is that of email messages (RFC 822): indented lines continue
// the previous header, and header names are case-insensitive.
func readHeaders(ctx context.Context, f *extract.File) (name, version string, err error) {
	sc := bufio.NewScanner(io.LimitReader(f.Reader(), maxHeaderSize))
	sc.Buffer(make([]byte, 0, 4096), maxHeaderSize)
	ended := false
	for n := 0; sc.Scan(); n++ {
		if n%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return "", "", err
			}
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" {
			ended = true
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case name == "" && strings.EqualFold(key, "Name"):
			name = strings.TrimSpace(value)
		case version == "" && strings.EqualFold(key, "Version"):
			version = strings.TrimSpace(value)
		}
		if name != "" && version != "" {
			break
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", "", fmt.Errorf("metadata %q has a header line over %d bytes: %w", f.Path, maxHeaderSize, extract.ErrTooLarge)
		}
		return "", "", fmt.Errorf("reading metadata %q: %w", f.Path, err)
	}
	if name == "" || version == "" {
		if !ended && f.Size > maxHeaderSize {
			return "", "", fmt.Errorf("metadata %q has no Name and Version in its first %d bytes: %w", f.Path, maxHeaderSize, extract.ErrTooLarge)
		}
		return "", "", fmt.Errorf("metadata %q has no Name or no Version header", f.Path)
	}
	if !validField(name) || !validField(version) {
		return "", "", fmt.Errorf("metadata %q has an invalid Name %.64q or Version %.64q", f.Path, name, version)
	}
	return name, version, nil
}

// validField reports whether a Name or Version value is short, valid UTF-8
// and free of control characters. The name is kept as declared: PEP 503
// normalization is the matcher's job.
func validField(s string) bool {
	if len(s) > maxFieldLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// purl returns pkg:pypi/NAME@VERSION, the name lower-cased with "_" as "-"
// as the package URL specification asks.
func purl(name, version string) string {
	p := packageurl.NewPackageURL(packageurl.TypePyPi, "", name, version, nil, "")
	if err := p.Normalize(); err != nil {
		return ""
	}
	return p.ToString()
}
