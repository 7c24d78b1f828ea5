package update

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testBucket stands in for OSV's export bucket, the one thing these tests
// fake: the fixture exports under testdata/osv, laid out as the bucket is
// (<Ecosystem>/all.zip, modified_id.csv, <ID>.json) in a temporary
// directory and served over HTTP. It counts requests by path, and a test
// can replace the answer to any path.
type testBucket struct {
	t   *testing.T
	dir string
	srv *httptest.Server

	mu        sync.Mutex
	records   map[string]map[string][]byte // ecosystem → id → JSON
	requests  map[string]int
	overrides map[string]http.HandlerFunc
}

// newTestBucket publishes the fixture exports of ecosystems.
func newTestBucket(t *testing.T, ecosystems ...string) *testBucket {
	t.Helper()
	b := &testBucket{
		t:         t,
		dir:       t.TempDir(),
		records:   map[string]map[string][]byte{},
		requests:  map[string]int{},
		overrides: map[string]http.HandlerFunc{},
	}
	for _, eco := range ecosystems {
		b.records[eco] = readFixtureZip(t, filepath.Join("..", "..", "..", "testdata", "osv", eco, "all.zip"))
		b.publish(eco)
	}
	files := http.FileServer(http.Dir(b.dir))
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests[r.URL.Path]++
		h := b.overrides[r.URL.Path]
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// readFixtureZip returns the records of an OSV export zip by id.
func readFixtureZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(f.Name, ".json")] = data
	}
	return out
}

// URL is the bucket's base URL.
func (b *testBucket) URL() string { return b.srv.URL }

// publish writes an ecosystem's files: every record as <ID>.json, all.zip,
// and modified_id.csv generated from the records' "modified" fields. A
// record whose JSON does not parse keeps the time given by setRaw.
func (b *testBucket) publish(eco string) {
	b.t.Helper()
	dir := filepath.Join(b.dir, eco)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	var zipBuf bytes.Buffer
	zw := zip.NewWriter(&zipBuf)
	var lines []Change
	ids := make([]string, 0, len(b.records[eco]))
	for id := range b.records[eco] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		data := b.records[eco][id]
		if err := os.WriteFile(filepath.Join(dir, id+".json"), data, 0o644); err != nil {
			b.t.Fatal(err)
		}
		w, err := zw.Create(id + ".json")
		if err != nil {
			b.t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.t.Fatal(err)
		}
		lines = append(lines, Change{ID: id, Modified: modifiedOf(b.t, data)})
	}
	if err := zw.Close(); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "all.zip"), zipBuf.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
	slices.SortFunc(lines, func(a, c Change) int {
		if d := c.Modified.Compare(a.Modified); d != 0 {
			return d
		}
		return strings.Compare(a.ID, c.ID)
	})
	var csv bytes.Buffer
	for _, l := range lines {
		fmt.Fprintf(&csv, "%s,%s\n", l.Modified.Format(time.RFC3339), l.ID)
	}
	if err := os.WriteFile(filepath.Join(dir, "modified_id.csv"), csv.Bytes(), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// brokenMarker separates a broken record's JSON from the time it was
// "modified", which tests put in front of it.
const brokenMarker = "\x00"

func modifiedOf(t *testing.T, data []byte) time.Time {
	t.Helper()
	if ts, _, ok := strings.Cut(string(data), brokenMarker); ok {
		m, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var r struct {
		Modified time.Time `json:"modified"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("fixture record: %v", err)
	}
	return r.Modified
}

// edit changes a record's fields, republishing the ecosystem.
func (b *testBucket) edit(eco, id string, change func(rec map[string]any)) {
	b.t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(b.records[eco][id], &rec); err != nil {
		b.t.Fatalf("editing %s: %v", id, err)
	}
	change(rec)
	data, err := json.Marshal(rec)
	if err != nil {
		b.t.Fatal(err)
	}
	b.records[eco][id] = data
	b.publish(eco)
}

// setBroken replaces a record with JSON that does not parse, listed in
// modified_id.csv as modified at modified.
func (b *testBucket) setBroken(eco, id string, modified time.Time) {
	b.t.Helper()
	b.records[eco][id] = []byte(modified.Format(time.RFC3339) + brokenMarker)
	b.publish(eco)
	// The file itself is broken JSON naming the record.
	if err := os.WriteFile(filepath.Join(b.dir, eco, id+".json"), []byte(`{"id":"`+id+`","modified":`), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// override answers path with h instead of the file.
func (b *testBucket) override(path string, h http.HandlerFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h == nil {
		delete(b.overrides, path)
		return
	}
	b.overrides[path] = h
}

// count returns the requests for path since the last reset.
func (b *testBucket) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests[path]
}

// recordRequests returns the ids of the records fetched one by one.
func (b *testBucket) recordRequests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for p, n := range b.requests {
		if strings.HasSuffix(p, ".json") {
			for range n {
				ids = append(ids, strings.TrimSuffix(filepath.Base(p), ".json"))
			}
		}
	}
	slices.Sort(ids)
	return ids
}

func (b *testBucket) resetCounts() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.requests)
}
