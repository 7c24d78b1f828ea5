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
}

// layerChanges is what one layer does to the layers below it; it is applied
// when the layer has been read, because whiteouts and opaque directories
// only hide lower layers, never entries of their own layer.
type layerChanges struct {
	removed []string // whiteouts, opaque directories, and paths written again
	added   map[string]*node
}

// addLayer reads one layer's uncompressed tar stream.
func (c *collector) addLayer(ctx context.Context, l v1.Layer) error {
	digest, err := l.Digest()
	if err != nil {
		return fmt.Errorf("reading layer digest: %w", err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("opening layer %s: %w", digest, err)
	}
	defer rc.Close()
	lim := &limitedReader{r: rc, left: c.limits.MaxLayerSize}
	if err := c.readTar(ctx, lim, digest.String()); err != nil {
		if lim.exceeded {
			return fmt.Errorf("layer %s decompresses to more than %d bytes: %w", digest, c.limits.MaxLayerSize, ErrLayerTooLarge)
		}
		return fmt.Errorf("reading layer %s: %w", digest, err)
	}
	// Read to the end, so that the digest and size of the whole stream are
	// verified (go-containerregistry checks them at EOF).
	if _, err := io.Copy(io.Discard, lim); err != nil {
		if lim.exceeded {
			return fmt.Errorf("layer %s decompresses to more than %d bytes: %w", digest, c.limits.MaxLayerSize, ErrLayerTooLarge)
		}
		return fmt.Errorf("reading layer %s: %w", digest, err)
	}
	return nil
}

func (c *collector) readTar(ctx context.Context, r io.Reader, layer string) error {
	tr := tar.NewReader(r)
	ch := layerChanges{added: map[string]*node{}}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p, ok := cleanPath(hdr.Name)
		if !ok {
			c.warn("layer %s: skipped entry %q: path leaves the root", short(layer), truncate(hdr.Name, 200))
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == whiteoutOpaque:
			ch.removed = append(ch.removed, dir+"/")
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			ch.removed = append(ch.removed, path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)))
			continue
		}
		if p == "" {
			continue
		}
		if _, lower := c.tree.nodes[p]; lower && hdr.Typeflag != tar.TypeDir {
			ch.removed = append(ch.removed, p)
		}
		delete(ch.added, p) // a later entry in the same layer wins
		switch hdr.Typeflag {
		case tar.TypeReg:
			if err := c.addFile(tr, hdr, p, layer, &ch); err != nil {
				return err
			}
		case tar.TypeSymlink:
			ch.added[p] = &node{kind: kindSymlink, target: hdr.Linkname, layer: layer}
		case tar.TypeLink:
			c.addHardLink(hdr, p, layer, &ch)
		}
	}
	c.apply(&ch)
	return nil
}

func (c *collector) addFile(tr *tar.Reader, hdr *tar.Header, p, layer string, ch *layerChanges) error {
	mode := fs.FileMode(hdr.Mode).Perm() | modeBits(hdr.Mode)
	if !c.wanted(p, mode, hdr.Size) {
		return nil
	}
	if hdr.Size > c.limits.MaxFileSize {
		c.warn("layer %s: skipped %s: %d bytes, over the %d-byte file limit", short(layer), p, hdr.Size, c.limits.MaxFileSize)
		return nil
	}
	if c.stored+hdr.Size > c.limits.MaxStored {
		c.warn("layer %s: skipped %s: the scan already keeps %d bytes of files, the limit is %d", short(layer), p, c.stored, c.limits.MaxStored)
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
func (c *collector) addHardLink(hdr *tar.Header, p, layer string, ch *layerChanges) {
	target, ok := cleanPath(hdr.Linkname)
	if !ok {
		c.warn("layer %s: skipped hard link %s: target %q leaves the root", short(layer), p, truncate(hdr.Linkname, 200))
		return
	}
	src := ch.added[target]
	if src == nil {
		src = c.tree.nodes[target]
	}
	if src == nil || src.kind != kindFile {
		if c.wanted(p, fs.FileMode(hdr.Mode).Perm()|modeBits(hdr.Mode), hdr.Size) {
			c.warn("layer %s: skipped hard link %s: its target %s was not read", short(layer), p, target)
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
