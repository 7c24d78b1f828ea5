package scan

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

// LayerCache keeps what a scan took from each layer, keyed by the layer's
// uncompressed digest (its diff ID) and by what the extractors ask for, so
// a layer seen before is neither downloaded nor read again. An entry holds
// the layer's whiteouts, the paths it writes, the files extractors want
// (their bytes) and its symbolic links.
type LayerCache struct {
	dir string
	// MaxBytes bounds the cache; the least recently used entries go first.
	MaxBytes int64
}

// cacheFormat changes whenever an entry's layout or meaning changes.
const cacheFormat = 1

// NewLayerCache uses dir for the cache, creating it if needed.
func NewLayerCache(dir string, maxBytes int64) (*LayerCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating layer cache: %w", err)
	}
	return &LayerCache{dir: dir, MaxBytes: maxBytes}, nil
}

// cacheKey names the extractor set: entries of one set are useless to
// another, which may ask for other files.
func cacheKey(extractors []extract.Extractor, limits Limits) string {
	var parts []string
	for _, e := range extractors {
		parts = append(parts, e.Name()+"@"+strconv.Itoa(e.Version()))
	}
	sort.Strings(parts)
	h := sha256.New()
	fmt.Fprintf(h, "format %d\nmax file %d\n%s", cacheFormat, limits.MaxFileSize, strings.Join(parts, "\n"))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cachedLayer is an entry's index.
type cachedLayer struct {
	Removed  []string     `json:"removed"` // whiteouts; opaque directories end in "/"
	Written  []string     `json:"written"` // every non-directory path in the layer
	Nodes    []cachedNode `json:"nodes"`
	Warnings []string     `json:"warnings,omitempty"`
	Bytes    int64        `json:"bytes"`
}

type cachedNode struct {
	Path   string      `json:"path"`
	Kind   nodeKind    `json:"kind"`
	Mode   fs.FileMode `json:"mode"`
	Size   int64       `json:"size"`
	Target string      `json:"target,omitempty"`
	Blob   string      `json:"blob,omitempty"` // file name in the entry
}

func (c *LayerCache) entryDir(key, diffID string) (string, error) {
	alg, hexDigest, ok := strings.Cut(diffID, ":")
	if !ok || !isToken(alg) || !isToken(hexDigest) {
		return "", fmt.Errorf("layer diff ID %q is not a digest", diffID)
	}
	return filepath.Join(c.dir, key, alg+"-"+hexDigest), nil
}

// load returns a cached layer, with each node's content in the entry. A
// missing or damaged entry is a miss.
func (c *LayerCache) load(key, diffID string) (*cachedLayer, string, bool) {
	dir, err := c.entryDir(key, diffID)
	if err != nil {
		return nil, "", false
	}
	f, err := os.Open(filepath.Join(dir, "index.json.gz"))
	if err != nil {
		return nil, "", false
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, "", false
	}
	var cl cachedLayer
	if err := json.NewDecoder(io.LimitReader(zr, 256<<20)).Decode(&cl); err != nil {
		return nil, "", false
	}
	for _, n := range cl.Nodes {
		if n.Kind == kindFile && (!isToken(n.Blob) || !fileExists(filepath.Join(dir, n.Blob))) {
			return nil, "", false
		}
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, "index.json.gz"), now, now) // for least-recently-used eviction
	return &cl, dir, true
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// store writes an entry: the index and the content of the layer's files,
// linked (or copied) from the scan's work directory. It is built aside and
// renamed into place, so a reader never sees half an entry.
func (c *LayerCache) store(key, diffID string, cl *cachedLayer, contents map[string]string) error {
	dir, err := c.entryDir(key, diffID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("creating layer cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".new-")
	if err != nil {
		return fmt.Errorf("creating layer cache entry: %w", err)
	}
	defer os.RemoveAll(tmp)
	for i := range cl.Nodes {
		n := &cl.Nodes[i]
		if n.Kind != kindFile {
			continue
		}
		n.Blob = strconv.Itoa(i)
		if err := linkOrCopy(contents[n.Path], filepath.Join(tmp, n.Blob)); err != nil {
			return fmt.Errorf("caching %s: %w", n.Path, err)
		}
		cl.Bytes += n.Size
	}
	f, err := os.Create(filepath.Join(tmp, "index.json.gz"))
	if err != nil {
		return fmt.Errorf("writing layer cache index: %w", err)
	}
	zw := gzip.NewWriter(f)
	err = json.NewEncoder(zw).Encode(cl)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing layer cache index: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		return fmt.Errorf("storing layer cache entry: %w", err)
	}
	return nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && strings.Contains(le.Err.Error(), "not empty")
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// evict removes least recently used entries until the cache fits MaxBytes.
func (c *LayerCache) evict() error {
	if c.MaxBytes <= 0 {
		return nil
	}
	type ent struct {
		dir   string
		used  time.Time
		bytes int64
	}
	var ents []ent
	var total int64
	keys, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("reading layer cache: %w", err)
	}
	for _, k := range keys {
		if !k.IsDir() {
			continue
		}
		layers, err := os.ReadDir(filepath.Join(c.dir, k.Name()))
		if err != nil {
			continue
		}
		for _, l := range layers {
			dir := filepath.Join(c.dir, k.Name(), l.Name())
			st, err := os.Stat(filepath.Join(dir, "index.json.gz"))
			if err != nil {
				continue
			}
			size := dirSize(dir)
			ents = append(ents, ent{dir: dir, used: st.ModTime(), bytes: size})
			total += size
		}
	}
	slices.SortFunc(ents, func(a, b ent) int { return a.used.Compare(b.used) })
	for _, e := range ents {
		if total <= c.MaxBytes {
			break
		}
		if err := os.RemoveAll(e.dir); err != nil {
			return fmt.Errorf("evicting layer cache entry: %w", err)
		}
		total -= e.bytes
	}
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
