package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// The spool is a directory of encoded batches, one per file, named by a
// sequence number so that the oldest sorts first and the order survives a
// restart:
//
//	00000000000000000042.batch    a batch, exactly wire.Encode's output
//	.tmp-…                        a batch being written (removed on start)
//	corrupt/00000000000000000007.batch   a file that could not be read
//
// A file is written to a temporary name and renamed, so a reader never
// sees a partial one. Files are not fsynced: the spool exists to outlast
// an unreachable server and a restarted sensor, both of which keep the
// page cache; a file torn by a power cut fails its gzip checksum when it
// is read back and is set aside, like any other corrupt file.
const (
	spoolSuffix     = ".batch"
	spoolSeqDigits  = 20 // enough for any uint64
	spoolTempPrefix = ".tmp-"
	corruptDir      = "corrupt"
	// maxCorruptFiles bounds the files kept in corrupt/ for a post
	// mortem; older ones are removed.
	maxCorruptFiles = 16
)

var (
	errSpoolFull = errors.New("spool is full")
	// errCorrupt marks a spool file that cannot be sent.
	errCorrupt = errors.New("corrupt spool file")
)

// spoolEntry is one batch file.
type spoolEntry struct {
	seq  uint64
	size int64
	// events is the batch's event count, or -1 for a file left by a
	// previous run, which is read and checked before it is sent.
	events int
}

// spool is the bounded on-disk queue of batches. One goroutine adds
// (the client's batcher); another (the sender) takes from the front, and
// may rewrite the front batch.
type spool struct {
	dir      string
	maxBytes int64
	maxFiles int
	log      *slog.Logger

	mu      sync.Mutex
	entries []spoolEntry // ordered by seq
	bytes   int64        // of entries and of files being written
	files   int
	next    uint64
}

func spoolName(seq uint64) string {
	return fmt.Sprintf("%0*d%s", spoolSeqDigits, seq, spoolSuffix)
}

// parseSpoolName reads the sequence number of a batch file's name; it
// accepts exactly the names spoolName makes.
func parseSpoolName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, spoolSuffix)
	if !ok || len(digits) != spoolSeqDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

// openSpool opens (creating if need be) the spool in dir and indexes the
// batches a previous run left there.
func openSpool(dir string, maxBytes int64, maxFiles int, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	list, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing spool directory: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, maxFiles: maxFiles, log: log, next: 1}
	for _, de := range list {
		name := de.Name()
		if strings.HasPrefix(name, spoolTempPrefix) {
			// A write cut short by a crash: the batch never reached
			// the spool, and its events were never counted as sent.
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				log.Warn("removing an unfinished spool file", "file", name, "error", err)
			}
			continue
		}
		seq, ok := parseSpoolName(name)
		if !ok {
			if name != corruptDir {
				log.Warn("ignoring a foreign file in the spool directory", "file", name)
			}
			continue
		}
		if !de.Type().IsRegular() {
			log.Warn("ignoring a spool entry that is not a regular file", "file", name)
			continue
		}
		info, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("reading spool file %s: %w", name, err)
		}
		s.entries = append(s.entries, spoolEntry{seq: seq, size: info.Size(), events: -1})
		s.bytes += info.Size()
		s.next = max(s.next, seq+1)
	}
	slices.SortFunc(s.entries, func(a, b spoolEntry) int { return cmpUint(a.seq, b.seq) })
	s.files = len(s.entries)
	if s.files > 0 {
		log.Info("resuming the spool of a previous run", "batches", s.files, "bytes", s.bytes)
	}
	return s, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// add writes one encoded batch of events events as the newest file, or
// fails with errSpoolFull when it does not fit.
func (s *spool) add(data []byte, events int) error {
	size := int64(len(data))
	s.mu.Lock()
	if s.files+1 > s.maxFiles || s.bytes+size > s.maxBytes {
		s.mu.Unlock()
		return errSpoolFull
	}
	seq := s.next
	s.next++
	s.bytes += size
	s.files++
	s.mu.Unlock()

	if err := s.write(spoolName(seq), data); err != nil {
		s.mu.Lock()
		s.bytes -= size
		s.files--
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.entries = append(s.entries, spoolEntry{seq: seq, size: size, events: events})
	s.mu.Unlock()
	return nil
}

func (s *spool) write(name string, data []byte) error {
	f, err := os.CreateTemp(s.dir, spoolTempPrefix+"*")
	if err != nil {
		return fmt.Errorf("creating spool file: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing spool file %s: %w", name, err)
	}
	return nil
}

// oldest returns the batch to send next.
func (s *spool) oldest() (spoolEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return spoolEntry{}, false
	}
	return s.entries[0], true
}

// usage returns the spool's size in bytes and files.
func (s *spool) usage() (int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes, s.files
}

// load reads a batch file and, for one left by a previous run, checks it
// and counts its events. Every error wraps errCorrupt.
func (s *spool) load(e spoolEntry) ([]byte, int, error) {
	data, err := readSpoolFile(filepath.Join(s.dir, spoolName(e.seq)))
	if err != nil {
		return nil, 0, err
	}
	events := e.events
	if events < 0 {
		if events, err = checkSpoolFile(data); err != nil {
			return nil, 0, err
		}
	}
	return data, events, nil
}

// readSpoolFile reads a batch file, refusing one larger than any batch
// the server accepts.
func readSpoolFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, wire.MaxCompressedBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading: %w", errCorrupt, err)
	}
	if len(data) > wire.MaxCompressedBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", errCorrupt, wire.MaxCompressedBytes)
	}
	return data, nil
}

// checkSpoolFile decodes a batch file as the server will and returns its
// event count. A file torn by a crash fails gzip's checksum or length
// check; one from an incompatible sensor version fails validation.
func checkSpoolFile(data []byte) (int, error) {
	b, err := wire.DecodeBatch(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return len(b.Events), nil
}

// replace rewrites the oldest batch, e, with a corrected one.
func (s *spool) replace(e spoolEntry, data []byte, events int) error {
	if err := s.write(spoolName(e.seq), data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) > 0 && s.entries[0].seq == e.seq {
		s.bytes += int64(len(data)) - e.size
		s.entries[0].size, s.entries[0].events = int64(len(data)), events
	}
	return nil
}

// remove deletes the oldest batch once the server has it (or refused it
// for good).
func (s *spool) remove(e spoolEntry) error {
	err := os.Remove(filepath.Join(s.dir, spoolName(e.seq)))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		// Keeping the entry would resend the batch forever; dropping it
		// from the index while the file stays means it is sent again
		// after a restart, which the server's deduplication absorbs.
		err = fmt.Errorf("removing spool file: %w", err)
	}
	s.forget(e)
	return err
}

// setAside moves a corrupt batch file into corrupt/, keeping the newest
// few for a post mortem, or removes it when it is too large to keep.
func (s *spool) setAside(e spoolEntry) error {
	name := spoolName(e.seq)
	defer s.forget(e)
	if e.size > wire.MaxCompressedBytes {
		return s.remove(e)
	}
	aside := filepath.Join(s.dir, corruptDir)
	if err := os.MkdirAll(aside, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", aside, err)
	}
	if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(aside, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.Remove(filepath.Join(s.dir, name))
		return fmt.Errorf("setting aside spool file %s: %w", name, err)
	}
	list, err := os.ReadDir(aside)
	if err != nil {
		return fmt.Errorf("listing %s: %w", aside, err)
	}
	// ReadDir sorts by name, which for batch files is oldest first.
	for i := 0; i < len(list)-maxCorruptFiles; i++ {
		os.Remove(filepath.Join(aside, list[i].Name()))
	}
	return nil
}

// forget drops e, which must be the oldest, from the index.
func (s *spool) forget(e spoolEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 || s.entries[0].seq != e.seq {
		return
	}
	s.entries[0] = spoolEntry{}
	s.entries = s.entries[1:]
	s.bytes -= e.size
	s.files--
}
