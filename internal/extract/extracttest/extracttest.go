// Package extracttest holds what the extractors' tests share: building an
// extract.File from bytes, and content whose reads fail, for the check
// that every extractor returns a layer's read error as it is (and does not
// take it for malformed data). Only tests import it.
package extracttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// ErrLayer is the error FailingContent's reads return.
var ErrLayer = errors.New("layer read failed")

// FailingContent is file content whose every read fails with ErrLayer, as
// a layer stream that breaks off would.
type FailingContent struct{}

// ReadAt implements io.ReaderAt.
func (FailingContent) ReadAt([]byte, int64) (int, error) { return 0, ErrLayer }

// File returns an extract.File at path holding content.
func File(path string, content []byte) *extract.File {
	return &extract.File{Path: path, Size: int64(len(content)), Content: bytes.NewReader(content)}
}

// ExtractTree runs e over every file under root that it requires, as a
// scan of that directory would, with paths relative to root, and returns
// what it found. Any error fails the test.
func ExtractTree(t testing.TB, e extract.Extractor, root string) []model.Package {
	t.Helper()
	var got []model.Package
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !e.Required(rel, info.Mode(), info.Size()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		pkgs, err := e.Extract(context.Background(), File(rel, b))
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		got = append(got, pkgs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// FileOn returns an extract.File at path holding content, in a root whose
// operating system is o (nil: none detected).
func FileOn(path string, content []byte, o *extract.OS) *extract.File {
	f := File(path, content)
	f.OS = o
	return f
}

// Fixture reads testdata/name (slash-separated) of the calling package.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
