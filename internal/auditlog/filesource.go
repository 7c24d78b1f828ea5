package auditlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// FileOptions tune a FileSource. Zero values take the defaults.
type FileOptions struct {
	// Batch is the most events per sink call (default 500).
	Batch int
	// Poll is how often the file is checked for more lines, rotation and
	// truncation once everything written has been read (default 250ms).
	Poll time.Duration
	// Logger receives warnings (default: discarded).
	Logger *slog.Logger
	// MaxLineSize bounds a line; longer lines are skipped (default
	// MaxLineSize).
	MaxLineSize int
}

// FileStats count what a FileSource read and what it had to skip.
type FileStats struct {
	Events      int64 // delivered to the sink
	Malformed   int64 // lines that were not audit events
	Overlong    int64 // lines over MaxLineSize
	Rotations   int64 // switches to the next file
	Truncations int64 // files found shorter or replaced in place
}

// FileSource tails the JSON-lines audit log kube-apiserver writes
// (--audit-log-path). It follows a file by inode across rotation by rename
// — finishing the old file, then any rotated file newer than it, then the
// new one — and restarts a file found truncated (copytruncate). It commits
// its offset to an OffsetStore only after the sink accepted the events
// before it, so a restart neither repeats nor skips lines. A partial last
// line waits until it is complete.
//
// On its first run, with no offset saved, it reads the current file from
// its start and not older rotated files. With copytruncate, lines written
// between the copy and the truncation are lost, as for every reader.
type FileSource struct {
	path    string
	offsets OffsetStore
	o       FileOptions
	log     *slog.Logger

	events, malformed, overlong, rotations, truncations atomic.Int64
}

var _ Source = (*FileSource)(nil)

// NewFileSource returns a source for the audit log at path, keeping its
// offset in offsets under the path.
func NewFileSource(path string, offsets OffsetStore, o FileOptions) *FileSource {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.MaxLineSize <= 0 {
		o.MaxLineSize = MaxLineSize
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &FileSource{path: filepath.Clean(path), offsets: offsets, o: o, log: log}
}

// Name is "file:" and the log's path, which is also the offset's key.
func (s *FileSource) Name() string { return "file:" + s.path }

// Stats returns the counts so far.
func (s *FileSource) Stats() FileStats {
	return FileStats{
		Events: s.events.Load(), Malformed: s.malformed.Load(), Overlong: s.overlong.Load(),
		Rotations: s.rotations.Load(), Truncations: s.truncations.Load(),
	}
}

// tail is the file being read.
type tail struct {
	f  *os.File
	fi os.FileInfo // when opened: identifies the file
	// read is the offset up to which the file has been read; pos the offset
	// after the last complete line handled. buf holds [pos, read) unless
	// skipping an over-long line, when it is empty.
	read, pos int64
	buf       []byte
	skipping  bool
	head      string // fingerprint of the file's first bytes
	committed int64  // pos last saved; -1 when nothing was saved for this file
}

// Run delivers the log's events to sink until ctx is done, and then
// returns nil. It fails only when the saved offset cannot be loaded; sink
// and offset-store failures are retried with backoff.
func (s *FileSource) Run(ctx context.Context, sink Sink) error {
	t, err := s.resume(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() { t.f.Close() }()
	var batch []Event
	chunk := make([]byte, 64<<10)
	for {
		n, err := s.fill(t, chunk)
		if err != nil {
			s.log.Warn("reading audit log", "file", t.f.Name(), "err", err)
		}
		if s.consume(ctx, sink, t, &batch) != nil {
			return nil
		}
		if n > 0 {
			continue
		}
		if s.flush(ctx, sink, t, &batch) != nil {
			return nil
		}
		switch s.check(t) {
		case truncated:
			s.truncations.Add(1)
			s.log.Warn("audit log truncated or replaced; reading it again from the start", "file", t.f.Name(), "offset", t.pos)
			*t = tail{f: t.f, fi: t.fi, committed: t.committed}
			continue
		case rotated:
			next, err := s.rotate(ctx, sink, t, &batch, chunk)
			if err != nil {
				return nil
			}
			t.f.Close()
			t = next
			continue
		}
		if !sleep(ctx, s.o.Poll) {
			return nil
		}
	}
}

// resume opens the file the saved offset points into, found by inode and
// fingerprint under the log's path or a rotated name, or else the current
// log from its start.
func (s *FileSource) resume(ctx context.Context) (*tail, error) {
	off, ok, err := s.offsets.Load(ctx, s.path)
	if err != nil {
		return nil, fmt.Errorf("loading offset of audit log %s: %w", s.path, err)
	}
	if ok {
		for _, p := range append([]string{s.path}, s.rotatedFiles()...) {
			if t := openAt(p, off); t != nil {
				return t, nil
			}
		}
		s.log.Warn("saved offset matches no audit log file; reading the current file from the start", "file", s.path)
	}
	return s.openWait(ctx, s.path)
}

// openAt opens path if it is the file off was saved for, positioned at
// off; otherwise it returns nil.
func openAt(path string, off Offset) *tail {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || (off.Inode != 0 && inode(fi) != off.Inode) || fi.Size() < off.Size || !headMatches(f, off.Head) {
		f.Close()
		return nil
	}
	return &tail{f: f, fi: fi, read: off.Size, pos: off.Size, head: off.Head, committed: off.Size}
}

// openWait opens path from its start, waiting for it to exist.
func (s *FileSource) openWait(ctx context.Context, path string) (*tail, error) {
	for {
		f, err := os.Open(path)
		if err == nil {
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("inspecting audit log %s: %w", path, err)
			}
			return &tail{f: f, fi: fi, committed: -1}, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("opening audit log", "file", path, "err", err)
		}
		if !sleep(ctx, s.o.Poll) {
			return nil, ctx.Err()
		}
	}
}

// rotatedFiles lists the log's rotated files, oldest first: kube-apiserver
// names them <stem>-<timestamp><ext>; logrotate <name>.<n>. Compressed ones
// cannot be tailed and are left out.
func (s *FileSource) rotatedFiles() []string {
	dir, base := filepath.Split(s.path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		name := e.Name()
		lumberjack := strings.HasPrefix(name, stem+"-") && strings.HasSuffix(name, ext)
		n, isLogrotate := strings.CutPrefix(name, base+".")
		logrotate := isLogrotate && n != "" && strings.Trim(n, "0123456789") == ""
		if name == base || e.IsDir() || !(lumberjack || logrotate) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{name, fi.ModTime()})
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f.name)
	}
	return paths
}

// fill reads what follows t.read into t.buf.
func (s *FileSource) fill(t *tail, chunk []byte) (int, error) {
	n, err := t.f.ReadAt(chunk, t.read)
	if n > 0 {
		t.buf = append(t.buf, chunk[:n]...)
		t.read += int64(n)
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// consume handles the complete lines in t.buf, delivering full batches.
// It fails only when ctx is done.
func (s *FileSource) consume(ctx context.Context, sink Sink, t *tail, batch *[]Event) error {
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if t.skipping {
			if i < 0 {
				t.buf = t.buf[:0]
				return nil
			}
			t.buf = t.buf[i+1:]
			t.skipping = false
			s.skipOverlong(t, t.pos)
			t.pos = t.read - int64(len(t.buf))
			continue
		}
		if i < 0 {
			if len(t.buf) > s.o.MaxLineSize {
				t.skipping = true
				t.buf = t.buf[:0]
			}
			return nil
		}
		line := t.buf[:i]
		t.buf = t.buf[i+1:]
		start := t.pos
		t.pos += int64(i) + 1
		if len(line) > s.o.MaxLineSize {
			s.skipOverlong(t, start)
			continue
		}
		s.parse(t, line, start, batch)
		if len(*batch) >= s.o.Batch {
			if err := s.deliver(ctx, sink, t, *batch); err != nil {
				return err
			}
			*batch = nil
		}
	}
}

func (s *FileSource) skipOverlong(t *tail, at int64) {
	n := s.overlong.Add(1)
	s.log.Warn("skipping over-long audit log line", "file", t.f.Name(), "offset", at, "limit", s.o.MaxLineSize, "skipped", n)
}

func (s *FileSource) parse(t *tail, line []byte, at int64, batch *[]Event) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	e, err := ParseLine(line)
	if err != nil {
		n := s.malformed.Add(1)
		s.log.Warn("skipping malformed audit log line", "file", t.f.Name(), "offset", at, "skipped", n, "err", err)
		return
	}
	*batch = append(*batch, e)
}

// flush delivers the pending events, or commits the offset when only
// skipped lines advanced it.
func (s *FileSource) flush(ctx context.Context, sink Sink, t *tail, batch *[]Event) error {
	if len(*batch) > 0 {
		if err := s.deliver(ctx, sink, t, *batch); err != nil {
			return err
		}
		*batch = nil
		return nil
	}
	if t.pos != t.committed {
		return s.commit(ctx, t)
	}
	return nil
}

// deliver hands events to the sink until it accepts them, then commits
// t.pos. It fails only when ctx is done.
func (s *FileSource) deliver(ctx context.Context, sink Sink, t *tail, events []Event) error {
	err := s.retry(ctx, "audit sink failed; retrying", func() error { return sink(ctx, events) })
	if err != nil {
		return err
	}
	s.events.Add(int64(len(events)))
	return s.commit(ctx, t)
}

// commit saves t.pos, fingerprinting the file's first bytes while fewer
// than headSize are covered.
func (s *FileSource) commit(ctx context.Context, t *tail) error {
	if n := min(t.pos, headSize); n > headLen(t.head) {
		h, err := fileHead(t.f, n)
		if err != nil {
			s.log.Warn("fingerprinting audit log", "file", t.f.Name(), "err", err)
		} else {
			t.head = h
		}
	}
	off := Offset{Inode: inode(t.fi), Size: t.pos, Head: t.head}
	err := s.retry(ctx, "saving audit log offset failed; retrying", func() error { return s.offsets.Save(ctx, s.path, off) })
	if err != nil {
		return err
	}
	t.committed = t.pos
	return nil
}

// retry calls f until it succeeds, backing off from Poll to 30s, and
// fails only when ctx is done.
func (s *FileSource) retry(ctx context.Context, msg string, f func() error) error {
	wait := s.o.Poll
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn(msg, "source", s.Name(), "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, 30*time.Second)
	}
}

type fileState int

const (
	unchanged fileState = iota
	rotated
	truncated
)

// check looks, once everything written has been read, whether the file
// was truncated or replaced in place, or the log's path now names another
// file.
func (s *FileSource) check(t *tail) fileState {
	if st, err := t.f.Stat(); err == nil && (st.Size() < t.read || !headMatches(t.f, t.head)) {
		return truncated
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		// Between the rename and the creation of the new file.
		return unchanged
	}
	if !os.SameFile(fi, t.fi) {
		return rotated
	}
	return unchanged
}

// rotate finishes the old file — lines written to it before the rename,
// and an unterminated last line — and opens the next one: a rotated file
// newer than it (when several rotations happened meanwhile) or the log.
func (s *FileSource) rotate(ctx context.Context, sink Sink, t *tail, batch *[]Event, chunk []byte) (*tail, error) {
	for {
		n, err := s.fill(t, chunk)
		if err != nil {
			s.log.Warn("reading rotated audit log", "file", t.f.Name(), "err", err)
		}
		if err := s.consume(ctx, sink, t, batch); err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	if t.skipping {
		s.skipOverlong(t, t.pos)
	} else if len(t.buf) > 0 {
		s.parse(t, t.buf, t.pos, batch)
	}
	t.buf, t.skipping, t.pos = nil, false, t.read
	if err := s.flush(ctx, sink, t, batch); err != nil {
		return nil, err
	}
	s.rotations.Add(1)
	old, err := t.f.Stat()
	if err != nil {
		old = t.fi
	}
	if p := nextRotated(s.rotatedFiles(), old); p != "" {
		f, err := os.Open(p)
		if err == nil {
			fi, err := f.Stat()
			if err == nil {
				s.log.Info("audit log rotated; reading a newer rotated file", "from", t.f.Name(), "to", p)
				return &tail{f: f, fi: fi, committed: -1}, nil
			}
			f.Close()
		}
	}
	s.log.Info("audit log rotated", "from", t.f.Name(), "to", s.path)
	return s.openWait(ctx, s.path)
}

// nextRotated returns the rotated file that follows old, or "" when the
// log's current file does.
func nextRotated(rotated []string, old os.FileInfo) string {
	after := -1
	for i, p := range rotated {
		if fi, err := os.Stat(p); err == nil && os.SameFile(fi, old) {
			after = i
		}
	}
	if after >= 0 {
		if after+1 < len(rotated) {
			return rotated[after+1]
		}
		return ""
	}
	for _, p := range rotated {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(old.ModTime()) {
			return p
		}
	}
	return ""
}

// sleep waits for d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
