package update

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// importedDB builds a database of fixture exports in a new directory.
func importedDB(t *testing.T, ecosystems ...string) string {
	t.Helper()
	dir := t.TempDir()
	w, err := vulndb.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, eco := range ecosystems {
		if err := vulndb.Import(t.Context(), w, filepath.Join("..", "..", "..", "testdata", "osv", eco, "all.zip")); err != nil {
			w.Abort()
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func registryOpts(r *testenv.Registry) RegistryOptions {
	return RegistryOptions{Auth: r.Auth()}
}

func TestPushPull(t *testing.T) {
	registries := map[string]func(testing.TB) *testenv.Registry{
		"in-process":   testenv.InProcessRegistry,
		"distribution": testenv.StartDistribution,
	}
	src := importedDB(t, "npm", "Debian")
	want := dbStatus(t, src)
	for name, start := range registries {
		t.Run(name, func(t *testing.T) {
			reg := start(t)
			ref := reg.Host + "/bulwark/vulndb:latest"
			pushed, err := Push(t.Context(), src, ref, registryOpts(reg))
			if err != nil {
				t.Fatal(err)
			}
			if pushed.Config.Schema != BundleSchema || !pushed.Config.Built.Equal(want.Built) || len(pushed.Config.Ecosystems) != len(want.Ecosystems) {
				t.Errorf("pushed config %+v, want the database's status", pushed.Config)
			}
			checkBundleManifest(t, reg, pushed.Ref)

			dst := filepath.Join(t.TempDir(), "db") // does not exist yet
			pulled, err := Pull(t.Context(), dst, ref, registryOpts(reg))
			if err != nil {
				t.Fatal(err)
			}
			if pulled.Ref != pushed.Ref {
				t.Errorf("pulled %s, pushed %s", pulled.Ref, pushed.Ref)
			}
			got := dbStatus(t, dst)
			if diff := cmp.Diff(want.Ecosystems, got.Ecosystems); diff != "" {
				t.Errorf("pulled database (-pushed +pulled):\n%s", diff)
			}
			if got.Records != want.Records || !got.Built.Equal(want.Built) {
				t.Errorf("pulled %d records built %s, pushed %d built %s", got.Records, got.Built, want.Records, want.Built)
			}
			if l := leftovers(t, dst); len(l) > 0 {
				t.Errorf("left behind %v", l)
			}
			if l := leftovers(t, src); len(l) > 0 {
				t.Errorf("push left behind %v", l)
			}
			if reg.Username != "" {
				_, err := Pull(t.Context(), t.TempDir(), ref, RegistryOptions{})
				if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "UNAUTHORIZED") {
					t.Errorf("pull without credentials: %v, want an authentication error", err)
				}
			}
		})
	}
}

// checkBundleManifest checks the media types a pushed bundle has in the
// registry.
func checkBundleManifest(t *testing.T, reg *testenv.Registry, ref string) {
	t.Helper()
	desc, err := remote.Get(reg.Ref(t, strings.TrimPrefix(ref, reg.Host+"/")), reg.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{string(desc.MediaType), m.ArtifactType, string(m.Config.MediaType), string(m.Layers[0].MediaType)}
	want := []string{string(types.OCIManifestSchema1), ConfigMediaType, ConfigMediaType, LayerMediaType}
	if diff := cmp.Diff(want, got); diff != "" || len(m.Layers) != 1 {
		t.Errorf("manifest media types (-want +got):\n%s", diff)
	}
}

// pushArtifact pushes a one-layer artifact with the given config and layer
// contents and media types.
func pushArtifact(t *testing.T, reg *testenv.Registry, repoTag string, config []byte, configType types.MediaType, layer []byte, layerType types.MediaType) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "layer")
	if err := os.WriteFile(path, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	h, size, err := v1.SHA256(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	img, err := newBundleImage(config, configType, &fileLayer{path: path, digest: h, size: size, mediaType: layerType}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg.PushImage(t, repoTag, img)
	return reg.Host + "/" + repoTag
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPullRejectsBadBundles(t *testing.T) {
	reg := testenv.InProcessRegistry(t)
	src := importedDB(t, "npm")
	dbFile, err := os.ReadFile(filepath.Join(src, vulndb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	st := dbStatus(t, src)
	config, err := json.Marshal(BundleConfig{Schema: BundleSchema, Built: st.Built, Ecosystems: st.Ecosystems})
	if err != nil {
		t.Fatal(err)
	}
	good := gzipped(t, dbFile)
	image, err := testenv.ImageFromDir(src)
	if err != nil {
		t.Fatal(err)
	}
	reg.PushImage(t, "plain/image:1", image)

	tests := []struct {
		name    string
		ref     string
		maxSize int64
		wantErr string
		// isBundle is set for bundles whose content, not their form, is bad.
		isBundle bool
	}{
		{name: "container image", ref: reg.Host + "/plain/image:1", wantErr: `manifest media type "application/vnd.docker.distribution.manifest.v2+json"`},
		{name: "wrong config media type", ref: pushArtifact(t, reg, "bad/config:1", config, "application/vnd.example.config+json", good, LayerMediaType), wantErr: `config media type "application/vnd.example.config+json"`},
		{name: "wrong layer media type", ref: pushArtifact(t, reg, "bad/layer:1", config, ConfigMediaType, good, "application/vnd.oci.image.layer.v1.tar+gzip"), wantErr: `layer media type "application/vnd.oci.image.layer.v1.tar+gzip"`},
		{name: "newer bundle format", ref: pushArtifact(t, reg, "bad/schema:1", []byte(`{"schema":2}`), ConfigMediaType, good, LayerMediaType), wantErr: "bundle format 2, this version of bulwark reads 1", isBundle: true},
		{name: "garbage layer", ref: pushArtifact(t, reg, "bad/garbage:1", config, ConfigMediaType, []byte("not gzip at all"), LayerMediaType), wantErr: "layer is not gzip", isBundle: true},
		{name: "truncated layer", ref: pushArtifact(t, reg, "bad/truncated:1", config, ConfigMediaType, good[:len(good)/2], LayerMediaType), wantErr: "unexpected EOF", isBundle: true},
		{name: "not a database", ref: pushArtifact(t, reg, "bad/notdb:1", config, ConfigMediaType, gzipped(t, bytes.Repeat([]byte("x"), 64<<10)), LayerMediaType), wantErr: "checking database of bundle", isBundle: true},
		{name: "counts differ", ref: pushArtifact(t, reg, "bad/counts:1", []byte(`{"schema":1,"ecosystems":[{"ecosystem":"npm","records":99}]}`), ConfigMediaType, good, LayerMediaType), wantErr: "its bundle config says map[npm:99]", isBundle: true},
		{name: "too large", ref: pushArtifact(t, reg, "bad/large:1", config, ConfigMediaType, good, LayerMediaType), maxSize: int64(len(good)), wantErr: "database larger than", isBundle: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := importedDB(t, "Debian")
			if err := os.WriteFile(filepath.Join(dir, StateFileName), []byte(`{"source":"x"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(filepath.Join(dir, vulndb.FileName))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Pull(t.Context(), dir, tc.ref, RegistryOptions{MaxDatabaseSize: tc.maxSize})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Pull = %v, want an error containing %q", err, tc.wantErr)
			}
			t.Log(err)
			if notBundle := errors.Is(err, ErrNotBundle); notBundle == tc.isBundle {
				t.Errorf("Pull error %v: errors.Is(ErrNotBundle) = %v", err, notBundle)
			}
			after, err := os.ReadFile(filepath.Join(dir, vulndb.FileName))
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("a failed pull changed the database (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(dir, StateFileName)); err != nil {
				t.Errorf("a failed pull removed the sync state: %v", err)
			}
			if l := leftovers(t, dir); len(l) > 0 {
				t.Errorf("left behind %v", l)
			}
		})
	}
}

func TestPushWithoutDatabase(t *testing.T) {
	reg := testenv.InProcessRegistry(t)
	_, err := Push(t.Context(), t.TempDir(), reg.Host+"/bulwark/vulndb:latest", registryOpts(reg))
	if !errors.Is(err, vulndb.ErrNoDatabase) {
		t.Errorf("push of an empty directory: %v, want ErrNoDatabase", err)
	}
	if _, err := Push(t.Context(), importedDB(t, "npm"), "not a reference!", registryOpts(reg)); err == nil || !strings.Contains(err.Error(), "parsing bundle reference") {
		t.Errorf("push to a bad reference: %v", err)
	}
}
