package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database file inside the database directory.
const FileName = "vulndb.db"

// schemaVersion changes when the layout changes; a database of another
// version must be rebuilt.
const schemaVersion = "1"

// Buckets of the database file.
var (
	bucketMeta       = []byte("meta")       // schema, built time
	bucketRecords    = []byte("records")    // id → storedRecord
	bucketKeys       = []byte("keys")       // id → the record's index keys
	bucketDetails    = []byte("details")    // id → description
	bucketIndex      = []byte("index")      // ecosystem \0 name \0 id \0 n → entry
	bucketEcosystems = []byte("ecosystems") // ecosystem → EcosystemStatus
	bucketRejected   = []byte("rejected")   // source \0 n → Rejected
)

// ErrNoDatabase is returned when the database directory holds no database.
var ErrNoDatabase = errors.New("no vulnerability database")

// maxDetails bounds the description kept per record; reports show the
// summary and link to the rest.
const maxDetails = 4 << 10

// storedRecord is what a match reads of a record. The index keys a record
// wrote (for updates) and its description (for reports) are kept apart.
type storedRecord struct {
	ID         string    `json:"id"`
	Modified   time.Time `json:"modified"`
	Aliases    []string  `json:"aliases,omitempty"`
	Summary    string    `json:"summary,omitempty"`
	References []string  `json:"references,omitempty"`
	Ecosystems []string  `json:"ecosystems"`
}

// entry is one indexed affected package of a record (see encoding.go).
type entry struct {
	ID       string
	Ranges   []Range
	Versions []string
	Severity Score
}

// EcosystemStatus describes one ecosystem in the database.
type EcosystemStatus struct {
	Ecosystem string `json:"ecosystem"`
	Records   int    `json:"records"`
	// Newest is the newest modification time among its records.
	Newest time.Time `json:"newest"`
}

// Rejected is a record that could not be imported.
type Rejected struct {
	Source string `json:"source"`
	ID     string `json:"id,omitempty"`
	Error  string `json:"error"`
}

func indexPrefix(ecosystem, name string) []byte {
	return []byte(canonicalEcosystem(ecosystem) + "\x00" + normalizeName(ecosystem, name) + "\x00")
}

// canonicalEcosystem folds the spellings of one ecosystem that records and
// scans use differently: Ubuntu's ":LTS" suffix.
func canonicalEcosystem(e string) string {
	return strings.TrimSuffix(e, ":LTS")
}

var pypiSeparators = regexp.MustCompile(`[-_.]+`)

// normalizeName applies an ecosystem's name equivalence: PyPI names are
// case-insensitive and treat runs of "-", "_" and "." alike (PEP 503);
// NuGet package ids are case-insensitive.
func normalizeName(ecosystem, name string) string {
	switch base, _, _ := strings.Cut(ecosystem, ":"); base {
	case "PyPI":
		return pypiSeparators.ReplaceAllString(strings.ToLower(name), "-")
	case "NuGet":
		return strings.ToLower(name)
	}
	return name
}

// Writer builds a new version of the database in a temporary file beside
// the current one; Commit swaps it in atomically, so readers see the old
// database or the new one and never a mix.
type Writer struct {
	dir, tmp string
	db       *bolt.DB
	tx       *bolt.Tx
	pending  int
	rejected int
	Stats    WriteStats
}

// WriteStats counts what a Writer did.
type WriteStats struct {
	Added, Updated, Unchanged, Withdrawn, Rejected int
}

// Create starts an empty database in dir.
func Create(dir string) (*Writer, error) { return newWriter(dir, false) }

// Update starts from a copy of the database in dir, for incremental
// updates; with no database there, it starts empty.
func Update(dir string) (*Writer, error) { return newWriter(dir, true) }

func newWriter(dir string, fromCurrent bool) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating database directory: %w", err)
	}
	f, err := os.CreateTemp(dir, FileName+".new-*")
	if err != nil {
		return nil, fmt.Errorf("creating database file: %w", err)
	}
	tmp := f.Name()
	if fromCurrent {
		if err := copyCurrent(filepath.Join(dir, FileName), f); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, err
		}
	}
	f.Close()
	db, err := bolt.Open(tmp, 0o644, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("opening new database: %w", err)
	}
	// Durability comes from the rename in Commit, after one sync.
	db.NoSync = true
	w := &Writer{dir: dir, tmp: tmp, db: db}
	if err := w.begin(); err != nil {
		w.Abort()
		return nil, err
	}
	for _, b := range [][]byte{bucketMeta, bucketRecords, bucketKeys, bucketDetails, bucketIndex, bucketEcosystems, bucketRejected} {
		if _, err := w.tx.CreateBucketIfNotExists(b); err != nil {
			w.Abort()
			return nil, fmt.Errorf("creating bucket %s: %w", b, err)
		}
	}
	if v := w.tx.Bucket(bucketMeta).Get([]byte("schema")); fromCurrent && v != nil && string(v) != schemaVersion {
		w.Abort()
		return nil, fmt.Errorf("database schema %s, this version of bulwark writes %s: run `bulwark db import` to rebuild", v, schemaVersion)
	}
	// Rejections are those of the sources of this run.
	if err := w.tx.DeleteBucket(bucketRejected); err != nil {
		w.Abort()
		return nil, fmt.Errorf("clearing rejected records: %w", err)
	}
	if _, err := w.tx.CreateBucket(bucketRejected); err != nil {
		w.Abort()
		return nil, fmt.Errorf("creating rejected bucket: %w", err)
	}
	return w, nil
}

func copyCurrent(path string, dst *os.File) error {
	src, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening current database: %w", err)
	}
	defer src.Close()
	if _, err := io.Copy(dst, src); err != nil {
		return fmt.Errorf("copying current database: %w", err)
	}
	return nil
}

func (w *Writer) begin() error {
	tx, err := w.db.Begin(true)
	if err != nil {
		return fmt.Errorf("starting database transaction: %w", err)
	}
	w.tx = tx
	w.pending = 0
	return nil
}

// flushEvery bounds the records per transaction, so a large import's
// memory stays bounded.
const flushEvery = 2000

func (w *Writer) step() error {
	w.pending++
	if w.pending < flushEvery {
		return nil
	}
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("writing database: %w", err)
	}
	return w.begin()
}

// Put adds or replaces a record. A withdrawn record is removed instead.
func (w *Writer) Put(r *Record) error {
	records := w.tx.Bucket(bucketRecords)
	old := records.Get([]byte(r.ID))
	if old != nil {
		var prev storedRecord
		if err := json.Unmarshal(old, &prev); err != nil {
			return fmt.Errorf("reading stored record %s: %w", r.ID, err)
		}
		if r.Withdrawn == nil && prev.Modified.Equal(r.Modified) && !r.Modified.IsZero() {
			w.Stats.Unchanged++
			return nil
		}
		if err := w.remove(&prev); err != nil {
			return err
		}
	}
	switch {
	case r.Withdrawn != nil:
		w.Stats.Withdrawn++
		return w.step()
	case old != nil:
		w.Stats.Updated++
	default:
		w.Stats.Added++
	}
	if err := w.insert(r); err != nil {
		return err
	}
	return w.step()
}

func (w *Writer) remove(prev *storedRecord) error {
	id := []byte(prev.ID)
	var keys [][]byte
	if v := w.tx.Bucket(bucketKeys).Get(id); v != nil {
		if err := json.Unmarshal(v, &keys); err != nil {
			return fmt.Errorf("reading index keys of %s: %w", prev.ID, err)
		}
	}
	index := w.tx.Bucket(bucketIndex)
	for _, k := range keys {
		if err := index.Delete(k); err != nil {
			return fmt.Errorf("removing index of %s: %w", prev.ID, err)
		}
	}
	for _, b := range [][]byte{bucketKeys, bucketDetails, bucketRecords} {
		if err := w.tx.Bucket(b).Delete(id); err != nil {
			return fmt.Errorf("removing %s: %w", prev.ID, err)
		}
	}
	return nil
}

func (w *Writer) insert(r *Record) error {
	sr := storedRecord{
		ID:       r.ID,
		Modified: r.Modified,
		Aliases:  mergeIDs(r.ID, r.Aliases, r.Upstream),
		Summary:  r.Summary,
	}
	var keys [][]byte
	for _, ref := range r.References {
		if len(sr.References) < 16 && ref.URL != "" {
			sr.References = append(sr.References, ref.URL)
		}
	}
	index := w.tx.Bucket(bucketIndex)
	for i := range r.Affected {
		a := &r.Affected[i]
		e := entry{ID: r.ID, Versions: a.Versions, Severity: severityOf(r, a)}
		for _, rg := range a.Ranges {
			if rg.Type == RangeEcosystem || rg.Type == RangeSemver {
				e.Ranges = append(e.Ranges, rg)
			}
		}
		if len(e.Ranges) == 0 && len(e.Versions) == 0 {
			continue
		}
		key := fmt.Appendf(indexPrefix(a.Package.Ecosystem, a.Package.Name), "%s\x00%d", r.ID, i)
		if err := index.Put(key, encodeEntry(&e)); err != nil {
			return fmt.Errorf("indexing %s: %w", r.ID, err)
		}
		keys = append(keys, key)
		eco := canonicalEcosystem(a.Package.Ecosystem)
		if !contains(sr.Ecosystems, eco) {
			sr.Ecosystems = append(sr.Ecosystems, eco)
		}
	}
	id := []byte(r.ID)
	val, err := json.Marshal(sr)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", r.ID, err)
	}
	keysVal, err := json.Marshal(keys)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", r.ID, err)
	}
	if err := w.tx.Bucket(bucketRecords).Put(id, val); err != nil {
		return fmt.Errorf("storing %s: %w", r.ID, err)
	}
	if err := w.tx.Bucket(bucketKeys).Put(id, keysVal); err != nil {
		return fmt.Errorf("storing %s: %w", r.ID, err)
	}
	if r.Details != "" {
		if err := w.tx.Bucket(bucketDetails).Put(id, []byte(truncate(r.Details, maxDetails))); err != nil {
			return fmt.Errorf("storing %s: %w", r.ID, err)
		}
	}
	return nil
}

// mergeIDs returns the other ids of a flaw, without the record's own.
func mergeIDs(self string, lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, id := range l {
			if id != self && id != "" && !contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Reject records a record that could not be imported, so it is reported
// by `bulwark db status` rather than dropped silently.
func (w *Writer) Reject(source, id string, reason error) error {
	w.Stats.Rejected++
	w.rejected++
	val, err := json.Marshal(Rejected{Source: source, ID: id, Error: reason.Error()})
	if err != nil {
		return fmt.Errorf("encoding rejection: %w", err)
	}
	key := fmt.Appendf(nil, "%s\x00%09d", source, w.rejected)
	if err := w.tx.Bucket(bucketRejected).Put(key, val); err != nil {
		return fmt.Errorf("recording rejection: %w", err)
	}
	return w.step()
}

// Commit recounts the ecosystems, writes the database to disk and swaps it
// in place of the current one.
func (w *Writer) Commit() error {
	if err := w.recount(); err != nil {
		w.Abort()
		return err
	}
	meta := w.tx.Bucket(bucketMeta)
	if err := meta.Put([]byte("schema"), []byte(schemaVersion)); err != nil {
		w.Abort()
		return fmt.Errorf("writing schema version: %w", err)
	}
	if err := meta.Put([]byte("built"), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		w.Abort()
		return fmt.Errorf("writing build time: %w", err)
	}
	if err := w.tx.Commit(); err != nil {
		w.Abort()
		return fmt.Errorf("writing database: %w", err)
	}
	w.tx = nil
	if err := w.db.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("syncing database: %w", err)
	}
	if err := w.db.Close(); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("closing database: %w", err)
	}
	if err := os.Rename(w.tmp, filepath.Join(w.dir, FileName)); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("swapping in the new database: %w", err)
	}
	return nil
}

// recount rebuilds the per-ecosystem counts from the stored records.
func (w *Writer) recount() error {
	stats := map[string]*EcosystemStatus{}
	err := w.tx.Bucket(bucketRecords).ForEach(func(_, v []byte) error {
		var sr storedRecord
		if err := json.Unmarshal(v, &sr); err != nil {
			return fmt.Errorf("reading stored record: %w", err)
		}
		for _, eco := range sr.Ecosystems {
			s := stats[eco]
			if s == nil {
				s = &EcosystemStatus{Ecosystem: eco}
				stats[eco] = s
			}
			s.Records++
			if sr.Modified.After(s.Newest) {
				s.Newest = sr.Modified
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := w.tx.DeleteBucket(bucketEcosystems); err != nil {
		return fmt.Errorf("clearing ecosystem counts: %w", err)
	}
	b, err := w.tx.CreateBucket(bucketEcosystems)
	if err != nil {
		return fmt.Errorf("creating ecosystem counts: %w", err)
	}
	for eco, s := range stats {
		val, err := json.Marshal(s)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(eco), val); err != nil {
			return fmt.Errorf("writing ecosystem counts: %w", err)
		}
	}
	return nil
}

// Abort discards the new database.
func (w *Writer) Abort() {
	if w.tx != nil {
		_ = w.tx.Rollback()
		w.tx = nil
	}
	_ = w.db.Close()
	_ = os.Remove(w.tmp)
}

// keyID extracts the record id from an index key.
func keyID(key, prefix []byte) string {
	rest := bytes.TrimPrefix(key, prefix)
	id, _, _ := bytes.Cut(rest, []byte{0})
	return string(id)
}
