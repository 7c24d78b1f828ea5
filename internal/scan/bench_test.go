package scan

import (
	"context"
	"os"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// BenchmarkScanArchive scans the fixture image (3.4 MB docker archive, one
// layer) end to end: read, extract, match against Debian, Go and npm data.
func BenchmarkScanArchive(b *testing.B) {
	s := testScanner(b)
	st, err := os.Stat(slimTar)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		img, err := ArchiveImage(slimTar, b.TempDir(), "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetArchive, Name: slimTar}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanArchiveWarmCache scans the fixture image with its layer in
// the layer cache: only the archive's manifest is read.
func BenchmarkScanArchiveWarmCache(b *testing.B) {
	s := testScanner(b)
	cache, err := NewLayerCache(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	s.Cache = cache
	img, err := ArchiveImage(slimTar, b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetArchive, Name: slimTar}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		img, err := ArchiveImage(slimTar, b.TempDir(), "")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetArchive, Name: slimTar}); err != nil {
			b.Fatal(err)
		}
	}
}
