package notification

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/distribution-2.8-push.json with a body the real registry sent")

// capturedBody is the fixture a real docker-registry's notification is
// saved to with -update.
const capturedBody = "testdata/distribution-2.8-push.json"

// receiver is the endpoint the registry notifies: it keeps every body and
// the pushes parsed from it.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	bodies [][]byte
	pushes []Push
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost || !AcceptsContentType(r.Header.Get("Content-Type")) {
		rc.t.Errorf("registry sent %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	pushes, rejected, err := Parse(bytes.NewReader(body), 0)
	if err != nil {
		rc.t.Errorf("Parse of a real notification: %v\n%s", err, body)
	}
	for _, err := range rejected {
		rc.t.Errorf("Parse rejected an event of a real notification: %v\n%s", err, body)
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, body)
	rc.pushes = append(rc.pushes, pushes...)
	rc.mu.Unlock()
}

// waitFor returns the push of digest once it has arrived, and the body
// that carried it.
func (rc *receiver) waitFor(ctx context.Context, digest v1.Hash) (Push, []byte, error) {
	for {
		rc.mu.Lock()
		for _, body := range rc.bodies {
			pushes, _, _ := Parse(bytes.NewReader(body), 0)
			for _, p := range pushes {
				if p.Digest == digest.String() {
					rc.mu.Unlock()
					return p, body, nil
				}
			}
		}
		rc.mu.Unlock()
		select {
		case <-ctx.Done():
			return Push{}, nil, fmt.Errorf("no push notification for %s: %w", digest, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRealRegistryNotifications pushes an image and an index to Debian's
// docker-registry (distribution 2.8) configured to notify an endpoint in
// the test, and parses what it really sends.
func TestRealRegistryNotifications(t *testing.T) {
	testenv.Integration(t)
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		testenv.Missing(t, "docker-registry not found (Debian package docker-registry): %v", err)
	}
	rc := &receiver{t: t}
	endpoint := httptest.NewServer(rc)
	t.Cleanup(endpoint.Close)
	host := startNotifyingRegistry(t, bin, endpoint.URL)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	imgTag, err := name.NewTag(host + "/team.one/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(imgTag, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing %s: %v", imgTag, err)
	}
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	idxTag, err := name.NewTag(host + "/multi:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(idxTag, idx, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing %s: %v", idxTag, err)
	}

	imgDigest, _ := img.Digest()
	idxDigest, _ := idx.Digest()
	idxManifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		digest v1.Hash
		want   Push
	}{
		{"image by tag", imgDigest, Push{Host: host, Repository: "team.one/app", Tag: "v1", MediaType: string(types.DockerManifestSchema2)}},
		{"index by tag", idxDigest, Push{Host: host, Repository: "multi", Tag: "latest", MediaType: string(types.OCIImageIndex)}},
		{"index child by digest", idxManifest.Manifests[0].Digest, Push{Host: host, Repository: "multi", MediaType: string(idxManifest.Manifests[0].MediaType)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, body, err := rc.waitFor(ctx, tt.digest)
			if err != nil {
				t.Fatal(err)
			}
			if got.EventID == "" || time.Since(got.Timestamp) > time.Hour || time.Until(got.Timestamp) > time.Minute {
				t.Errorf("push has event id %q and timestamp %v", got.EventID, got.Timestamp)
			}
			tt.want.Digest = tt.digest.String()
			tt.want.EventID, tt.want.Timestamp = got.EventID, got.Timestamp
			if got != tt.want {
				t.Errorf("push = %+v\nwant %+v\nbody: %s", got, tt.want, body)
			}
			ref, err := got.Reference()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := remote.Head(ref, remote.WithContext(ctx)); err != nil {
				t.Errorf("the notified reference %s does not resolve: %v", ref, err)
			}
			if *update && tt.name == "image by tag" {
				if err := os.WriteFile(capturedBody, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// startNotifyingRegistry runs docker-registry on a free loopback port with
// storage in a temporary directory and notifications to url, and returns
// its host:port. It is stopped, by its PID, when the test ends.
func startNotifyingRegistry(t *testing.T, bin, url string) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	// threshold and backoff keep a failed delivery from stalling the test
	// for the registry's default of minutes.
	yaml := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %q
http:
  addr: %q
notifications:
  endpoints:
    - name: bulwark
      url: %q
      timeout: 1s
      threshold: 1
      backoff: 1s
`, filepath.Join(dir, "storage"), host, url)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting docker-registry: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("docker-registry log:\n%s", log)
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("docker-registry exited: %v\n%s", err, log)
		case <-ctx.Done():
			t.Fatalf("docker-registry did not serve /v2/: %v", errors.Join(ctx.Err(), err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
