package scan

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// countingLayer counts how often a layer's content is read.
type countingLayer struct {
	v1.Layer
	reads *atomic.Int32
}

func (l countingLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}

func (l countingLayer) Compressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Compressed()
}

func packageKeys(r *model.Report) []string {
	var out []string
	for _, p := range r.Packages {
		out = append(out, p.Path+" "+p.Name+" "+p.Version+" "+p.Ecosystem+" "+p.Layer)
	}
	slices.Sort(out)
	return out
}

func findingKeys(r *model.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Package.Path+" "+f.Package.Name+" "+f.VulnerabilityID+" "+f.FixedVersion)
	}
	slices.Sort(out)
	return out
}

func TestLayerCacheSkipsLayersSeenBefore(t *testing.T) {
	img, err := tarball.ImageFromPath(slimTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int32
	counted := image(t, countingLayer{layers[0], &reads})
	cache, err := NewLayerCache(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s := testScanner(t)
	s.Cache = cache
	first, err := s.Image(context.Background(), counted, model.Target{Kind: model.TargetImage, Name: "slim"})
	if err != nil {
		t.Fatal(err)
	}
	afterFirst := reads.Load()
	if afterFirst == 0 {
		t.Fatal("the first scan did not read the layer")
	}
	second, err := s.Image(context.Background(), counted, model.Target{Kind: model.TargetImage, Name: "slim"})
	if err != nil {
		t.Fatal(err)
	}
	if n := reads.Load() - afterFirst; n != 0 {
		t.Errorf("the second scan read the layer %d times, want 0", n)
	}
	if diff := cmp.Diff(packageKeys(first), packageKeys(second)); diff != "" {
		t.Errorf("packages differ from cache (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(findingKeys(first), findingKeys(second)); diff != "" {
		t.Errorf("findings differ from cache (-first +second):\n%s", diff)
	}
	checkSlimReport(t, second)
}

// TestLayerCacheAcrossImages reuses a cached upper layer over a different
// lower layer: what the upper layer overwrites or deletes must be computed
// against the new lower layer.
func TestLayerCacheAcrossImages(t *testing.T) {
	lock := func(v string) string {
		return `{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"` + v + `"}}}`
	}
	upper := layer(t,
		entry{name: "srv/a/package-lock.json", body: lock("4.17.21")},
		entry{name: "srv/b/.wh.package-lock.json"},
	)
	lowerA := layer(t, entry{name: "srv/c/package-lock.json", body: lock("4.17.15")})
	lowerB := layer(t,
		entry{name: "srv/a/package-lock.json", body: lock("4.17.15")},
		entry{name: "srv/b/package-lock.json", body: lock("4.17.15")},
	)
	cache, err := NewLayerCache(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	cached := testScanner(t)
	cached.Cache = cache
	plain := testScanner(t)
	for _, img := range []v1.Image{image(t, lowerA, upper), image(t, lowerB, upper)} {
		want, err := plain.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := cached.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(packageKeys(want), packageKeys(got)); diff != "" {
			t.Errorf("with cache (-without +with):\n%s", diff)
		}
	}
}

func TestLayerCacheDamagedEntryIsAMiss(t *testing.T) {
	dir := t.TempDir()
	cache, err := NewLayerCache(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := testScanner(t)
	s.Cache = cache
	img, err := tarball.ImageFromPath(slimTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "slim"}); err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(dir, "*", "*", "[0-9]*"))
	if len(blobs) == 0 {
		t.Fatal("nothing cached")
	}
	for _, b := range blobs {
		os.Remove(b)
	}
	r, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "slim"})
	if err != nil {
		t.Fatal(err)
	}
	checkSlimReport(t, r)
}

func TestLayerCacheEviction(t *testing.T) {
	dir := t.TempDir()
	cache, err := NewLayerCache(dir, 1) // smaller than any entry
	if err != nil {
		t.Fatal(err)
	}
	s := testScanner(t)
	s.Cache = cache
	img, err := tarball.ImageFromPath(slimTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "slim"}); err != nil {
		t.Fatal(err)
	}
	if idx, _ := filepath.Glob(filepath.Join(dir, "*", "*", "index.json.gz")); len(idx) != 0 {
		t.Errorf("entries left over the size limit: %v", idx)
	}
}
