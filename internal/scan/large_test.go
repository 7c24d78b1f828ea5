package scan

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// largeMB is the size of the generated layer the large benchmarks use:
// BULWARK_BENCH_LAYER_MB, 64 by default so `make bench` stays quick; the
// numbers in docs/PERFORMANCE.md use 1024.
func largeMB(b *testing.B) int {
	if v := os.Getenv("BULWARK_BENCH_LAYER_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("BULWARK_BENCH_LAYER_MB=%q is not a positive number", v)
		}
		return n
	}
	return 64
}

// writeLargeLayer writes a gzip layer of about mb MiB, plus a dpkg
// database, and returns its path. The files are the Go toolchain's own
// programs, repeated: real compiled code compresses like the bulk of a
// real image, where random bytes would not compress at all and zeros
// would compress absurdly well.
func writeLargeLayer(b *testing.B, dir string, mb int) string {
	b.Helper()
	path := filepath.Join(dir, fmt.Sprintf("layer-%dmb.tar.gz", mb))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatalf("go env GOROOT: %v", err)
	}
	tools, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(goroot)), "pkg", "tool", runtime.GOOS+"_"+runtime.GOARCH, "*"))
	if err != nil || len(tools) == 0 {
		b.Fatalf("no Go tool binaries to build a layer from: %v", err)
	}
	var written int64
	for i := 0; written < int64(mb)<<20; i++ {
		data, err := os.ReadFile(tools[i%len(tools)])
		if err != nil {
			b.Fatal(err)
		}
		hdr := &tar.Header{Name: fmt.Sprintf("usr/lib/app/%05d/%s", i, filepath.Base(tools[i%len(tools)])), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
		written += int64(len(data))
	}
	status := dpkgStanza("curl", "7.88.1-10+deb12u5")
	if err := tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(status)), Typeflag: tar.TypeReg}); err != nil {
		b.Fatal(err)
	}
	if _, err := tw.Write([]byte(status)); err != nil {
		b.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLayerThroughput compares the scan's layer pipeline (gunzip,
// tar, whiteout bookkeeping, Required checks of every extractor, keeping
// wanted files) with the bare minimum any scanner must do: gunzip the layer
// and walk its tar headers (`gunzip | tar t`). Both run on one goroutine;
// MB/s is of compressed layer data.
func BenchmarkLayerThroughput(b *testing.B) {
	dir := b.TempDir()
	path := writeLargeLayer(b, dir, largeMB(b))
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("gunzip+tar", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			tr := tar.NewReader(zr)
			for {
				if _, err := tr.Next(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
		}
	})
	b.Run("bulwark", func(b *testing.B) {
		s := testScanner(b)
		l, err := tarball.LayerFromFile(path)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(st.Size())
		for b.Loop() {
			r, err := s.newRun()
			if err != nil {
				b.Fatal(err)
			}
			c := &collector{tree: r.tree, work: r.work, wanted: r.wanted, limits: s.limits(), warn: r.warn}
			if err := c.addLayer(context.Background(), l); err != nil {
				b.Fatal(err)
			}
			if _, ok := r.tree.nodes["var/lib/dpkg/status"]; !ok {
				b.Fatal("the dpkg database was not kept")
			}
			r.close()
		}
	})
}

// BenchmarkScanLargeImagePeakMemory runs the real binary on a docker
// archive of the generated layer and reports the process's peak resident
// memory (max RSS) — the number a node with a memory limit cares about.
func BenchmarkScanLargeImagePeakMemory(b *testing.B) {
	dir := b.TempDir()
	mb := largeMB(b)
	layerPath := writeLargeLayer(b, dir, mb)
	l, err := tarball.LayerFromFile(layerPath)
	if err != nil {
		b.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(dir, "large.tar")
	tag, _ := name.NewTag("bench.local/large:1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "bulwark")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/bulwarkhq/bulwark/cmd/bulwark").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	testScanner(b) // builds the test database in dbDir
	var peak int64
	for b.Loop() {
		cmd := exec.Command(bin, "scan", "archive", archive, "--db-dir", dbDir, "--no-cache", "-f", "json", "-o", os.DevNull, "--log-level", "warn")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("bulwark scan: %v\n%s", err, out)
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak {
			peak = ru.Maxrss
		}
	}
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(mb), "image-MiB")
}
