package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// DefaultSourceURL is OSV's public export bucket.
const DefaultSourceURL = "https://osv-vulnerabilities.storage.googleapis.com"

// Defaults of Options.
const (
	// DefaultFullThreshold is the number of changed records above which
	// an ecosystem's all.zip is cheaper than fetching records one by one.
	DefaultFullThreshold = 2000
	// DefaultMaxZipSize bounds a downloaded all.zip; the largest export
	// is a few hundred megabytes.
	DefaultMaxZipSize = 2 << 30
)

// maxModifiedSize bounds a modified_id.csv download. A per-ecosystem file
// is a few megabytes, and reading stops at the last sync anyway.
const maxModifiedSize = 256 << 20

// recordWorkers is how many records are fetched at once.
const recordWorkers = 8

var (
	// ErrNoEcosystems is returned when neither Options.Ecosystems nor the
	// database names an ecosystem to update.
	ErrNoEcosystems = errors.New("no ecosystems to update")
	// ErrInvalidEcosystem marks an ecosystem name that cannot name an
	// export.
	ErrInvalidEcosystem = errors.New("invalid ecosystem name")
	// ErrNoExport marks an ecosystem the source has no export for.
	ErrNoExport = errors.New("no OSV export for ecosystem")
	// ErrInvalidSourceURL marks a source URL that is not http or https.
	ErrInvalidSourceURL = errors.New("invalid source URL")
)

// Options configure Sync.
type Options struct {
	// SourceURL is the base URL of the exports, laid out as OSV's bucket:
	// <base>/<Ecosystem>/all.zip, modified_id.csv and <ID>.json.
	// DefaultSourceURL when empty.
	SourceURL string
	// Ecosystems are the export names to sync ("Debian", "crates.io").
	// Empty means the ecosystems already in the database, by the part of
	// their name before any ":" ("Debian:12" is the Debian export); those
	// the source has no export for are then skipped with a warning.
	Ecosystems []string
	// Client fetches the exports; NewClient(Logger) when nil.
	Client *Client
	// Logger receives a line per ecosystem; nil discards.
	Logger *slog.Logger
	// FullThreshold is the number of changed records above which the
	// whole export is downloaded instead; DefaultFullThreshold when zero.
	FullThreshold int
	// MaxZipSize bounds a downloaded all.zip; DefaultMaxZipSize when zero.
	MaxZipSize int64
}

// Mode says how an ecosystem was synced.
type Mode string

// Modes of EcosystemReport.
const (
	ModeFull        Mode = "full"
	ModeIncremental Mode = "incremental"
)

// EcosystemReport says what Sync did to one ecosystem.
type EcosystemReport struct {
	Ecosystem string `json:"ecosystem"`
	Mode      Mode   `json:"mode"`
	// Reason says why the ecosystem was downloaded in full.
	Reason string `json:"reason,omitempty"`
	// Changed is the number of records modified_id.csv listed as changed
	// since the last sync (incremental syncs only).
	Changed   int `json:"changed"`
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Withdrawn int `json:"withdrawn"`
	Rejected  int `json:"rejected"`
	// SyncedTo is the time of the newest change now applied.
	SyncedTo time.Time `json:"syncedTo"`
}

// Report says what Sync did.
type Report struct {
	Source     string            `json:"source"`
	Ecosystems []EcosystemReport `json:"ecosystems"`
	// Skipped are database ecosystems the source has no export for.
	Skipped []string `json:"skipped,omitempty"`
}

// Sync brings the database in dir up to date with the OSV exports. An
// ecosystem synced before from the same source, into this very database,
// is updated from its modified_id.csv: only the records changed since are
// fetched, and a record that cannot be fetched or parsed is rejected (and
// listed by `bulwark db status`) without failing the update. An ecosystem
// that is new, or has more than Options.FullThreshold changes, is
// downloaded whole. All of it goes into one vulndb.Writer and one commit;
// the sync state is written after the commit.
func Sync(ctx context.Context, dir string, opts Options) (*Report, error) {
	s, err := newSyncer(opts)
	if err != nil {
		return nil, err
	}
	cur, err := currentStatus(dir)
	if err != nil {
		return nil, err
	}
	prev, err := ReadState(dir)
	if err != nil {
		s.log.Warn("ignoring the sync state; ecosystems will be downloaded in full", "error", err)
		prev = &State{}
	}
	if cur == nil || !prev.describes(s.source, cur.Built) {
		if len(prev.Ecosystems) > 0 {
			s.log.Info("the sync state is of another database or source; ecosystems will be downloaded in full", "state", filepath.Join(dir, StateFileName))
		}
		prev = &State{}
	}
	ecosystems, explicit, err := s.selectEcosystems(opts.Ecosystems, cur, prev)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating database directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".osv-download-")
	if err != nil {
		return nil, fmt.Errorf("creating download directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	w, err := vulndb.Update(dir)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			w.Abort()
		}
	}()
	rep := &Report{Source: s.source}
	next := &State{Source: s.source, Ecosystems: map[string]time.Time{}}
	for eco, t := range prev.Ecosystems {
		next.Ecosystems[eco] = t
	}
	for _, eco := range ecosystems {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		since, known := prev.Ecosystems[eco]
		er, err := s.syncEcosystem(ctx, w, tmp, eco, since, known)
		if errors.Is(err, ErrNoExport) && !explicit {
			s.log.Warn("skipping an ecosystem of the database the source has no export for", "ecosystem", eco, "error", err)
			rep.Skipped = append(rep.Skipped, eco)
			continue
		}
		if err != nil {
			return nil, err
		}
		next.Ecosystems[eco] = er.SyncedTo
		rep.Ecosystems = append(rep.Ecosystems, er)
	}
	committed = true
	if err := w.Commit(); err != nil {
		return nil, err
	}
	// The database is in; a state that fails to be written only costs
	// the next update a full download, so it is not an error.
	if st, err := currentStatus(dir); err != nil || st == nil {
		s.log.Warn("not writing the sync state: cannot read the new database", "error", err)
	} else {
		next.Built = st.Built
		if err := writeState(dir, next); err != nil {
			s.log.Warn("not writing the sync state; the next update downloads in full", "error", err)
		}
	}
	return rep, nil
}

// syncer holds one Sync's settings.
type syncer struct {
	source        string
	client        *Client
	log           *slog.Logger
	fullThreshold int
	maxZipSize    int64
}

func newSyncer(opts Options) (*syncer, error) {
	s := &syncer{
		source:        strings.TrimRight(opts.SourceURL, "/"),
		client:        opts.Client,
		log:           opts.Logger,
		fullThreshold: opts.FullThreshold,
		maxZipSize:    opts.MaxZipSize,
	}
	if s.source == "" {
		s.source = DefaultSourceURL
	}
	u, err := url.Parse(s.source)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: want an http or https URL", ErrInvalidSourceURL, opts.SourceURL)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.client == nil {
		s.client = NewClient(s.log)
	}
	if s.fullThreshold <= 0 {
		s.fullThreshold = DefaultFullThreshold
	}
	if s.maxZipSize <= 0 {
		s.maxZipSize = DefaultMaxZipSize
	}
	return s, nil
}

// currentStatus reads the status of the database in dir; nil when there
// is none.
func currentStatus(dir string) (*vulndb.Status, error) {
	db, err := vulndb.Open(dir)
	if errors.Is(err, vulndb.ErrNoDatabase) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Status()
}

// selectEcosystems returns the ecosystems to sync, sorted, and whether the
// caller named them.
func (s *syncer) selectEcosystems(asked []string, cur *vulndb.Status, prev *State) ([]string, bool, error) {
	var out []string
	add := func(eco string) {
		if !slices.Contains(out, eco) {
			out = append(out, eco)
		}
	}
	for _, eco := range asked {
		eco = strings.TrimSpace(eco)
		if err := checkEcosystem(eco); err != nil {
			return nil, false, err
		}
		add(eco)
	}
	if len(out) > 0 {
		return out, true, nil
	}
	if cur != nil {
		for _, e := range cur.Ecosystems {
			base, _, _ := strings.Cut(e.Ecosystem, ":")
			if checkEcosystem(base) == nil {
				add(base)
			}
		}
	}
	for eco := range prev.Ecosystems {
		add(eco)
	}
	if len(out) == 0 {
		return nil, false, ErrNoEcosystems
	}
	slices.Sort(out)
	return out, false, nil
}

// checkEcosystem accepts a name that can be one path segment of a URL.
func checkEcosystem(eco string) error {
	if eco == "" || len(eco) > 128 || eco == "." || eco == ".." || strings.ContainsAny(eco, "/\\") {
		return fmt.Errorf("%w: %q", ErrInvalidEcosystem, eco)
	}
	for _, r := range eco {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q", ErrInvalidEcosystem, eco)
		}
	}
	return nil
}

func (s *syncer) url(eco, file string) string {
	return s.source + "/" + url.PathEscape(eco) + "/" + url.PathEscape(file)
}

// syncEcosystem applies one ecosystem's changes since the last sync (if
// known) to w, fetching records one by one or the whole export.
func (s *syncer) syncEcosystem(ctx context.Context, w *vulndb.Writer, tmp, eco string, since time.Time, known bool) (EcosystemReport, error) {
	er := EcosystemReport{Ecosystem: eco, Mode: ModeIncremental}
	before := w.Stats
	start := time.Now()
	limit := s.fullThreshold
	if !known {
		// Only the newest line is needed: how far the export reaches.
		limit = 0
	}
	list, err := s.changes(ctx, eco, since, limit)
	switch {
	case errors.Is(err, errUnsorted):
		s.log.Warn("modified_id.csv is out of order; downloading the whole export", "ecosystem", eco, "error", err)
		er.Mode, er.Reason = ModeFull, "modified_id.csv out of order"
		list = &changeList{}
	case err != nil:
		return er, err
	case !known:
		er.Mode, er.Reason = ModeFull, "not synced before"
	case list.Overflow:
		er.Mode, er.Reason = ModeFull, fmt.Sprintf("more than %d changes", s.fullThreshold)
	}
	if er.Mode == ModeFull {
		er.SyncedTo, err = s.full(ctx, w, tmp, eco, list.Newest)
	} else {
		er.Changed = len(list.Changes)
		er.SyncedTo, err = s.incremental(ctx, w, eco, list, since)
	}
	if err != nil {
		return er, err
	}
	after := w.Stats
	er.Added = after.Added - before.Added
	er.Updated = after.Updated - before.Updated
	er.Unchanged = after.Unchanged - before.Unchanged
	er.Withdrawn = after.Withdrawn - before.Withdrawn
	er.Rejected = after.Rejected - before.Rejected
	attrs := []any{"ecosystem", eco, "mode", er.Mode, "added", er.Added, "updated", er.Updated,
		"withdrawn", er.Withdrawn, "rejected", er.Rejected, "took", time.Since(start).Round(time.Millisecond)}
	if er.Mode == ModeFull {
		attrs = append(attrs, "reason", er.Reason, "unchanged", er.Unchanged)
	} else {
		attrs = append(attrs, "changed", er.Changed)
	}
	s.log.Info("ecosystem synced", attrs...)
	return er, nil
}

// changes reads the ecosystem's modified_id.csv down to since.
func (s *syncer) changes(ctx context.Context, eco string, since time.Time, limit int) (*changeList, error) {
	u := s.url(eco, "modified_id.csv")
	var list *changeList
	err := s.client.Get(ctx, u, maxModifiedSize, func(body io.Reader, _ http.Header) error {
		var err error
		list, err = readChanges(body, since, limit)
		return err
	})
	var se *StatusError
	if errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusForbidden) {
		// GCS answers 403 for objects that do not exist in a public bucket
		// without list permission.
		return nil, fmt.Errorf("%w %q: %w", ErrNoExport, eco, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the changes of %s: %w", eco, err)
	}
	return list, nil
}

// full imports the ecosystem's all.zip into w. It returns how far the
// export is now synced: the newest time in modified_id.csv, or the zip's
// Last-Modified if that is older — a zip uploaded before its
// modified_id.csv lacks the newest changes, which the next update then
// fetches.
func (s *syncer) full(ctx context.Context, w *vulndb.Writer, tmp, eco string, newest time.Time) (time.Time, error) {
	u := s.url(eco, "all.zip")
	dir := filepath.Join(tmp, safeFileName(eco))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return time.Time{}, fmt.Errorf("creating download directory: %w", err)
	}
	path := filepath.Join(dir, "all.zip")
	s.log.Info("downloading the whole export", "ecosystem", eco, "url", u)
	lastModified, err := download(ctx, s.client, u, path, s.maxZipSize)
	if err != nil {
		return time.Time{}, fmt.Errorf("downloading the %s export: %w", eco, err)
	}
	if err := vulndb.Import(ctx, w, path); err != nil {
		return time.Time{}, fmt.Errorf("importing the %s export from %s: %w", eco, u, err)
	}
	if err := os.Remove(path); err != nil {
		return time.Time{}, fmt.Errorf("removing downloaded export: %w", err)
	}
	// Last-Modified has whole seconds; a second's margin keeps a record
	// changed in the upload's second.
	if uploaded := lastModified.Add(-time.Second); !lastModified.IsZero() && (newest.IsZero() || uploaded.Before(newest)) {
		return uploaded, nil
	}
	return newest, nil
}

// download writes url to path, at most limit bytes, and returns the
// response's Last-Modified time (zero if absent).
func download(ctx context.Context, c *Client, u, path string, limit int64) (time.Time, error) {
	f, err := os.Create(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("creating %s: %w", path, err)
	}
	defer f.Close()
	var lastModified time.Time
	err = c.Get(ctx, u, limit, func(body io.Reader, h http.Header) error {
		// A retry starts the file over.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding %s: %w", path, err)
		}
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("truncating %s: %w", path, err)
		}
		if _, err := io.Copy(f, body); err != nil {
			return err
		}
		lastModified, _ = http.ParseTime(h.Get("Last-Modified"))
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if err := f.Close(); err != nil {
		return time.Time{}, fmt.Errorf("writing %s: %w", path, err)
	}
	return lastModified, nil
}

// safeFileName makes an ecosystem name a file name.
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// incremental fetches the changed records and puts them into w. It
// returns how far the ecosystem is now synced: the export's newest
// change, or, when a record could not be fetched, just before that
// record's change, so the next update tries it again. A record that was
// fetched but does not parse is rejected for good: it comes back only
// when it changes again.
func (s *syncer) incremental(ctx context.Context, w *vulndb.Writer, eco string, list *changeList, since time.Time) (time.Time, error) {
	syncedTo := since
	if list.Newest.After(syncedTo) {
		syncedTo = list.Newest
	}
	var failed time.Time
	err := s.fetchRecords(ctx, eco, list.Changes, func(c Change, u string, data []byte, err error) error {
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, ErrTooLarge) && (failed.IsZero() || c.Modified.Before(failed)) {
				failed = c.Modified
			}
			return w.Reject(u, c.ID, err)
		}
		rec, err := vulndb.ParseRecord(data)
		if err != nil {
			return w.Reject(u, c.ID, err)
		}
		if rec.ID != c.ID {
			return w.Reject(u, c.ID, fmt.Errorf("%w: the file of %s holds record %q", vulndb.ErrInvalidRecord, c.ID, rec.ID))
		}
		return w.Put(rec)
	})
	if err != nil {
		return time.Time{}, err
	}
	if !failed.IsZero() && failed.Add(-time.Nanosecond).Before(syncedTo) {
		syncedTo = failed.Add(-time.Nanosecond)
		s.log.Warn("records could not be fetched; the next update tries them again", "ecosystem", eco)
	}
	return syncedTo, nil
}

// fetchRecords fetches the records of changes, recordWorkers at a time,
// and hands each to apply, one at a time, in the order they arrive. It
// stops at the first error apply returns.
func (s *syncer) fetchRecords(ctx context.Context, eco string, changes []Change, apply func(c Change, url string, data []byte, err error) error) error {
	if len(changes) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i    int
		data []byte
		err  error
	}
	jobs := make(chan int)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(recordWorkers, len(changes)) {
		wg.Go(func() {
			for i := range jobs {
				data, err := s.client.Bytes(ctx, s.url(eco, changes[i].ID+".json"), vulndb.MaxRecordSize)
				select {
				case results <- result{i: i, data: data, err: err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range changes {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var first error
	for r := range results {
		if first != nil {
			continue
		}
		c := changes[r.i]
		if err := apply(c, s.url(eco, c.ID+".json"), r.data, r.err); err != nil {
			first = err
			cancel()
		}
	}
	if first != nil {
		return first
	}
	return ctx.Err()
}
