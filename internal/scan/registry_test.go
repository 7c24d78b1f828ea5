package scan

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// TestScanImageFromRegistries pushes the fixture image to the in-process
// registry and to a real distribution registry with basic auth, then scans
// it by tag and by digest; and to one with token authentication.
func TestScanImageFromRegistries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *testenv.Registry
	}{
		{"in-process", testenv.InProcessRegistry},
		{"distribution with basic auth", testenv.StartDistribution},
		{"distribution with token auth", testenv.StartDistributionTokenAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := tc.start(t)
			digest := reg.PushTarball(t, "vulnlab/slim:1", slimTar)
			s := testScanner(t)
			opts := RegistryOptions{Insecure: true}
			if reg.Username != "" {
				opts.Auth = reg.Auth()
			}
			for _, ref := range []string{reg.Host + "/vulnlab/slim:1", digest.String()} {
				img, parsed, err := RemoteImage(context.Background(), ref, opts)
				if err != nil {
					t.Fatal(err)
				}
				r, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: parsed.String()})
				if err != nil {
					t.Fatal(err)
				}
				checkSlimReport(t, r)
				if r.Target.Digest != digest.DigestStr() {
					t.Errorf("digest = %s, want %s", r.Target.Digest, digest.DigestStr())
				}
			}
			if reg.Username != "" {
				_, _, err := RemoteImage(context.Background(), reg.Host+"/vulnlab/slim:1",
					RegistryOptions{Insecure: true, Auth: &authn.Basic{Username: reg.Username, Password: "wrong"}})
				if err == nil || !strings.Contains(strings.ToUpper(err.Error()), "UNAUTHORIZED") {
					t.Errorf("wrong password: err = %v, want UNAUTHORIZED", err)
				}
			}
		})
	}
}

// lyingRegistry serves go-containerregistry's registry, except that the
// blob at *lie is altered by alter on the way out.
func lyingRegistry(t *testing.T, lie *string, alter func([]byte) []byte) *testenv.Registry {
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *lie == "" || r.Method != http.MethodGet || r.URL.Path != *lie {
			inner.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		body := alter(rec.Body.Bytes())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return &testenv.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

// TestRegistryLyingAboutLayer serves layer blobs that do not match the
// manifest: the scan must fail with a clear error, not scan them.
func TestRegistryLyingAboutLayer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alter func([]byte) []byte
	}{
		{"other bytes, same size", func(b []byte) []byte {
			out := append([]byte(nil), b...)
			out[len(out)/2] ^= 0xff
			return out
		}},
		{"shorter than the manifest says", func(b []byte) []byte { return b[:len(b)-10] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lie string
			reg := lyingRegistry(t, &lie, tc.alter)
			ref := reg.PushImage(t, "liar/app:1", image(t, layer(t, entry{name: "var/lib/dpkg/status", body: strings.Repeat(dpkgStanza("curl", "7.88.1-10+deb12u5"), 50)})))
			img, _, err := RemoteImage(context.Background(), ref.String(), RegistryOptions{Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			ls, err := img.Layers()
			if err != nil || len(ls) != 1 {
				t.Fatalf("layers: %v %v", ls, err)
			}
			d, _ := ls[0].Digest()
			lie = "/v2/liar/app/blobs/" + d.String()
			_, err = testScanner(t).Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: ref.String()})
			if err == nil || !strings.Contains(err.Error(), d.String()) {
				t.Errorf("scanning a layer that does not match its manifest: err = %v, want an error naming the layer", err)
			}
		})
	}
}
