package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// Limits on what one outermost archive may cost. Archives are hostile: a
// zip bomb inflates a small entry into gigabytes, a quine or an archive
// whose entries overlap repeats itself at every level, and a central
// directory of millions of entries costs memory before any entry is read.
const (
	// maxNesting is how many archives deep nested archives are read: an
	// ear's war's jar is two.
	maxNesting = 3
	// maxNestedSize bounds one nested archive. A compressed one is read
	// into memory.
	maxNestedSize = 64 << 20
	// maxOpenedBytes bounds the bytes of entries read, decompressed or
	// not, across an archive and everything nested in it.
	maxOpenedBytes = 512 << 20
	// maxDirectorySize bounds the central directory of each archive; the
	// largest real ones (shaded jars of 100 000 classes) are near 10 MiB.
	maxDirectorySize = 32 << 20
	// directoryEndSearch is what archive/zip reads to find the end of the
	// central directory, at most, with room for a zip64 locator.
	directoryEndSearch = 128 << 10

	maxPomPropertiesSize = 64 << 10
	maxManifestSize      = 1 << 20

	// maxErrors bounds the errors kept for one archive tree; a hostile
	// archive can have a million damaged entries.
	maxErrors = 8
	// ctxCheckEvery is how many entries are looked at between checks of
	// the context.
	ctxCheckEvery = 256
)

// limits are the bounds a walker applies; tests lower them.
type limits struct {
	nesting       int
	nestedSize    uint64
	openedBytes   int64
	directorySize int64
}

var defaultLimits = limits{
	nesting:       maxNesting,
	nestedSize:    maxNestedSize,
	openedBytes:   maxOpenedBytes,
	directorySize: maxDirectorySize,
}

// walker reads one outermost archive and the archives nested in it,
// collecting the errors met on the way.
type walker struct {
	limits
	// budget is what is left of limits.openedBytes.
	budget    int64
	exhausted bool
	errs      []error
	dropped   int
}

func newWalker(l limits) *walker { return &walker{limits: l, budget: l.openedBytes} }

func (w *walker) fail(err error) {
	if len(w.errs) < maxErrors {
		w.errs = append(w.errs, err)
		return
	}
	w.dropped++
}

func (w *walker) err() error {
	errs := w.errs
	if w.dropped > 0 {
		errs = append(errs, fmt.Errorf("%d more errors", w.dropped))
	}
	return errors.Join(errs...)
}

// take charges n bytes to the budget, reporting false, and stopping the
// walk, once the budget is spent.
func (w *walker) take(n uint64, name string) bool {
	if w.exhausted {
		return false
	}
	if n > uint64(w.budget) {
		w.exhausted = true
		w.fail(fmt.Errorf("archive %q: more than %d bytes of entries to read; the rest of the archive was not read: %w",
			name, w.openedBytes, extract.ErrTooLarge))
		return false
	}
	w.budget -= int64(n)
	return true
}

// source is an archive's content as archive/zip reads it. While the
// central directory is read it counts the bytes read, to bound the
// directory; and it keeps the first error of the underlying reader, so that
// a failing layer is not reported as a damaged archive.
type source struct {
	r io.ReaderAt
	// left is what may still be read of the directory; negative once the
	// directory has been read.
	left     int64
	exceeded bool
	err      error
}

var errDirectoryTooLarge = errors.New("central directory too large")

func (s *source) ReadAt(p []byte, off int64) (int, error) {
	if s.left >= 0 {
		if int64(len(p)) > s.left {
			s.exceeded = true
			return 0, errDirectoryTooLarge
		}
		s.left -= int64(len(p))
	}
	n, err := s.r.ReadAt(p, off)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// failure returns the error for a failed read of name: the underlying
// reader's, when it failed, or damage in the archive.
func (s *source) failure(what, name string, err error) error {
	if s.err != nil {
		return fmt.Errorf("reading %s %q: %w", what, name, s.err)
	}
	return fmt.Errorf("reading %s %q: %v: %w", what, name, err, extract.ErrMalformed)
}

// archive returns the packages of the archive r holds and of the archives
// nested in it. name is the archive's path for packages and errors:
// "app.war" at the top, "app.war!/WEB-INF/lib/x.jar" nested. depth counts
// the archives r is nested in.
func (w *walker) archive(ctx context.Context, r io.ReaderAt, size int64, name string, depth int) []model.Package {
	src := &source{r: r, left: w.directorySize + directoryEndSearch}
	zr, err := zip.NewReader(src, size)
	if err != nil {
		if src.exceeded {
			w.fail(fmt.Errorf("archive %q has a central directory over %d bytes: %w", name, w.directorySize, extract.ErrTooLarge))
		} else {
			w.fail(src.failure("archive", name, err))
		}
		return nil
	}
	src.left = -1

	var own, nested []model.Package
	// seen holds own's names and versions: shaded jars can copy one
	// artifact's pom.properties more than once.
	seen := make(map[[2]string]bool)
	var manifest *zip.File
	for i, f := range zr.File {
		if i%ctxCheckEvery == 0 && ctx.Err() != nil {
			return nil
		}
		if w.exhausted {
			break
		}
		switch {
		case isPomProperties(f.Name):
			if p, ok := w.pomProperties(src, f, name); ok && !seen[[2]string{p.Name, p.Version}] {
				seen[[2]string{p.Name, p.Version}] = true
				own = append(own, p)
			}
		case manifest == nil && strings.EqualFold(f.Name, manifestName):
			manifest = f
		case isArchive(f.Name) && !strings.HasSuffix(f.Name, "/"):
			nested = append(nested, w.nested(ctx, src, size, f, name, depth)...)
		}
	}
	if len(own) == 0 && !w.exhausted {
		if p, ok := w.fromManifest(src, manifest, name); ok {
			own = append(own, p)
		}
	}
	return append(own, nested...)
}

// nested returns the packages of the archive in entry f of the archive src
// holds.
func (w *walker) nested(ctx context.Context, src *source, parentSize int64, f *zip.File, parent string, depth int) []model.Package {
	name := parent + "!/" + displayName(f.Name)
	if depth >= w.nesting {
		w.fail(fmt.Errorf("archive %q is nested in more than %d archives; not read: %w", name, w.nesting, extract.ErrTooLarge))
		return nil
	}
	size := f.UncompressedSize64
	if size > w.nestedSize {
		w.fail(fmt.Errorf("archive %q is %d bytes, over %d; not read: %w", name, size, w.nestedSize, extract.ErrTooLarge))
		return nil
	}
	if !w.take(size, name) {
		return nil
	}
	var r io.ReaderAt
	if f.Method == zip.Store && f.Flags&0x1 == 0 {
		// Stored uncompressed, as in Spring Boot's executable jars: read it
		// in place.
		off, err := f.DataOffset()
		if err != nil {
			w.fail(src.failure("archive", name, err))
			return nil
		}
		if f.CompressedSize64 != size || off < 0 || uint64(off) > uint64(parentSize) || size > uint64(parentSize-off) {
			w.fail(fmt.Errorf("archive %q: stored entry runs past its archive: %w", name, extract.ErrMalformed))
			return nil
		}
		r = io.NewSectionReader(src, off, int64(size))
	} else {
		data, err := readEntry(src, f, int64(size), "archive", name)
		if err != nil {
			w.fail(err)
			return nil
		}
		r = bytes.NewReader(data)
	}
	return w.archive(ctx, r, int64(size), name, depth+1)
}

// maxDeflateRatio is above what deflate can inflate a stream to, 1032
// times its size: an entry claiming more is lying about its size.
const maxDeflateRatio = 1100

// readEntry reads the first n bytes of f, and when that is all of f, checks
// its checksum too. The caller has bounded n.
func readEntry(src *source, f *zip.File, n int64, what, name string) ([]byte, error) {
	if f.Method == zip.Deflate && f.UncompressedSize64 > 1<<10 && f.UncompressedSize64/maxDeflateRatio > f.CompressedSize64 {
		return nil, fmt.Errorf("%s %q claims %d bytes deflated from %d: %w", what, name, f.UncompressedSize64, f.CompressedSize64, extract.ErrMalformed)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, src.failure(what, name, err)
	}
	defer rc.Close()
	data := make([]byte, n)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, src.failure(what, name, err)
	}
	if uint64(n) == f.UncompressedSize64 {
		// The checksum is verified at the end of the entry.
		if _, err := rc.Read(make([]byte, 1)); err != io.EOF {
			if err == nil {
				err = errors.New("entry longer than its header says")
			}
			return nil, src.failure(what, name, err)
		}
	}
	return data, nil
}

// displayName makes an entry name fit for a package's path and for
// messages: names in a hostile archive can hold anything.
func displayName(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, s)
}
