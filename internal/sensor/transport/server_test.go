package transport

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// fakeServer implements the server's side of the two endpoints as the
// protocol defines them: enrolment with a token, ingest with the issued
// credential, bounded decoding with wire.DecodeBatch, deduplication by
// batch ID. Events are counted by their process PID, which the tests use
// as a unique event number.
type fakeServer struct {
	srv    *httptest.Server
	caFile string
	token  string

	mu        sync.Mutex
	creds     map[string]string // credential → node
	byNode    map[string]string // node → its current credential
	enrolls   int
	batches   map[string]bool // batch IDs stored
	delivered map[uint32]int  // event number → times stored
	sizes     []int           // events per stored batch
	dropped   uint64          // sum of the stored batches' Dropped
	dupes     int
	// fail answers ingest requests with this status while non-zero;
	// loseAnswers stores that many batches but answers 503, as if the
	// answer were lost.
	fail        int
	loseAnswers int
	// rejectNext answers the next that many ingest requests with this
	// status, without storing.
	rejectStatus int
	rejectNext   int
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	f := &fakeServer{
		token:     "bwe_" + randomHex(16),
		creds:     map[string]string{},
		byNode:    map[string]string{},
		batches:   map[string]bool{},
		delivered: map[uint32]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+EnrollPath, f.enroll)
	mux.HandleFunc("POST "+IngestPath, f.ingest)
	f.srv = httptest.NewUnstartedServer(mux)
	// Handshakes cut short by a closing client are expected noise.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(f.caFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func bearer(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) enroll(w http.ResponseWriter, r *http.Request) {
	if bearer(r) != f.token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid enrolment token"})
		return
	}
	var req struct {
		Node    string `json:"node"`
		Cluster string `json:"cluster"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Node == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad enrolment request"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enrolls++
	// Enrolling again replaces the node's credential.
	delete(f.creds, f.byNode[req.Node])
	cred := "bws_" + randomHex(24)
	f.creds[cred] = req.Node
	f.byNode[req.Node] = cred
	writeJSON(w, http.StatusCreated, map[string]any{"id": f.enrolls, "credential": cred})
}

func (f *fakeServer) ingest(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	node, ok := f.creds[bearer(r)]
	status := f.fail
	if f.rejectNext > 0 {
		f.rejectNext--
		status = f.rejectStatus
	}
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid credential"})
		return
	}
	if status != 0 {
		writeJSON(w, status, map[string]string{"error": "told to fail"})
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("Content-Type") != wire.ContentType {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want gzip JSON"})
		return
	}
	b, err := wire.DecodeBatch(http.MaxBytesReader(w, r.Body, wire.MaxCompressedBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if b.Node != node {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "node does not match the credential"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batches[b.ID] {
		f.dupes++
		writeJSON(w, http.StatusOK, map[string]bool{"duplicate": true})
		return
	}
	f.batches[b.ID] = true
	for _, ev := range b.Events {
		f.delivered[ev.Process.PID]++
	}
	f.sizes = append(f.sizes, len(b.Events))
	f.dropped += b.Dropped
	if f.loseAnswers > 0 {
		f.loseAnswers--
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "answer lost"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": len(b.Events)})
}

// with runs fn under the server's lock, to change its behaviour.
func (f *fakeServer) with(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeServer) nodeOf(cred string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creds[cred]
}

func (f *fakeServer) enrollCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolls
}

func (f *fakeServer) duplicates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dupes
}

func (f *fakeServer) droppedTotal() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

func (f *fakeServer) times(pid uint32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delivered[pid]
}

func (f *fakeServer) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sizes)
}

// count returns how many distinct events were stored.
func (f *fakeServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.delivered)
}

// checkExactlyOnce fails unless events 0..n-1 were each stored once.
func (f *fakeServer) checkExactlyOnce(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for pid := range uint32(n) {
		if got := f.delivered[pid]; got != 1 {
			t.Errorf("event %d stored %d times, want once", pid, got)
		}
	}
	if len(f.delivered) != n {
		t.Errorf("server stored %d distinct events, want %d", len(f.delivered), n)
	}
}

func (f *fakeServer) options(t testing.TB, stateDir string) Options {
	return Options{
		Server:        f.srv.URL,
		CAFile:        f.caFile,
		Node:          "node-1",
		Cluster:       "test",
		StateDir:      stateDir,
		Token:         f.token,
		BatchEvents:   10,
		BatchInterval: time.Hour, // tests that cut on time set it
		MaxBackoff:    20 * time.Millisecond,
		Timeout:       10 * time.Second,
		Logger:        slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testEvent is a valid exec event numbered n (its PID).
func testEvent(n int) wire.Event {
	return wire.Event{
		Kind: wire.KindExec,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Process: wire.Process{
			PID: uint32(n), PPID: 1, Comm: "sh", Exe: "/bin/sh",
			Args: []string{"sh", "-c", "echo hello"},
		},
		Container: &wire.Container{ID: "0123456789abcdef", Name: "app", Runtime: "containerd", Pod: "web-0", Namespace: "default"},
	}
}

// waitFor polls cond until it holds; the deadline only bounds a hung
// test, it is not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
