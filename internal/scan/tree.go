package scan

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// nodeKind is what a tree entry is.
type nodeKind int

const (
	kindFile nodeKind = iota
	kindSymlink
)

// node is one file of the merged view: a regular file an extractor asked
// for (its content in contentPath) or a symbolic link.
type node struct {
	kind        nodeKind
	mode        fs.FileMode
	size        int64
	target      string // symlink target, as written
	layer       string // digest of the layer that wrote it
	contentPath string // where its bytes are on local disk
}

// tree is the merged view of a root filesystem: the files extractors asked
// for and the symbolic links, by slash-separated path relative to the root
// ("etc/os-release"). Everything else in the image is passed over.
type tree struct {
	nodes map[string]*node
}

func newTree() *tree { return &tree{nodes: map[string]*node{}} }

// removeAll deletes p and everything below it.
func (t *tree) removeAll(p string) {
	delete(t.nodes, p)
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k := range t.nodes {
		if strings.HasPrefix(k, prefix) {
			delete(t.nodes, k)
		}
	}
}

// files returns the paths of the regular files, sorted.
func (t *tree) files() []string {
	var out []string
	for p, n := range t.nodes {
		if n.kind == kindFile {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// maxLinkHops bounds symbolic link resolution, as the kernel's ELOOP does.
const maxLinkHops = 40

// resolve follows symbolic links in every component of p, staying inside
// the root: a link to "/etc/x" or "../../x" resolves against the root, so a
// link can never lead out of it. It returns the final path and its node,
// or fs.ErrNotExist.
func (t *tree) resolve(p string) (string, *node, error) {
	hops := 0
	parts := strings.Split(p, "/")
	cur := ""
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "" || part == "." {
			continue
		}
		next := path.Join(cur, part)
		if part == ".." {
			next = path.Dir(cur)
			if next == "." {
				next = ""
			}
			cur = next
			continue
		}
		n, ok := t.nodes[next]
		if ok && n.kind == kindSymlink {
			hops++
			if hops > maxLinkHops {
				return "", nil, errors.New("too many levels of symbolic links")
			}
			target := n.target
			base := cur
			if strings.HasPrefix(target, "/") {
				base = ""
			}
			rest := append(strings.Split(path.Join(base, target), "/"), parts[i+1:]...)
			parts, i, cur = rest, -1, ""
			continue
		}
		cur = next
	}
	n, ok := t.nodes[cur]
	if !ok {
		return cur, nil, fs.ErrNotExist
	}
	return cur, n, nil
}

// fs returns the tree as an fs.FS whose Open resolves symbolic links
// inside the root. Only collected regular files can be opened.
func (t *tree) fs() fs.FS { return treeFS{t} }

type treeFS struct{ t *tree }

func (f treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	_, n, err := f.t.resolve(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.kind != kindFile {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	file, err := os.Open(n.contentPath)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{File: file, name: path.Base(name), n: n}, nil
}

// treeFile reports the image's file metadata rather than the local copy's.
type treeFile struct {
	*os.File
	name string
	n    *node
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return nodeInfo{f.name, f.n}, nil }

func (f *treeFile) Read(b []byte) (int, error) { return f.File.Read(b) }

var _ io.ReaderAt = (*treeFile)(nil)

type nodeInfo struct {
	name string
	n    *node
}

func (i nodeInfo) Name() string       { return i.name }
func (i nodeInfo) Size() int64        { return i.n.size }
func (i nodeInfo) Mode() fs.FileMode  { return i.n.mode }
func (i nodeInfo) ModTime() time.Time { return time.Time{} }
func (i nodeInfo) IsDir() bool        { return false }
func (i nodeInfo) Sys() any           { return nil }
