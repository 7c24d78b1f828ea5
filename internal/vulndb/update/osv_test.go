package update

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// testClient retries quickly.
func testClient() *Client {
	c := NewClient(nil)
	c.Backoff, c.MaxBackoff = time.Millisecond, 10*time.Millisecond
	c.StallTimeout = 5 * time.Second
	return c
}

func syncOpts(b *testBucket, ecosystems ...string) Options {
	return Options{SourceURL: b.URL(), Ecosystems: ecosystems, Client: testClient()}
}

// dbStatus reads the status of the database in dir.
func dbStatus(t *testing.T, dir string) *vulndb.Status {
	t.Helper()
	st, err := status(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func counts(st *vulndb.Status) map[string]int {
	m := map[string]int{}
	for _, e := range st.Ecosystems {
		m[e.Ecosystem] = e.Records
	}
	return m
}

// importedCounts are the counts of a database built by `db import` of the
// same fixture exports.
func importedCounts(t *testing.T, ecosystems ...string) map[string]int {
	t.Helper()
	dir := t.TempDir()
	w, err := vulndb.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, eco := range ecosystems {
		if err := vulndb.Import(t.Context(), w, filepath.Join("..", "..", "..", "testdata", "osv", eco, "all.zip")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return counts(dbStatus(t, dir))
}

// findingIDs matches one package and returns its findings' ids and
// summaries.
func findingIDs(t *testing.T, dir string, p model.Package) map[string]string {
	t.Helper()
	db, err := vulndb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Match(t.Context(), []model.Package{p})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range res.Findings {
		out[f.VulnerabilityID] = f.Summary
	}
	return out
}

// leftovers lists what is in dir besides the database and its state.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != vulndb.FileName && e.Name() != StateFileName {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestSyncFirstTimeDownloadsWholeExports(t *testing.T) {
	b := newTestBucket(t, "npm", "Debian")
	dir := t.TempDir()
	rep, err := Sync(t.Context(), dir, syncOpts(b, "npm", "Debian"))
	if err != nil {
		t.Fatal(err)
	}
	for _, er := range rep.Ecosystems {
		if er.Mode != ModeFull || er.Reason != "not synced before" {
			t.Errorf("%s: mode %s (%s), want a full first sync", er.Ecosystem, er.Mode, er.Reason)
		}
	}
	if diff := cmp.Diff(importedCounts(t, "Debian", "npm"), counts(dbStatus(t, dir))); diff != "" {
		t.Errorf("records per ecosystem (-imported +synced):\n%s", diff)
	}
	for _, p := range []string{"/npm/all.zip", "/Debian/all.zip", "/npm/modified_id.csv", "/Debian/modified_id.csv"} {
		if n := b.count(p); n != 1 {
			t.Errorf("%s fetched %d times, want 1", p, n)
		}
	}
	if ids := b.recordRequests(); len(ids) != 0 {
		t.Errorf("fetched records one by one in a full sync: %v", ids)
	}
	st, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{
		"npm":    time.Date(2023, 9, 5, 22, 58, 25, 0, time.UTC),
		"Debian": newestChange(t, b, "Debian"),
	}
	if diff := cmp.Diff(want, st.Ecosystems); diff != "" {
		t.Errorf("sync state (-want +got):\n%s", diff)
	}
	if st.Source != b.URL() || !st.Built.Equal(dbStatus(t, dir).Built) {
		t.Errorf("sync state names source %q built %s, want %q and the database's %s", st.Source, st.Built, b.URL(), dbStatus(t, dir).Built)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind %v", l)
	}
}

// newestChange is the time on the first line of an ecosystem's
// modified_id.csv.
func newestChange(t *testing.T, b *testBucket, eco string) time.Time {
	t.Helper()
	f, err := os.Open(filepath.Join(b.dir, eco, "modified_id.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	list, err := readChanges(f, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return list.Newest
}

func TestSyncIncrementalFetchesOnlyChanges(t *testing.T) {
	b := newTestBucket(t, "npm", "Debian")
	dir := t.TempDir()
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm", "Debian")); err != nil {
		t.Fatal(err)
	}
	before := dbStatus(t, dir)
	lodash := model.Package{Name: "lodash", Version: "4.17.15", Ecosystem: "npm"}
	if got := findingIDs(t, dir, lodash); len(got) != 3 {
		t.Fatalf("lodash 4.17.15 before the update: %v, want 3 findings", got)
	}

	later := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.edit("npm", "GHSA-35jh-r3h4-6jhm", func(r map[string]any) {
		r["modified"] = later.Format(time.RFC3339)
		r["summary"] = "Command Injection in lodash (revised)"
	})
	b.edit("npm", "GHSA-vh95-rmgr-6w4m", func(r map[string]any) {
		r["modified"] = later.Add(time.Minute).Format(time.RFC3339)
		r["summary"] = "Prototype Pollution in minimist (revised)"
	})
	b.edit("npm", "GHSA-p6mc-m468-83gw", func(r map[string]any) {
		r["modified"] = later.Add(2 * time.Minute).Format(time.RFC3339)
		r["withdrawn"] = later.Add(2 * time.Minute).Format(time.RFC3339)
	})
	b.resetCounts()

	// No ecosystems named: those of the database, Debian:12 being Debian.
	rep, err := Sync(t.Context(), dir, syncOpts(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []EcosystemReport{
		{Ecosystem: "Debian", Mode: ModeIncremental, SyncedTo: newestChange(t, b, "Debian")},
		{Ecosystem: "npm", Mode: ModeIncremental, Changed: 3, Updated: 2, Withdrawn: 1, SyncedTo: later.Add(2 * time.Minute)},
	}
	if diff := cmp.Diff(want, rep.Ecosystems); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	wantFetched := []string{"GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw", "GHSA-vh95-rmgr-6w4m"}
	if diff := cmp.Diff(wantFetched, b.recordRequests()); diff != "" {
		t.Errorf("records fetched (-want +got):\n%s", diff)
	}
	for _, p := range []string{"/npm/all.zip", "/Debian/all.zip"} {
		if n := b.count(p); n != 0 {
			t.Errorf("%s fetched in an incremental sync", p)
		}
	}

	wantLodash := map[string]string{
		"GHSA-29mw-wpgm-hmr9": "Regular Expression Denial of Service (ReDoS) in lodash",
		"GHSA-35jh-r3h4-6jhm": "Command Injection in lodash (revised)",
	}
	if diff := cmp.Diff(wantLodash, findingIDs(t, dir, lodash)); diff != "" {
		t.Errorf("lodash 4.17.15 after the update (-want +got):\n%s", diff)
	}
	minimist := findingIDs(t, dir, model.Package{Name: "minimist", Version: "1.2.0", Ecosystem: "npm"})
	if minimist["GHSA-vh95-rmgr-6w4m"] != "Prototype Pollution in minimist (revised)" || minimist["GHSA-xvch-5gv4-984h"] != "Prototype Pollution in minimist" {
		t.Errorf("minimist 1.2.0 after the update: %v", minimist)
	}
	after := dbStatus(t, dir)
	wantCounts := counts(before)
	wantCounts["npm"]--
	if diff := cmp.Diff(wantCounts, counts(after)); diff != "" {
		t.Errorf("records per ecosystem (-want +got):\n%s", diff)
	}
	debian := func(st *vulndb.Status) []vulndb.EcosystemStatus {
		return slices.DeleteFunc(slices.Clone(st.Ecosystems), func(e vulndb.EcosystemStatus) bool { return e.Ecosystem == "npm" })
	}
	if diff := cmp.Diff(debian(before), debian(after)); diff != "" {
		t.Errorf("untouched ecosystems changed (-before +after):\n%s", diff)
	}

	// Up to date: one modified_id.csv per ecosystem and nothing else.
	b.resetCounts()
	rep, err = Sync(t.Context(), dir, syncOpts(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, er := range rep.Ecosystems {
		if er.Mode != ModeIncremental || er.Changed != 0 {
			t.Errorf("%s: %s with %d changes, want incremental with none", er.Ecosystem, er.Mode, er.Changed)
		}
	}
	if ids := b.recordRequests(); len(ids) != 0 {
		t.Errorf("up-to-date sync fetched %v", ids)
	}
}

func TestSyncManyChangesDownloadsWholeExport(t *testing.T) {
	b := newTestBucket(t, "npm")
	dir := t.TempDir()
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm")); err != nil {
		t.Fatal(err)
	}
	later := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{"GHSA-35jh-r3h4-6jhm", "GHSA-vh95-rmgr-6w4m", "GHSA-p6mc-m468-83gw"} {
		b.edit("npm", id, func(r map[string]any) { r["modified"] = later.Format(time.RFC3339) })
	}
	b.resetCounts()
	opts := syncOpts(b)
	opts.FullThreshold = 2
	rep, err := Sync(t.Context(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if er := rep.Ecosystems[0]; er.Mode != ModeFull || er.Reason != "more than 2 changes" || er.Updated != 3 || er.Unchanged != 2 {
		t.Errorf("report %+v, want a full sync updating 3 records", er)
	}
	if b.count("/npm/all.zip") != 1 || len(b.recordRequests()) != 0 {
		t.Errorf("fetched all.zip %d times and records %v, want all.zip alone", b.count("/npm/all.zip"), b.recordRequests())
	}
}

func TestSyncRetriesServerErrors(t *testing.T) {
	b := newTestBucket(t, "npm")
	failures := 0
	b.override("/npm/modified_id.csv", func(w http.ResponseWriter, r *http.Request) {
		if failures < 2 {
			failures++
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		http.ServeFile(w, r, filepath.Join(b.dir, "npm", "modified_id.csv"))
	})
	dir := t.TempDir()
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm")); err != nil {
		t.Fatalf("sync with two 503s: %v", err)
	}
	if n := b.count("/npm/modified_id.csv"); n != 3 {
		t.Errorf("modified_id.csv requested %d times, want 3", n)
	}

	// A server that keeps failing: a bounded number of tries, and an error
	// naming the URL and status.
	b.override("/npm/all.zip", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	b.resetCounts()
	_, err := Sync(t.Context(), t.TempDir(), syncOpts(b, "npm"))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusInternalServerError || !strings.Contains(err.Error(), b.URL()+"/npm/all.zip") || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Errorf("sync against a failing server: %v", err)
	}
	if n := b.count("/npm/all.zip"); n != 4 {
		t.Errorf("all.zip requested %d times, want 4", n)
	}
}

func TestSyncRejectsBrokenRecords(t *testing.T) {
	b := newTestBucket(t, "npm")
	dir := t.TempDir()
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm")); err != nil {
		t.Fatal(err)
	}
	later := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.setBroken("npm", "GHSA-35jh-r3h4-6jhm", later)
	b.edit("npm", "GHSA-vh95-rmgr-6w4m", func(r map[string]any) {
		r["modified"] = later.Add(time.Minute).Format(time.RFC3339)
		r["summary"] = "revised"
	})
	// And one that cannot be fetched at all.
	b.edit("npm", "GHSA-xvch-5gv4-984h", func(r map[string]any) {
		r["modified"] = later.Add(-time.Minute).Format(time.RFC3339)
	})
	gone := "/npm/GHSA-xvch-5gv4-984h.json"
	b.override(gone, http.NotFound)

	rep, err := Sync(t.Context(), dir, syncOpts(b))
	if err != nil {
		t.Fatal(err)
	}
	if er := rep.Ecosystems[0]; er.Mode != ModeIncremental || er.Updated != 1 || er.Rejected != 2 {
		t.Errorf("report %+v, want 1 updated and 2 rejected", er)
	}
	st := dbStatus(t, dir)
	rejected := map[string]string{}
	for _, r := range st.Rejected {
		rejected[r.ID] = r.Source + ": " + r.Error
	}
	if len(rejected) != 2 || !strings.Contains(rejected["GHSA-35jh-r3h4-6jhm"], b.URL()+"/npm/GHSA-35jh-r3h4-6jhm.json: invalid OSV record") ||
		!strings.Contains(rejected["GHSA-xvch-5gv4-984h"], "404 Not Found") {
		t.Errorf("rejected records in status: %v", rejected)
	}
	// The record that could not be fetched is tried again next time; the
	// one that did not parse waits until it changes.
	stt, err := ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := later.Add(-time.Minute - time.Nanosecond); !stt.Ecosystems["npm"].Equal(want) {
		t.Errorf("npm synced to %s, want %s", stt.Ecosystems["npm"], want)
	}
	b.override(gone, nil)
	b.resetCounts()
	rep, err = Sync(t.Context(), dir, syncOpts(b))
	if err != nil {
		t.Fatal(err)
	}
	if er := rep.Ecosystems[0]; er.Updated != 1 || er.Unchanged != 1 || er.Rejected != 1 {
		t.Errorf("second report %+v, want the missing record updated", er)
	}
	if diff := cmp.Diff([]string{"GHSA-35jh-r3h4-6jhm", "GHSA-vh95-rmgr-6w4m", "GHSA-xvch-5gv4-984h"}, b.recordRequests()); diff != "" {
		t.Errorf("second sync fetched (-want +got):\n%s", diff)
	}
}

// endless writes data without end until the client goes away.
func endless(w http.ResponseWriter, r *http.Request) {
	chunk := make([]byte, 64<<10)
	for {
		if _, err := w.Write(chunk); err != nil || r.Context().Err() != nil {
			return
		}
	}
}

func TestSyncBoundsResponses(t *testing.T) {
	b := newTestBucket(t, "npm")
	b.override("/npm/all.zip", endless)
	dir := t.TempDir()
	opts := syncOpts(b, "npm")
	opts.MaxZipSize = 1 << 20
	_, err := Sync(t.Context(), dir, opts)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "/npm/all.zip") {
		t.Errorf("sync of an endless all.zip: %v, want ErrTooLarge naming the URL", err)
	}
	if b.count("/npm/all.zip") != 1 {
		t.Errorf("a too-large body was retried")
	}
	if _, err := os.Stat(filepath.Join(dir, vulndb.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed first sync left a database: %v", err)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind %v", l)
	}

	// An endless record is rejected, not fatal.
	b.override("/npm/all.zip", nil)
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm")); err != nil {
		t.Fatal(err)
	}
	b.edit("npm", "GHSA-35jh-r3h4-6jhm", func(r map[string]any) { r["modified"] = "2026-01-01T00:00:00Z" })
	b.override("/npm/GHSA-35jh-r3h4-6jhm.json", endless)
	rep, err := Sync(t.Context(), dir, syncOpts(b))
	if err != nil {
		t.Fatal(err)
	}
	st := dbStatus(t, dir)
	if rep.Ecosystems[0].Rejected != 1 || len(st.Rejected) != 1 || !strings.Contains(st.Rejected[0].Error, "response too large") {
		t.Errorf("endless record: report %+v, rejected %+v", rep.Ecosystems[0], st.Rejected)
	}

	// An endless modified_id.csv line is an error.
	b.override("/npm/modified_id.csv", endless)
	if _, err := Sync(t.Context(), dir, syncOpts(b)); err == nil || !strings.Contains(err.Error(), "line longer than") {
		t.Errorf("sync with an endless modified_id.csv: %v", err)
	}
}

func TestSyncCanceled(t *testing.T) {
	b := newTestBucket(t, "npm", "Debian")
	dir := t.TempDir()
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm")); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, vulndb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{}, 1)
	b.override("/Debian/all.zip", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1024))
		w.(http.Flusher).Flush()
		started <- struct{}{}
		<-r.Context().Done()
	})
	go func() {
		<-started
		cancel()
	}()
	done := make(chan error, 1)
	go func() {
		_, err := Sync(ctx, dir, Options{SourceURL: b.URL(), Ecosystems: []string{"npm", "Debian"}, Client: testClient()})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled sync returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sync did not stop when canceled")
	}
	after, err := os.ReadFile(filepath.Join(dir, vulndb.FileName))
	if err != nil || string(before) != string(after) {
		t.Errorf("a canceled sync changed the database (%v)", err)
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("left behind %v", l)
	}
}

func TestSyncEcosystemSelection(t *testing.T) {
	b := newTestBucket(t, "npm")
	if _, err := Sync(t.Context(), t.TempDir(), syncOpts(b)); !errors.Is(err, ErrNoEcosystems) {
		t.Errorf("sync of an empty database naming no ecosystem: %v, want ErrNoEcosystems", err)
	}
	if _, err := Sync(t.Context(), t.TempDir(), syncOpts(b, "npm", "../etc")); !errors.Is(err, ErrInvalidEcosystem) {
		t.Errorf("sync of ../etc: %v, want ErrInvalidEcosystem", err)
	}
	_, err := Sync(t.Context(), t.TempDir(), syncOpts(b, "npm", "Nonesuch"))
	if !errors.Is(err, ErrNoExport) || !strings.Contains(err.Error(), b.URL()+"/Nonesuch/modified_id.csv") {
		t.Errorf("sync of an ecosystem without export: %v, want ErrNoExport naming the URL", err)
	}
	if _, err := Sync(t.Context(), t.TempDir(), Options{SourceURL: "ftp://example.com", Ecosystems: []string{"npm"}}); !errors.Is(err, ErrInvalidSourceURL) {
		t.Errorf("sync from an ftp URL: %v, want ErrInvalidSourceURL", err)
	}
}

func TestSyncStateOfAnotherDatabaseIsIgnored(t *testing.T) {
	b := newTestBucket(t, "npm")
	dir := t.TempDir()
	if _, err := Sync(t.Context(), dir, syncOpts(b, "npm")); err != nil {
		t.Fatal(err)
	}
	// `db import` replaces the database; sync.json stays behind.
	time.Sleep(1100 * time.Millisecond) // build times have whole seconds
	w, err := vulndb.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(t.Context(), w, filepath.Join("..", "..", "..", "testdata", "osv", "npm", "all.zip")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	rep, err := Sync(t.Context(), dir, syncOpts(b))
	if err != nil {
		t.Fatal(err)
	}
	if er := rep.Ecosystems[0]; er.Ecosystem != "npm" || er.Mode != ModeFull {
		t.Errorf("sync after an import: %+v, want a full sync of npm", er)
	}
}
