package scheduler_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/notification"
	"github.com/bulwarkhq/bulwark/internal/referrer"
	"github.com/bulwarkhq/bulwark/internal/scheduler"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const slimTar = "../../testdata/images/slim.tar"

// newVulnDB builds a database from the shared OSV fixtures in a new
// directory.
func newVulnDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := vulndb.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(context.Background(), w, "../../testdata/osv"); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testVuln is a record written by the test (not published OSV) affecting
// the curl in slim.tar.
const testVuln = "BULWARK-TEST-0001"

const testRecord = `{
  "schema_version": "1.6.0",
  "id": "BULWARK-TEST-0001",
  "modified": "2026-01-01T00:00:00Z",
  "summary": "test record written by the scheduler tests",
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "curl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "7.88.1-10+deb12u99"}]}]
  }]
}`

// addTestVuln updates the database in dir with testRecord, making sure
// its build time (whole seconds) is later than before.
func addTestVuln(t *testing.T, dir string, after time.Time) {
	t.Helper()
	for !time.Now().UTC().Truncate(time.Second).After(after) {
		time.Sleep(50 * time.Millisecond)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, testVuln+".json"), []byte(testRecord), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := vulndb.Update(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(context.Background(), w, src); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// testRegistry is go-containerregistry's registry behind a handler that
// counts blob downloads and can be told to fail them.
type testRegistry struct {
	*testenv.Registry
	mu       sync.Mutex
	blobGets map[string]int
	failing  bool
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{blobGets: map[string]int{}}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.mu.Lock()
			r.blobGets[req.URL.Path]++
			failing := r.failing
			r.mu.Unlock()
			if failing {
				http.Error(w, "storage is down", http.StatusInternalServerError)
				return
			}
		}
		inner.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.Registry = &testenv.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
	return r
}

func (r *testRegistry) gets() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.blobGets {
		out[k] = v
	}
	return out
}

func (r *testRegistry) totalGets() int {
	n := 0
	for _, v := range r.gets() {
		n += v
	}
	return n
}

func (r *testRegistry) setFailing(f bool) {
	r.mu.Lock()
	r.failing = f
	r.mu.Unlock()
}

func pushRandom(t *testing.T, r *testRegistry, repoTag string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r.PushImage(t, repoTag, img)
}

func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), store.SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t *testing.T) *store.DB {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	db, err := store.OpenPostgres(context.Background(), pg.Database(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addRegistry(t *testing.T, db *store.DB, r *testRegistry, name string, settings store.RegistrySettings, nextPoll time.Time) *store.Registry {
	t.Helper()
	settings.Insecure = true
	reg := &store.Registry{Name: name, Type: "oci", URL: r.Host, Settings: settings, NextPollAt: nextPoll}
	if err := db.CreateRegistry(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// start runs a scheduler until the test ends.
func start(t *testing.T, o scheduler.Options) *scheduler.Scheduler {
	t.Helper()
	if o.Tick == 0 {
		o.Tick = 50 * time.Millisecond
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Hour
	}
	if o.Backoff == nil {
		o.Backoff = func(int) time.Duration { return 10 * time.Millisecond }
	}
	o.WorkDir = t.TempDir()
	s, err := scheduler.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scanned(db *store.DB, digest string) func() (bool, error) {
	return func() (bool, error) {
		img, err := db.ImageByDigest(context.Background(), digest)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil && !img.ScannedAt.IsZero(), err
	}
}

func hasFinding(db *store.DB, digest, vuln string) func() (bool, error) {
	return func() (bool, error) {
		img, err := db.ImageByDigest(context.Background(), digest)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		fs, _, err := db.Findings(context.Background(), store.FindingFilter{ImageID: img.ID, Vulnerability: vuln}, store.Page{})
		return len(fs) > 0, err
	}
}

func TestContinuousScanning(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(*testing.T) *store.DB
	}{
		{"sqlite", openSQLite},
		{"postgres", openPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := tc.open(t)
			reg := startRegistry(t)
			slim := reg.PushTarball(t, "app/slim:v1", slimTar)
			if again := reg.PushTarball(t, "app/slim:v2", slimTar); again.DigestStr() != slim.DigestStr() {
				t.Fatalf("slim.tar pushed twice has digests %s and %s", slim.DigestStr(), again.DigestStr())
			}
			rnd := pushRandom(t, reg, "app/random:latest")
			addRegistry(t, db, reg, "local", store.RegistrySettings{PublishReports: true}, time.Time{})
			dbDir := newVulnDB(t)
			var (
				seenMu sync.Mutex
				seen   = map[string]int{}
			)
			timesScanned := func(d string) int {
				seenMu.Lock()
				defer seenMu.Unlock()
				return seen[d]
			}
			s := start(t, scheduler.Options{Store: db, DBDir: dbDir, Owner: "replica-1", Scanned: func(d string) {
				seenMu.Lock()
				seen[d]++
				seenMu.Unlock()
			}})

			waitFor(t, "slim scanned", scanned(db, slim.DigestStr()))
			waitFor(t, "random scanned", scanned(db, rnd.DigestStr()))
			waitFor(t, "CVE-2025-4802 in slim", hasFinding(db, slim.DigestStr(), "CVE-2025-4802"))
			waitFor(t, "report published", func() (bool, error) {
				descs, err := referrer.List(ctx, slim, "", referrer.Options{Insecure: true})
				return len(descs) > 0, err
			})
			img, err := db.ImageByDigest(ctx, slim.DigestStr())
			if err != nil {
				t.Fatal(err)
			}
			var refs []string
			for _, r := range img.Refs {
				refs = append(refs, r.Repository+":"+r.Tag)
			}
			if diff := cmp.Diff([]string{"app/slim:v1", "app/slim:v2"}, refs); diff != "" {
				t.Errorf("refs of slim (-want +got):\n%s", diff)
			}
			if ok, _ := hasFinding(db, slim.DigestStr(), testVuln)(); ok {
				t.Fatalf("%s found before it is in the database", testVuln)
			}

			before := reg.totalGets()
			addTestVuln(t, dbDir, s.DBBuilt())
			waitFor(t, testVuln+" found by a re-match", hasFinding(db, slim.DigestStr(), testVuln))
			// The pull and the re-match each told who asked.
			waitFor(t, "the re-match to be announced", func() (bool, error) { return timesScanned(slim.DigestStr()) >= 2, nil })
			if !s.DBBuilt().After(img.DBBuiltAt) {
				t.Errorf("DBBuilt() = %v, not after the first scan's %v", s.DBBuilt(), img.DBBuiltAt)
			}
			if after := reg.totalGets(); after != before {
				t.Errorf("re-match downloaded blobs: %d blob GETs before, %d after", before, after)
			}
			rematches, _, err := db.Scans(ctx, store.ScanFilter{Kind: store.ScanRematch}, store.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rematches) == 0 || rematches[0].Reason != "db-update" {
				t.Errorf("re-match scans = %+v, want some with reason db-update", rematches)
			}
		})
	}
}

func TestFailingRegistryRetriesThenFails(t *testing.T) {
	// go-containerregistry retries 5xx answers itself, with second-long
	// pauses, on each of the scheduler's attempts: run beside the others.
	t.Parallel()
	ctx := context.Background()
	db := openSQLite(t)
	reg := startRegistry(t)
	reg.setFailing(true)
	dig := pushRandom(t, reg, "broken/img:v1")
	addRegistry(t, db, reg, "broken", store.RegistrySettings{}, time.Time{})
	start(t, scheduler.Options{Store: db, DBDir: newVulnDB(t)})

	var failed []store.Scan
	waitFor(t, "scan failed", func() (bool, error) {
		var err error
		failed, _, err = db.Scans(ctx, store.ScanFilter{Status: store.ScanFailed}, store.Page{})
		return len(failed) > 0, err
	})
	j := failed[0]
	if j.Reference != reg.Host+"/broken/img@"+dig.DigestStr() {
		t.Errorf("failed scan reference = %q", j.Reference)
	}
	if j.Attempts != j.MaxAttempts || j.Attempts < 2 {
		t.Errorf("failed after %d of %d attempts, want all of them (retried)", j.Attempts, j.MaxAttempts)
	}
	if !strings.Contains(j.Error, "500") {
		t.Errorf("scan error %q does not say what the registry answered", j.Error)
	}
}

func TestNotifyAndScanNow(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	reg := startRegistry(t)
	// Never polled: only notifications and manual scans queue anything.
	r := addRegistry(t, db, reg, "push-only", store.RegistrySettings{PollInterval: store.Duration(-1), PublishReports: true}, time.Now().Add(time.Hour))
	metrics := prometheus.NewRegistry()
	s := start(t, scheduler.Options{Store: db, DBDir: newVulnDB(t), Registerer: metrics})

	slim := reg.PushTarball(t, "team/slim:v1", slimTar)
	queued, err := s.Notify(ctx, []notification.Push{
		{Host: reg.Host, Repository: "team/slim", Digest: slim.DigestStr(), Tag: "v1"},
		{Host: "elsewhere.example:5000", Repository: "team/slim", Digest: slim.DigestStr(), Tag: "v1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if queued != 1 {
		t.Errorf("Notify queued %d scans, want 1 (the unknown host skipped)", queued)
	}
	waitFor(t, "notified image scanned", hasFinding(db, slim.DigestStr(), "CVE-2025-4802"))

	rnd := pushRandom(t, reg, "team/random:v1")
	j, err := s.ScanNow(ctx, r.ID, "team/random:v1")
	if err != nil {
		t.Fatal(err)
	}
	if want := reg.Host + "/team/random@" + rnd.DigestStr(); j.Reference != want || j.Reason != "manual" {
		t.Errorf("ScanNow queued %q for %q, want %q for manual", j.Reference, j.Reason, want)
	}
	waitFor(t, "manual scan done", scanned(db, rnd.DigestStr()))

	// Asking again for an image already scanned re-matches it: no pull.
	before := reg.totalGets()
	j, err = s.ScanNow(ctx, r.ID, reg.Host+"/team/slim:v1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second manual scan done", func() (bool, error) {
		got, err := db.ScanJob(ctx, j.ID)
		return err == nil && got.Status == store.ScanSucceeded, err
	})
	if after := reg.totalGets(); after != before {
		t.Errorf("scanning an already scanned image downloaded blobs: %d GETs before, %d after", before, after)
	}
	if _, err := s.ScanNow(ctx, r.ID, "other.example/team/slim:v1"); err == nil {
		t.Error("ScanNow of another registry's image succeeded")
	}

	// The report published for slim is announced like any push; it is
	// not an image, so it is passed over without an error.
	var report name.Digest
	waitFor(t, "report published", func() (bool, error) {
		descs, err := referrer.List(ctx, slim, "", referrer.Options{Insecure: true})
		if len(descs) > 0 {
			report = slim.Context().Digest(descs[0].Digest.String())
		}
		return len(descs) > 0, err
	})
	if _, err := s.Notify(ctx, []notification.Push{{Host: reg.Host, Repository: "team/slim", Digest: report.DigestStr()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "report's scan done", func() (bool, error) {
		js, _, err := db.Scans(ctx, store.ScanFilter{Reference: report.String()}, store.Page{})
		return err == nil && len(js) == 1 && js[0].Status == store.ScanSucceeded, err
	})

	got := map[string]float64{}
	families, err := metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	for _, key := range []string{
		"bulwark_notifications_total,result=queued",
		"bulwark_notifications_total,result=unknown_registry",
		"bulwark_scans_total,kind=pull,result=succeeded",
		"bulwark_referrer_publish_total,result=succeeded",
	} {
		if got[key] < 1 {
			t.Errorf("metric %s = %v, want at least 1", key, got[key])
		}
	}
	if _, ok := got["bulwark_vulndb_built_timestamp_seconds"]; !ok {
		t.Error("no bulwark_vulndb_built_timestamp_seconds metric")
	}
}

func TestPollScansMaxTagsAndSkipsReferrerTags(t *testing.T) {
	db := openSQLite(t)
	reg := startRegistry(t)
	var digests []name.Digest
	for _, tag := range []string{"v1", "v2", "v3"} {
		digests = append(digests, pushRandom(t, reg, "app/many:"+tag))
	}
	// A referrers fallback tag, as registries without the referrers API
	// get: an index, not an image to scan.
	reg.PushImage(t, "app/many:sha256-"+strings.Repeat("0", 64), mustRandom(t))
	addRegistry(t, db, reg, "capped", store.RegistrySettings{MaxTags: 2}, time.Time{})
	start(t, scheduler.Options{Store: db, DBDir: newVulnDB(t)})

	waitFor(t, "v1 scanned", scanned(db, digests[0].DigestStr()))
	waitFor(t, "v2 scanned", scanned(db, digests[1].DigestStr()))
	waitFor(t, "registry polled", func() (bool, error) {
		r, err := db.RegistryByName(context.Background(), "capped")
		return err == nil && !r.LastPolledAt.IsZero(), err
	})
	imgs, _, err := db.Images(context.Background(), store.ImageFilter{}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		var got []string
		for _, img := range imgs {
			got = append(got, img.Digest)
		}
		t.Errorf("images seen = %v, want only v1 and v2 (MaxTags 2, fallback tag skipped)", got)
	}
}

func TestDefaultBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 24 * time.Second, 36 * time.Second},
		{2, 48 * time.Second, 72 * time.Second},
		{4, 192 * time.Second, 288 * time.Second},
		{20, 48 * time.Minute, 72 * time.Minute},
	} {
		for range 20 {
			if d := scheduler.DefaultBackoff(tc.attempt); d < tc.min || d > tc.max {
				t.Errorf("DefaultBackoff(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}

func mustRandom(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestReplicasScanEachImageOnce(t *testing.T) {
	db := openPostgres(t)
	reg := startRegistry(t)
	digests := []name.Digest{reg.PushTarball(t, "app/slim:v1", slimTar)}
	reg.PushTarball(t, "app/slim:v2", slimTar)
	for _, tag := range []string{"app/a:v1", "app/b:v1", "app/c:v1"} {
		digests = append(digests, pushRandom(t, reg, tag))
	}
	addRegistry(t, db, reg, "shared", store.RegistrySettings{}, time.Time{})
	dbDir := newVulnDB(t)
	start(t, scheduler.Options{Store: db, DBDir: dbDir, Owner: "replica-1", Workers: 2})
	start(t, scheduler.Options{Store: db, DBDir: dbDir, Owner: "replica-2", Workers: 2})

	for _, d := range digests {
		waitFor(t, d.String()+" scanned", scanned(db, d.DigestStr()))
	}
	for path, n := range reg.gets() {
		if n != 1 {
			t.Errorf("blob %s downloaded %d times, want once", path, n)
		}
	}
}
