// Package extracttest holds what the extractors' tests share: building an
// extract.File from bytes, and content whose reads fail, for the check
// that every extractor returns a layer's read error as it is (and does not
// take it for malformed data). Only tests import it.
package extracttest

import (
	"bytes"
	"errors"

	"github.com/bulwarkhq/bulwark/internal/extract"
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
