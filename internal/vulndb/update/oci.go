package update

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulwarkhq/bulwark/internal/version"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// A bundle is the database file as an OCI artifact: an OCI image manifest
// whose artifact type and config media type are ConfigMediaType, whose
// config is a BundleConfig, and whose one layer, of LayerMediaType, is the
// gzipped database file.
const (
	// ConfigMediaType is the media type of a bundle's config, and the
	// bundle's artifact type.
	ConfigMediaType = "application/vnd.bulwark.vulndb.config.v1+json"
	// LayerMediaType is the media type of a bundle's layer.
	LayerMediaType = "application/vnd.bulwark.vulndb.layer.v1.bbolt+gzip"
	// BundleSchema is the version of the bundle format Push writes; Pull
	// reads no other.
	BundleSchema = 1
	// DefaultMaxDatabaseSize bounds a pulled database, uncompressed.
	DefaultMaxDatabaseSize = 4 << 30
)

// maxConfigSize bounds a bundle's config; it holds one line per ecosystem.
const maxConfigSize = 1 << 20

// ErrNotBundle marks an artifact that is not a database bundle.
var ErrNotBundle = errors.New("not a Bulwark vulnerability database bundle")

// BundleConfig describes the database in a bundle.
type BundleConfig struct {
	// Schema is the bundle format version, BundleSchema.
	Schema int `json:"schema"`
	// Built is when the database was built.
	Built time.Time `json:"built"`
	// Ecosystems are the database's ecosystems and their record counts.
	Ecosystems []vulndb.EcosystemStatus `json:"ecosystems"`
}

// RegistryOptions say how to reach a registry.
type RegistryOptions struct {
	// Insecure allows plain HTTP (go-containerregistry already uses it for
	// localhost and 127.0.0.1).
	Insecure bool
	// Auth overrides the keychain (the Docker config file and its
	// credential helpers) when set.
	Auth authn.Authenticator
	// UserAgent is sent to the registry; bulwark/<version> when empty.
	UserAgent string
	// MaxDatabaseSize bounds a pulled database, uncompressed;
	// DefaultMaxDatabaseSize when zero.
	MaxDatabaseSize int64
}

func (o RegistryOptions) parse(ref string) (name.Reference, error) {
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("parsing bundle reference %q: %w", ref, err)
	}
	return r, nil
}

func (o RegistryOptions) remote(ctx context.Context) []remote.Option {
	ua := o.UserAgent
	if ua == "" {
		ua = "bulwark/" + version.Get().Version
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent(ua)}
	if o.Auth != nil {
		return append(opts, remote.WithAuth(o.Auth))
	}
	return append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
}

// Bundle is a pushed or pulled bundle.
type Bundle struct {
	// Ref names the bundle by digest.
	Ref string `json:"ref"`
	// Size is the size of the compressed database.
	Size   int64        `json:"size"`
	Config BundleConfig `json:"config"`
}

// Push publishes the database in dir as a bundle at ref.
func Push(ctx context.Context, dir, ref string, opts RegistryOptions) (*Bundle, error) {
	r, err := opts.parse(ref)
	if err != nil {
		return nil, err
	}
	f, st, err := openDatabase(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ecosystems := slices.Clone(st.Ecosystems)
	slices.SortFunc(ecosystems, func(a, b vulndb.EcosystemStatus) int { return strings.Compare(a.Ecosystem, b.Ecosystem) })
	cfg := BundleConfig{Schema: BundleSchema, Built: st.Built, Ecosystems: ecosystems}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding bundle config: %w", err)
	}
	layer, err := compressDatabase(ctx, f, dir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(layer.path)
	img, err := newBundleImage(rawCfg, ConfigMediaType, layer, st.Built)
	if err != nil {
		return nil, err
	}
	if err := remote.Write(r, img, opts.remote(ctx)...); err != nil {
		return nil, fmt.Errorf("pushing bundle to %s: %w", r, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("computing bundle digest: %w", err)
	}
	return &Bundle{Ref: r.Context().Digest(digest.String()).String(), Size: layer.size, Config: cfg}, nil
}

// openDatabase opens the database file in dir together with its status,
// making sure both are of the same file: an update may swap in a new one
// at any time.
func openDatabase(dir string) (*os.File, *vulndb.Status, error) {
	path := filepath.Join(dir, vulndb.FileName)
	for range 3 {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			_, err = vulndb.Open(dir) // for its explanation
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, fmt.Errorf("opening vulnerability database: %w", err)
		}
		st, err := status(dir)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		opened, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err := errors.Join(err1, err2); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("checking vulnerability database: %w", err)
		}
		if os.SameFile(opened, now) {
			return f, st, nil
		}
		f.Close()
	}
	return nil, nil, fmt.Errorf("vulnerability database %s keeps changing; try again when no update runs", path)
}

func status(dir string) (*vulndb.Status, error) {
	db, err := vulndb.Open(dir)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Status()
}

// fileLayer is a compressed layer kept in a file.
type fileLayer struct {
	path      string
	digest    v1.Hash
	size      int64
	mediaType types.MediaType
}

var _ partial.CompressedLayer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// compressDatabase gzips the database file into a temporary file in dir.
func compressDatabase(ctx context.Context, db io.Reader, dir string) (*fileLayer, error) {
	tmp, err := os.CreateTemp(dir, vulndb.FileName+".push-*.gz")
	if err != nil {
		return nil, fmt.Errorf("creating bundle layer: %w", err)
	}
	hash := sha256.New()
	counter := &countingWriter{}
	zw := gzip.NewWriter(io.MultiWriter(tmp, hash, counter))
	_, err = io.Copy(zw, &ctxReader{ctx: ctx, r: db})
	if err == nil {
		err = zw.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("compressing vulnerability database: %w", err)
	}
	return &fileLayer{
		path:      tmp.Name(),
		digest:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hash.Sum(nil))},
		size:      counter.n,
		mediaType: LayerMediaType,
	}, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// bundleImage is a one-layer OCI artifact with a config of any media type.
type bundleImage struct {
	config   []byte
	layer    *fileLayer
	manifest []byte
}

var _ partial.CompressedImageCore = (*bundleImage)(nil)

// newBundleImage builds the artifact of a config and a layer. Tests use
// other media types to build artifacts that are not bundles.
func newBundleImage(config []byte, configType types.MediaType, layer *fileLayer, created time.Time) (v1.Image, error) {
	cfgHash, cfgSize, err := v1.SHA256(bytes.NewReader(config))
	if err != nil {
		return nil, fmt.Errorf("hashing bundle config: %w", err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  string(configType),
		Config:        v1.Descriptor{MediaType: configType, Size: cfgSize, Digest: cfgHash},
		Layers: []v1.Descriptor{{
			MediaType:   layer.mediaType,
			Size:        layer.size,
			Digest:      layer.digest,
			Annotations: map[string]string{"org.opencontainers.image.title": vulndb.FileName + ".gz"},
		}},
		Annotations: map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding bundle manifest: %w", err)
	}
	return partial.CompressedToImage(&bundleImage{config: config, layer: layer, manifest: raw})
}

func (b *bundleImage) RawConfigFile() ([]byte, error)      { return b.config, nil }
func (b *bundleImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (b *bundleImage) RawManifest() ([]byte, error)        { return b.manifest, nil }
func (b *bundleImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == b.layer.digest {
		return b.layer, nil
	}
	return nil, fmt.Errorf("bundle has no layer %s", h)
}

// Pull fetches the bundle at ref and makes its database the one in dir.
// The bundle's media types are checked, the database is unpacked beside
// the current one (at most RegistryOptions.MaxDatabaseSize bytes) and
// opened to check it, and only then renamed over the current one, so a
// bad bundle leaves the current database as it was. The sync state of
// the old database is removed: the pulled one was not synced here.
func Pull(ctx context.Context, dir, ref string, opts RegistryOptions) (*Bundle, error) {
	r, err := opts.parse(ref)
	if err != nil {
		return nil, err
	}
	maxSize := opts.MaxDatabaseSize
	if maxSize <= 0 {
		maxSize = DefaultMaxDatabaseSize
	}
	desc, err := remote.Get(r, opts.remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("fetching bundle %s: %w", r, err)
	}
	if desc.MediaType != types.OCIManifestSchema1 {
		return nil, fmt.Errorf("%s: %w: manifest media type %q, want %q", r, ErrNotBundle, desc.MediaType, types.OCIManifestSchema1)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: reading manifest: %w", r, ErrNotBundle, err)
	}
	if err := checkManifest(m, maxSize); err != nil {
		return nil, fmt.Errorf("%s: %w", r, err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("fetching bundle %s: %w", r, err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("fetching config of bundle %s: %w", r, err)
	}
	var cfg BundleConfig
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w: reading config: %w", r, ErrNotBundle, err)
	}
	if cfg.Schema != BundleSchema {
		return nil, fmt.Errorf("%s: bundle format %d, this version of bulwark reads %d", r, cfg.Schema, BundleSchema)
	}
	layer, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("fetching database of bundle %s: %w", r, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating database directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".pull-")
	if err != nil {
		return nil, fmt.Errorf("creating download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := unpackLayer(ctx, layer, filepath.Join(tmp, vulndb.FileName), maxSize); err != nil {
		return nil, fmt.Errorf("unpacking database of bundle %s: %w", r, err)
	}
	st, err := status(tmp)
	if err != nil {
		return nil, fmt.Errorf("checking database of bundle %s: %w", r, err)
	}
	if err := sameCounts(cfg.Ecosystems, st.Ecosystems); err != nil {
		return nil, fmt.Errorf("checking database of bundle %s: %w", r, err)
	}
	if err := removeState(dir); err != nil {
		return nil, err
	}
	if err := os.Rename(filepath.Join(tmp, vulndb.FileName), filepath.Join(dir, vulndb.FileName)); err != nil {
		return nil, fmt.Errorf("swapping in the pulled database: %w", err)
	}
	return &Bundle{Ref: r.Context().Digest(desc.Digest.String()).String(), Size: m.Layers[0].Size, Config: cfg}, nil
}

// checkManifest accepts the manifest of a bundle.
func checkManifest(m *v1.Manifest, maxSize int64) error {
	if m.Config.MediaType != ConfigMediaType {
		return fmt.Errorf("%w: config media type %q, want %q", ErrNotBundle, m.Config.MediaType, ConfigMediaType)
	}
	if m.ArtifactType != "" && m.ArtifactType != ConfigMediaType {
		return fmt.Errorf("%w: artifact type %q, want %q", ErrNotBundle, m.ArtifactType, ConfigMediaType)
	}
	if len(m.Layers) != 1 {
		return fmt.Errorf("%w: %d layers, want 1", ErrNotBundle, len(m.Layers))
	}
	if l := m.Layers[0]; l.MediaType != LayerMediaType {
		return fmt.Errorf("%w: layer media type %q, want %q", ErrNotBundle, l.MediaType, LayerMediaType)
	}
	if m.Config.Size <= 0 || m.Config.Size > maxConfigSize {
		return fmt.Errorf("%w: config of %d bytes, want 1 to %d", ErrNotBundle, m.Config.Size, maxConfigSize)
	}
	// Compression can only grow incompressible data by a little.
	if s := m.Layers[0].Size; s <= 0 || s > maxSize+maxSize/100+(1<<20) {
		return fmt.Errorf("%w: database layer of %d bytes, more than the %d allowed", ErrNotBundle, s, maxSize)
	}
	return nil
}

// unpackLayer decompresses layer into path, at most maxSize bytes, and
// reads the layer to its end so its digest is checked.
func unpackLayer(ctx context.Context, layer v1.Layer, path string, maxSize int64) error {
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return fmt.Errorf("layer is not gzip: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(&ctxReader{ctx: ctx, r: zr}, maxSize+1))
	if err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	if n > maxSize {
		return fmt.Errorf("database larger than %d bytes", maxSize)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// sameCounts checks a pulled database against its bundle's config.
func sameCounts(want, got []vulndb.EcosystemStatus) error {
	count := func(list []vulndb.EcosystemStatus) map[string]int {
		m := map[string]int{}
		for _, e := range list {
			m[e.Ecosystem] = e.Records
		}
		return m
	}
	w, g := count(want), count(got)
	if !maps.Equal(w, g) {
		return fmt.Errorf("database holds %v records per ecosystem, its bundle config says %v", g, w)
	}
	return nil
}
