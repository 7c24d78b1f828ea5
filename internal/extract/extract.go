// Package extract defines how package extractors plug into a scan. An
// extractor says which files it wants from the paths and sizes alone, so a
// scan reads nothing else from an image, and then reads packages from each
// file it asked for. The extractors themselves live in subpackages, one per
// ecosystem; extract/list names the ones Bulwark ships.
//
// Extractors treat file contents as hostile: they bound what they read,
// return an error naming the file for input they cannot parse, and never
// panic.
package extract

import (
	"context"
	"errors"
	"io"
	"io/fs"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Extractor reads installed packages of one kind.
type Extractor interface {
	// Name identifies the extractor, for example "os/dpkg".
	Name() string
	// Version changes whenever the extractor's output for the same input
	// changes, so cached results of older versions are not reused.
	Version() int
	// Required reports whether the file at path holds packages for this
	// extractor. path is slash-separated and relative to the root, without
	// a leading slash ("var/lib/dpkg/status").
	Required(path string, mode fs.FileMode, size int64) bool
	// Extract reads the packages in one required file.
	Extract(ctx context.Context, f *File) ([]model.Package, error)
}

// File is one file an extractor asked for.
type File struct {
	// Path is slash-separated and relative to the root.
	Path string
	Size int64
	// Content reads the file; Size bytes are available.
	Content io.ReaderAt
	// OS is the operating system the root holds, or nil when none was
	// detected.
	OS *OS
}

// Reader returns a reader over the whole file.
func (f *File) Reader() io.Reader { return io.NewSectionReader(f.Content, 0, f.Size) }

// OS is the operating system of a root filesystem, from its os-release.
type OS struct {
	// ID is os-release's ID: "debian", "ubuntu", "alpine", "rhel".
	ID string
	// VersionID is os-release's VERSION_ID: "12", "22.04", "3.19.1".
	VersionID string
	// PrettyName is for display.
	PrettyName string
}

// ErrMalformed is wrapped by the errors extractors return for input they
// cannot parse in whole or part. Extract may return the packages it could
// read together with such an error.
var ErrMalformed = errors.New("malformed package data")

// ErrTooLarge is returned for files past an extractor's size limit.
var ErrTooLarge = errors.New("file too large")
