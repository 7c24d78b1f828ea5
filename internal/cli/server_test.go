package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// syncBuffer is a bytes.Buffer safe to write from the server's goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newRecord is an advisory the database did not have: every glibc in
// Debian 12 is affected, so a re-match must find it in the fixture image.
const newRecord = `{"schema_version":"1.6.0","id":"DSA-9999-1","modified":"2026-11-25T00:00:00Z","published":"2026-11-25T00:00:00Z",
"summary":"test advisory added after the first scan",
"affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"99.0-1"}]}]}]}`

// TestServerEndToEnd runs `bulwark server` as a user would, on SQLite and
// on PostgreSQL: a registry is added with `bulwark registry add`, the
// fixture image in it is scanned on its own, its findings come back
// through the API and `bulwark findings`, and a new advisory imported
// into the database changes the findings without the image being pulled
// again.
func TestServerEndToEnd(t *testing.T) {
	testenv.Integration(t)
	t.Run("sqlite", func(t *testing.T) { serverEndToEnd(t, "") })
	t.Run("postgres", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		serverEndToEnd(t, pg.Database(t))
	})
}

func serverEndToEnd(t *testing.T, database string) {
	reg := testenv.InProcessRegistry(t)
	slimTar := filepath.Join("..", "..", "testdata", "images", "slim.tar")
	reg.PushTarball(t, "app/slim:1.0", slimTar)
	reg.PushTarball(t, "app/slim:latest", slimTar)
	other, _ := random.Image(512, 2)
	reg.PushImage(t, "other/random:v1", other)

	dataDir := t.TempDir()
	dbDir := filepath.Join(dataDir, "vulndb")
	w, err := vulndb.Create(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(t.Context(), w, filepath.Join("..", "..", "testdata", "osv")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}

	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var b [32]byte
	rand.Read(b[:])
	token := "bwk_" + hex.EncodeToString(b[:])
	rand.Read(b[:])
	env := map[string]string{"BULWARK_ADMIN_TOKEN": token, "BULWARK_SECRET_KEY": hex.EncodeToString(b[:]),
		"BULWARK_TOKEN": token, "BULWARK_SERVER": "http://" + addr}

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- runContext(ctx, []string{"server", "--listen", addr, "--data-dir", dataDir, "--database", database, "--log-level", "debug"},
			&logs, &logs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-exited:
			if code != ExitOK {
				t.Errorf("server exited %d", code)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop within 30s")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})

	get := func(path string, out any) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the server to be ready", 60*time.Second, func() bool { return get("/readyz", nil) == 200 })

	code, out, errOut := runCLI(t, env, "registry", "add", "local", "--type", "oci", "--url", reg.Host, "--insecure")
	if code != ExitOK {
		t.Fatalf("registry add: exit %d: %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, env, "registry", "list")
	if code != ExitOK || !strings.Contains(out, "local") || !strings.Contains(out, reg.Host) {
		t.Errorf("registry list: exit %d:\n%s", code, out)
	}

	type findings struct {
		Items []struct {
			Vulnerability string   `json:"vulnerability"`
			Aliases       []string `json:"aliases"`
			Package       string   `json:"package"`
			ImageDigest   string   `json:"imageDigest"`
		} `json:"items"`
	}
	has := func(vuln string) bool {
		var f findings
		return get("/api/v1/findings?vulnerability="+vuln, &f) == 200 && len(f.Items) > 0
	}
	waitFor("the fixture image's findings", 3*time.Minute, func() bool { return has("CVE-2025-4802") })
	for _, want := range []string{"CVE-2024-2398", "GHSA-35jh-r3h4-6jhm", "GO-2023-2102"} {
		if !has(want) {
			t.Errorf("finding %s missing", want)
		}
	}
	// Both digests (the fixture under two tags, and the random image)
	// scanned and nothing left in the queue: the registry's part is done.
	waitFor("pulls to settle", time.Minute, func() bool {
		var scannedImages struct{ Items []struct{ Digest string } }
		get("/api/v1/images?scanned=true", &scannedImages)
		var s struct{ Items []struct{ Status string } }
		get("/api/v1/scans?status=queued", &s)
		q := len(s.Items)
		get("/api/v1/scans?status=running", &s)
		return len(scannedImages.Items) == 2 && q == 0 && len(s.Items) == 0
	})
	// One image under two tags: one digest, scanned once.
	var imgs struct {
		Items []struct {
			Digest string `json:"digest"`
			Refs   []struct{ Repository, Tag string }
		} `json:"items"`
	}
	get("/api/v1/images?repository=app/slim", &imgs)
	if len(imgs.Items) != 1 || len(imgs.Items[0].Refs) != 2 {
		t.Errorf("app/slim images = %+v, want one digest seen under two tags", imgs.Items)
	}
	code, out, errOut = runCLI(t, env, "findings", "--vulnerability", "CVE-2025-4802", "-f", "json")
	if code != ExitOK || !strings.Contains(out, `"libc6"`) {
		t.Errorf("bulwark findings: exit %d: %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, env, "images")
	if code != ExitOK || !strings.Contains(out, "app/slim") {
		t.Errorf("bulwark images: exit %d:\n%s", code, out)
	}

	// A database update re-matches the stored packages: no layer is
	// downloaded again.
	blobs := reg.BlobGets()
	recordDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(recordDir, "DSA-9999-1.json"), []byte(newRecord), 0o644); err != nil {
		t.Fatal(err)
	}
	uw, err := vulndb.Update(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(t.Context(), uw, recordDir); err != nil {
		t.Fatal(err)
	}
	if err := uw.Commit(); err != nil {
		t.Fatal(err)
	}
	waitFor("the new advisory to reach the findings", 2*time.Minute, func() bool { return has("DSA-9999-1") })
	if got := reg.BlobGets(); got != blobs {
		t.Errorf("the re-match downloaded %d blobs; it should read the stored packages", got-blobs)
	}
	var metrics string
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		metrics = buf.String()
	}
	for _, m := range []string{"bulwark_scans_total", "bulwark_http_request_duration_seconds", "bulwark_scan_queue_depth"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	stop()
}
