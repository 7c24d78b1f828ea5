package scan

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Whiteout markers of the OCI image layer specification.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// ErrLayerTooLarge is returned for a layer that decompresses past the
// limit: a decompression bomb, or an image too big to scan here.
var ErrLayerTooLarge = errors.New("layer too large")

// collector reads layers into a tree, keeping the content of the files
// wanted says extractors want in a work directory.
type collector struct {
	tree   *tree
	work   string
	wanted func(path string, mode fs.FileMode, size int64) bool
	limits Limits
	warn   func(format string, args ...any)

	stored int64 // bytes of content kept so far
	seq    int   // names content files

	cache    *LayerCache // nil: no cache
	cacheKey string
}

// layerChanges is what one layer does to the layers below it; it is applied
// when the layer has been read, because whiteouts and opaque directories
// only hide lower layers, never entries of their own layer.
type layerChanges struct {
	removed []string // whiteouts, opaque directories, and paths written again
	added   map[string]*node

	// For the layer cache: the whiteouts and opaque directories alone,
	// every non-directory path the layer writes, and its warnings.
	whiteouts []string
	written   []string
	warnings  []string
	// partial is set when a file was left out for a reason that depends
	// on the scan rather than the layer (the stored-bytes budget): such a
	// layer is not cached.
	partial bool
}

// addLayer applies one layer: from the cache when it holds the layer,
// else by reading the layer's uncompressed tar stream (and caching it).
func (c *collector) addLayer(ctx context.Context, l v1.Layer) error {
	digest, err := l.Digest()
	if err != nil {
		return fmt.Errorf("reading layer digest: %w", err)
	}
	var diffID v1.Hash
	if c.cache != nil {
		if diffID, err = l.DiffID(); err != nil {
			return fmt.Errorf("reading diff ID of layer %s: %w", digest, err)
		}
		if cl, dir, ok := c.cache.load(c.cacheKey, diffID.String()); ok {
			c.applyCached(cl, dir, digest.String())
			return nil
		}
	}
	ch, err := c.readLayer(ctx, l, digest)
	if err != nil {
		return err
	}
	c.apply(ch)
	if c.cache != nil && !ch.partial {
		c.storeCached(ch, diffID.String())
	}
	return nil
}

func (c *collector) readLayer(ctx context.Context, l v1.Layer, digest v1.Hash) (*layerChanges, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("opening layer %s: %w", digest, err)
	}
	defer rc.Close()
	lim := &limitedReader{r: rc, left: c.limits.MaxLayerSize}
	tooLarge := func() error {
		return fmt.Errorf("layer %s decompresses to more than %d bytes: %w", digest, c.limits.MaxLayerSize, ErrLayerTooLarge)
	}
	ch, err := c.readTar(ctx, lim, digest.String())
	if err != nil {
		if lim.exceeded {
			return nil, tooLarge()
		}
		return nil, fmt.Errorf("reading layer %s: %w", digest, err)
	}
	// Read to the end, so that the digest and size of the whole stream are
	// verified (go-containerregistry checks them at EOF).
	if _, err := io.Copy(io.Discard, lim); err != nil {
		if lim.exceeded {
			return nil, tooLarge()
		}
		return nil, fmt.Errorf("reading layer %s: %w", digest, err)
	}
	return ch, nil
}

// applyCached lays a cached layer over the tree, as apply does for one
// just read, and repeats the warnings reading it gave.
func (c *collector) applyCached(cl *cachedLayer, dir, layer string) {
	for _, w := range cl.Warnings {
		c.warn("%s", w)
	}
	ch := &layerChanges{removed: append([]string(nil), cl.Removed...), added: map[string]*node{}}
	for _, p := range cl.Written {
		if _, ok := c.tree.nodes[p]; ok {
			ch.removed = append(ch.removed, p)
		}
	}
	for _, n := range cl.Nodes {
		nd := &node{kind: n.Kind, mode: n.Mode, size: n.Size, target: n.Target, layer: layer}
		if n.Kind == kindFile {
			nd.contentPath = filepath.Join(dir, n.Blob)
		}
		ch.added[n.Path] = nd
	}
	c.apply(ch)
}

// storeCached writes a layer just read to the cache. A failure only costs
// a later scan the time to read the layer again.
func (c *collector) storeCached(ch *layerChanges, diffID string) {
	cl := &cachedLayer{Removed: ch.whiteouts, Written: ch.written, Warnings: ch.warnings}
	contents := map[string]string{}
	for p, n := range ch.added {
		cl.Nodes = append(cl.Nodes, cachedNode{Path: p, Kind: n.kind, Mode: n.mode, Size: n.size, Target: n.target})
		contents[p] = n.contentPath
	}
	if err := c.cache.store(c.cacheKey, diffID, cl, contents); err != nil {
		c.warn("layer cache: %v", err)
	}
}

func (c *collector) readTar(ctx context.Context, r io.Reader, layer string) (*layerChanges, error) {
	tr := tar.NewReader(r)
	ch := &layerChanges{added: map[string]*node{}}
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		ch.warnings = append(ch.warnings, msg)
		c.warn("%s", msg)
	}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p, ok := cleanPath(hdr.Name)
		if !ok {
			warn("layer %s: skipped entry %q: path leaves the root", short(layer), truncate(hdr.Name, 200))
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == whiteoutOpaque:
			ch.removed = append(ch.removed, dir+"/")
			ch.whiteouts = append(ch.whiteouts, dir+"/")
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			gone := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
			ch.removed = append(ch.removed, gone)
			ch.whiteouts = append(ch.whiteouts, gone)
			continue
		}
		if p == "" {
			continue
		}
		if hdr.Typeflag != tar.TypeDir && c.cache != nil {
			ch.written = append(ch.written, p)
		}
		if _, lower := c.tree.nodes[p]; lower && hdr.Typeflag != tar.TypeDir {
			ch.removed = append(ch.removed, p)
		}
		delete(ch.added, p) // a later entry in the same layer wins
		switch hdr.Typeflag {
		case tar.TypeReg:
			if err := c.addFile(tr, hdr, p, layer, ch, warn); err != nil {
				return nil, err
			}
		case tar.TypeSymlink:
			ch.added[p] = &node{kind: kindSymlink, target: hdr.Linkname, layer: layer}
		case tar.TypeLink:
			c.addHardLink(hdr, p, layer, ch, warn)
		}
	}
	return ch, nil
}

func (c *collector) addFile(tr *tar.Reader, hdr *tar.Header, p, layer string, ch *layerChanges, warn func(string, ...any)) error {
	mode := fs.FileMode(hdr.Mode).Perm() | modeBits(hdr.Mode)
	if !c.wanted(p, mode, hdr.Size) {
		return nil
	}
	if hdr.Size > c.limits.MaxFileSize {
		warn("layer %s: skipped %s: %d bytes, over the %d-byte file limit", short(layer), p, hdr.Size, c.limits.MaxFileSize)
		return nil
	}
	if c.stored+hdr.Size > c.limits.MaxStored {
		warn("layer %s: skipped %s: the scan already keeps %d bytes of files, the limit is %d", short(layer), p, c.stored, c.limits.MaxStored)
		ch.partial = true
		return nil
	}
	c.seq++
	dst := filepath.Join(c.work, strconv.Itoa(c.seq))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("storing %s: %w", p, err)
	}
	n, err := io.Copy(f, tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("reading %s: got %d bytes, header says %d", p, n, hdr.Size)
	}
	c.stored += n
	ch.added[p] = &node{kind: kindFile, mode: mode, size: n, layer: layer, contentPath: dst}
	return nil
}

// addHardLink makes p share the content of the entry it links to, when
// that entry was kept. Hard links in a layer point to an earlier entry of
// the same layer (or a lower one).
func (c *collector) addHardLink(hdr *tar.Header, p, layer string, ch *layerChanges, warn func(string, ...any)) {
	target, ok := cleanPath(hdr.Linkname)
	if !ok {
		warn("layer %s: skipped hard link %s: target %q leaves the root", short(layer), p, truncate(hdr.Linkname, 200))
		return
	}
	src := ch.added[target]
	if src == nil {
		src = c.tree.nodes[target]
	}
	if src == nil || src.kind != kindFile {
		if c.wanted(p, fs.FileMode(hdr.Mode).Perm()|modeBits(hdr.Mode), hdr.Size) {
			warn("layer %s: skipped hard link %s: its target %s was not read", short(layer), p, target)
		}
		return
	}
	cp := *src
	cp.layer = layer
	ch.added[p] = &cp
}

// apply lays a read layer over the tree.
func (c *collector) apply(ch *layerChanges) {
	for _, p := range ch.removed {
		if strings.HasSuffix(p, "/") { // opaque directory: its contents go
			c.tree.removeAll(strings.TrimSuffix(p, "/"))
			continue
		}
		c.tree.removeAll(p)
	}
	for p, n := range ch.added {
		c.tree.nodes[p] = n
	}
}

// cleanPath turns a tar entry name into a path relative to the root.
// Absolute names are taken as relative to the root; names with ".."
// components are refused: whatever they mean, they try to leave the root.
func cleanPath(name string) (string, bool) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", false
		}
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p, true
}

// modeBits keeps the type and special bits of a tar mode that FileMode
// carries outside the permission bits.
func modeBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// limitedReader fails once more than left bytes have been read.
type limitedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// At the limit: fine if the stream ends here, a failure if not.
		var probe [1]byte
		if n, err := l.r.Read(probe[:]); n == 0 && err != nil {
			return 0, err
		}
		l.exceeded = true
		return 0, ErrLayerTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func short(digest string) string {
	if i := strings.IndexByte(digest, ':'); i >= 0 && len(digest) > i+13 {
		return digest[:i+13]
	}
	return digest
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
