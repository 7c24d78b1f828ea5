package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// rssMB reads this process's resident set size.
func rssMB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkRegistryScanThroughput runs the server in this process against
// a local registry holding 20 distinct images (the fixture image, each
// with one extra random layer, so the base layers come from the layer
// cache after the first) and measures images scanned per minute from
// adding the registry to the last image stored, and the process's RSS
// idle and after the load. The registry's rate limit is raised to 1,000
// requests/s so the number is the scanner's, not the default limit's.
func BenchmarkRegistryScanThroughput(b *testing.B) {
	const images = 20
	for b.Loop() {
		reg := testenv.InProcessRegistry(b)
		host := reg.Host
		slim, err := tarball.ImageFromPath(filepath.Join("..", "..", "testdata", "images", "slim.tar"), nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < images; i++ {
			layer, _ := random.Layer(4096, "application/vnd.docker.image.rootfs.diff.tar.gzip")
			img, err := mutate.AppendLayers(slim, layer)
			if err != nil {
				b.Fatal(err)
			}
			reg.PushImage(b, fmt.Sprintf("app%d:v1", i), img)
		}
		dataDir := b.TempDir()
		w, err := vulndb.Create(filepath.Join(dataDir, "vulndb"))
		if err != nil {
			b.Fatal(err)
		}
		if err := vulndb.Import(context.Background(), w, filepath.Join("..", "..", "testdata", "osv")); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		var tok [32]byte
		rand.Read(tok[:])
		token := "bwk_" + hex.EncodeToString(tok[:])
		ctx, cancel := context.WithCancel(context.Background())
		addrc := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{DataDir: dataDir, Listen: "127.0.0.1:0", AdminToken: token, Workers: 2, Ready: func(a string) { addrc <- a }})
		}()
		addr := <-addrc
		time.Sleep(time.Second)
		idle := rssMB(b)

		call := func(method, path string, body any, out any) {
			var rd io.Reader
			if body != nil {
				data, _ := json.Marshal(body)
				rd = bytes.NewReader(data)
			}
			req, _ := http.NewRequest(method, "http://"+addr+path, rd)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			if out != nil {
				json.NewDecoder(resp.Body).Decode(out)
			}
		}
		start := time.Now()
		call("POST", "/api/v1/registries", map[string]any{"name": "local", "type": "oci", "url": host, "insecure": true, "rateLimit": 1000}, nil)
		for {
			var page struct {
				Items []struct{ ScannedAt *time.Time }
			}
			call("GET", "/api/v1/images?scanned=true&limit=1000", nil, &page)
			if len(page.Items) == images {
				break
			}
			if time.Since(start) > 10*time.Minute {
				b.Fatalf("only %d of %d images scanned in 10 minutes", len(page.Items), images)
			}
			time.Sleep(50 * time.Millisecond)
		}
		took := time.Since(start)
		loaded := rssMB(b)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(images)/took.Minutes(), "images/min")
		b.ReportMetric(idle, "rss-idle-MB")
		b.ReportMetric(loaded, "rss-loaded-MB")
	}
}
