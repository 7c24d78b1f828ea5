package auditlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Offset is how far a FileSource got in a file, as committed after the
// sink accepted everything before it.
type Offset struct {
	// Inode identifies the file across renames (0 where unknown).
	Inode uint64 `json:"inode"`
	// Size is the position after the last line delivered.
	Size int64 `json:"size"`
	// Head fingerprints the file's first bytes ("<n>:<sha256 hex>"), to
	// tell a file replaced under the same inode from the one read.
	Head string `json:"head"`
}

// OffsetStore keeps offsets across restarts.
type OffsetStore interface {
	Load(ctx context.Context, key string) (Offset, bool, error)
	Save(ctx context.Context, key string, o Offset) error
}

// headSize is how many leading bytes Offset.Head covers.
const headSize = 1024

// fileHead fingerprints the first n bytes of f.
func fileHead(f *os.File, n int64) (string, error) {
	if n <= 0 {
		return "", nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
		return "", err
	}
	return strconv.FormatInt(n, 10) + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// headLen is how many bytes a fingerprint covers.
func headLen(head string) int64 {
	n, _, ok := strings.Cut(head, ":")
	if !ok {
		return 0
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// headMatches reports whether f still starts with the bytes head
// fingerprints.
func headMatches(f *os.File, head string) bool {
	n := headLen(head)
	if n == 0 {
		return head == ""
	}
	got, err := fileHead(f, n)
	return err == nil && got == head
}

// FileOffsetStore keeps offsets in a JSON file, replaced atomically on
// every save, for running without a database.
type FileOffsetStore struct {
	path string
	mu   sync.Mutex
}

var _ OffsetStore = (*FileOffsetStore)(nil)

// NewFileOffsetStore returns a store keeping offsets in the file at path.
func NewFileOffsetStore(path string) OffsetStore {
	return &FileOffsetStore{path: path}
}

func (s *FileOffsetStore) read() (map[string]Offset, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Offset{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading offsets %s: %w", s.path, err)
	}
	m := map[string]Offset{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding offsets %s: %w", s.path, err)
	}
	return m, nil
}

// Load returns the offset saved for key.
func (s *FileOffsetStore) Load(ctx context.Context, key string) (Offset, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return Offset{}, false, err
	}
	o, ok := m[key]
	return o, ok, nil
}

// Save records o for key: written to a temporary file, synced, renamed
// over the store.
func (s *FileOffsetStore) Save(ctx context.Context, key string, o Offset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return err
	}
	m[key] = o
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding offsets: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving offsets %s: %w", s.path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing offsets %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing offsets %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing offsets %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("replacing offsets %s: %w", s.path, err)
	}
	return nil
}
