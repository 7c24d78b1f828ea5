package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func closeClient(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestEnrolmentAndCredentialFile(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	c := newClient(t, srv.options(t, dir))
	for i := range 10 {
		c.Send(testEvent(i))
	}
	closeClient(t, c)
	srv.checkExactlyOnce(t, 10)

	path := filepath.Join(dir, credentialFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("credential file mode %v, want 0600", mode)
	}
	cred, err := loadCredential(path)
	if err != nil {
		t.Fatal(err)
	}
	if srv.nodeOf(cred.Credential) != "node-1" {
		t.Errorf("stored credential is not the one the server issued to node-1")
	}
	if cred.ID != "1" || cred.Server != srv.srv.URL || cred.Node != "node-1" {
		t.Errorf("stored credential = id %q server %q node %q", cred.ID, cred.Server, cred.Node)
	}

	// A restart without a token reuses the stored credential; a loosened
	// mode is tightened.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	o := srv.options(t, dir)
	o.Token = ""
	c = newClient(t, o)
	for i := 10; i < 20; i++ {
		c.Send(testEvent(i))
	}
	closeClient(t, c)
	srv.checkExactlyOnce(t, 20)
	if srv.enrollCount() != 1 {
		t.Errorf("server saw %d enrolments, want 1", srv.enrollCount())
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %v after restart, want 0600", info.Mode().Perm())
	}
	if got := c.Stats().Enrolments; got != 0 {
		t.Errorf("restarted client enrolled %d times, want 0", got)
	}
}

func TestEnrolFromTokenFile(t *testing.T) {
	srv := newFakeServer(t)
	o := srv.options(t, t.TempDir())
	o.Token = ""
	o.TokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(o.TokenFile, []byte(srv.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, o)
	c.Send(testEvent(0))
	closeClient(t, c)
	srv.checkExactlyOnce(t, 1)
}

func TestNoCredentialNoToken(t *testing.T) {
	srv := newFakeServer(t)
	o := srv.options(t, t.TempDir())
	o.Token = ""
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "no enrolment token") {
		t.Fatalf("New without credential or token: err = %v, want one saying so", err)
	}
}

func TestBadTokenNeverLogged(t *testing.T) {
	srv := newFakeServer(t)
	var logs bytes.Buffer
	o := srv.options(t, t.TempDir())
	o.Token = "bwe_wrong-secret-token"
	o.Logger = slogTo(&logs)
	c := newClient(t, o)
	c.Send(testEvent(0))
	c.Send(testEvent(1))
	c.cutPendingForTest()
	waitFor(t, "the client to give up enrolling", func() bool { return c.Stats().Unauthorized })
	if s := c.Stats(); s.SpoolFiles != 1 {
		t.Errorf("spool holds %d batches while unauthorized, want 1", s.SpoolFiles)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Close(ctx); err == nil {
		t.Error("Close succeeded with undelivered batches")
	}
	if strings.Contains(logs.String(), "wrong-secret-token") {
		t.Errorf("the enrolment token appears in the logs:\n%s", logs.String())
	}
}

func TestReenrolOnUnauthorized(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	c := newClient(t, srv.options(t, dir))
	for i := range 10 {
		c.Send(testEvent(i))
	}
	waitFor(t, "the first batch", func() bool { return srv.count() == 10 })
	old, _ := loadCredential(filepath.Join(dir, credentialFile))

	srv.with(func(f *fakeServer) { clear(f.creds) }) // revoke every credential
	for i := 10; i < 20; i++ {
		c.Send(testEvent(i))
	}
	closeClient(t, c)
	srv.checkExactlyOnce(t, 20)
	if srv.enrollCount() != 2 {
		t.Errorf("server saw %d enrolments, want 2", srv.enrollCount())
	}
	cred, _ := loadCredential(filepath.Join(dir, credentialFile))
	if cred.Credential == old.Credential || srv.nodeOf(cred.Credential) != "node-1" {
		t.Error("the credential file does not hold the new credential")
	}
}

func TestUnauthorizedWithoutTokenKeepsSpooling(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	c := newClient(t, srv.options(t, dir))
	c.Send(testEvent(0))
	closeClient(t, c)

	srv.with(func(f *fakeServer) { clear(f.creds) })
	o := srv.options(t, dir)
	o.Token = ""
	c = newClient(t, o)
	for i := 1; i <= 25; i++ {
		c.Send(testEvent(i))
	}
	waitFor(t, "the client to stop sending", func() bool { return c.Stats().Unauthorized })
	c.cutPendingForTest()
	if s := c.Stats(); s.SpoolFiles != 3 || s.SentEvents != 0 {
		t.Errorf("stats = %+v, want 3 spooled batches and nothing sent", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Close(ctx); err == nil {
		t.Error("Close succeeded with undelivered batches")
	}

	// Enrolled again (a new token), the next run delivers the lot.
	c = newClient(t, srv.options(t, dir))
	closeClient(t, c)
	srv.checkExactlyOnce(t, 26)
}

func TestBatchByCount(t *testing.T) {
	srv := newFakeServer(t)
	c := newClient(t, srv.options(t, t.TempDir()))
	for i := range 35 {
		c.Send(testEvent(i))
	}
	waitFor(t, "three full batches", func() bool { return srv.count() == 30 })
	closeClient(t, c) // cuts the last 5
	srv.checkExactlyOnce(t, 35)
	if diff := cmp.Diff([]int{10, 10, 10, 5}, srv.batchSizes()); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if s := c.Stats(); s.SentEvents != 35 || s.SentBatches != 4 || s.SpoolFiles != 0 || s.SpoolBytes != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestBatchByTime(t *testing.T) {
	srv := newFakeServer(t)
	o := srv.options(t, t.TempDir())
	o.BatchEvents = 1000
	o.BatchInterval = 20 * time.Millisecond
	c := newClient(t, o)
	for i := range 3 {
		c.Send(testEvent(i))
	}
	// Neither the count nor Close cuts this batch: only the interval.
	waitFor(t, "a batch cut on time", func() bool { return srv.count() == 3 })
	c.Send(testEvent(3))
	waitFor(t, "a second batch cut on time", func() bool { return srv.count() == 4 })
	closeClient(t, c)
	srv.checkExactlyOnce(t, 4)
}

func TestServerDownThenUp(t *testing.T) {
	srv := newFakeServer(t)
	c := newClient(t, srv.options(t, t.TempDir()))
	c.Send(testEvent(0))
	c.cutPendingForTest()
	waitFor(t, "enrolment and a first batch", func() bool { return srv.count() == 1 })

	srv.with(func(f *fakeServer) { f.fail = 503 })
	for i := 1; i < 500; i++ {
		c.Send(testEvent(i))
	}
	waitFor(t, "failed attempts", func() bool { return c.Stats().SendErrors >= 3 })
	if s := c.Stats(); s.SpoolFiles == 0 || s.LastError == "" {
		t.Errorf("while the server is down: stats = %+v, want spooled batches and a last error", s)
	}
	// Back up, but the first answers are lost: the batches are stored
	// and sent again, and the server must see each event once.
	srv.with(func(f *fakeServer) { f.fail, f.loseAnswers = 0, 3 })
	closeClient(t, c)
	srv.checkExactlyOnce(t, 500)
	s := c.Stats()
	if dupes := srv.duplicates(); dupes != 3 || s.Duplicates != 3 {
		t.Errorf("duplicates: server %d, client %d, want 3", dupes, s.Duplicates)
	}
	if s.SentEvents != 500 || s.SentBatches != 51 || s.Dropped != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRestartSendsSpool(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	c := newClient(t, srv.options(t, dir))
	c.Send(testEvent(0))
	c.cutPendingForTest()
	waitFor(t, "enrolment", func() bool { return srv.count() == 1 })

	srv.with(func(f *fakeServer) { f.fail = 502 })
	for i := 1; i < 95; i++ {
		c.Send(testEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); err == nil {
		t.Fatal("Close reported success with the server down")
	}
	spooled, _ := filepath.Glob(filepath.Join(dir, "spool", "*.batch"))
	if len(spooled) != 10 {
		t.Fatalf("%d batches left in the spool, want 10", len(spooled))
	}

	srv.with(func(f *fakeServer) { f.fail = 0 })
	o := srv.options(t, dir)
	o.Token = ""
	c = newClient(t, o)
	closeClient(t, c)
	srv.checkExactlyOnce(t, 95)
	if s := c.Stats(); s.SentEvents != 94 || s.SentBatches != 10 {
		t.Errorf("restarted client: stats = %+v, want 94 events in 10 batches", s)
	}
	if srv.enrollCount() != 1 {
		t.Errorf("%d enrolments, want 1", srv.enrollCount())
	}
}

func TestSpoolFullDropsAndReports(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit func(*Options)
	}{
		{"files", func(o *Options) { o.SpoolFiles = 3 }},
		{"bytes", func(o *Options) { o.SpoolBytes = 2000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t)
			o := srv.options(t, t.TempDir())
			o.BatchInterval = 10 * time.Millisecond
			tc.limit(&o)
			c := newClient(t, o)
			c.Send(testEvent(0))
			waitFor(t, "enrolment", func() bool { return srv.count() == 1 })

			srv.with(func(f *fakeServer) { f.fail = 503 })
			const n = 300
			for i := 1; i < n; i++ {
				c.Send(testEvent(i))
				if i%10 == 0 {
					c.cutPendingForTest() // let the spool fill as it would over time
				}
			}
			c.ReportDropped(7) // a ring buffer overrun, say
			waitFor(t, "drops", func() bool { return c.Stats().Dropped > 0 })
			srv.with(func(f *fakeServer) { f.fail = 0 })

			// Every event is either stored or counted in a batch's
			// Dropped, once; the spool's full state is no excuse.
			waitFor(t, "every event accounted for", func() bool {
				return uint64(srv.count())+srv.droppedTotal() == n+7
			})
			closeClient(t, c)
			srv.checkExactlyOnce(t, srv.count())
			s := c.Stats()
			if s.Dropped+7 != srv.droppedTotal() {
				t.Errorf("client dropped %d (+7 reported), batches carried %d", s.Dropped, srv.droppedTotal())
			}
			if s.SentEvents+s.Dropped != n {
				t.Errorf("sent %d + dropped %d != %d", s.SentEvents, s.Dropped, n)
			}
		})
	}
}

func TestRejectedBatchDiscarded(t *testing.T) {
	// The first batch after the event 0 is refused as a whole; it holds no
	// invalid event to salvage.
	for _, status := range []int{400, 413} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := newFakeServer(t)
			c := newClient(t, srv.options(t, t.TempDir()))
			c.Send(testEvent(0))
			c.cutPendingForTest()
			waitFor(t, "enrolment", func() bool { return srv.count() == 1 })

			srv.with(func(f *fakeServer) { f.rejectStatus, f.rejectNext = status, 1 })
			c.ReportDropped(5) // travels in the refused batch, then in a later one
			for i := 1; i <= 20; i++ {
				c.Send(testEvent(i))
			}
			closeClient(t, c)
			if got := srv.droppedTotal(); got != 5 {
				t.Errorf("batches stored carried Dropped %d, want 5", got)
			}
			s := c.Stats()
			if s.Rejected != 10 || s.SentEvents != 11 || s.SpoolFiles != 0 {
				t.Errorf("stats = %+v, want 10 rejected, 11 sent, empty spool", s)
			}
			if srv.count() != 11 || srv.times(0) != 1 || srv.times(20) != 1 {
				t.Errorf("server stored %d events, want events 0 and 11-20", srv.count())
			}
		})
	}
}

func TestInvalidEventsWeededOut(t *testing.T) {
	srv := newFakeServer(t)
	c := newClient(t, srv.options(t, t.TempDir()))
	for i := range 10 {
		ev := testEvent(i)
		if i == 4 {
			ev.Kind = "teleport"
		}
		if i == 7 {
			ev.Process.Comm = "evil\x1b[2J"
		}
		c.Send(ev)
	}
	closeClient(t, c)
	if s := c.Stats(); s.Rejected != 2 || s.SentEvents != 8 {
		t.Errorf("stats = %+v, want 2 rejected and 8 sent", s)
	}
	if srv.count() != 8 || srv.times(4) != 0 || srv.times(7) != 0 {
		t.Errorf("server stored %d events, want all but 4 and 7", srv.count())
	}
}

func TestOversizedBatchIsSplit(t *testing.T) {
	// Exceeding the real limits takes 16 MiB of JSON; a smaller limit
	// exercises the same code.
	saved := sizeLimits
	sizeLimits.json = 20_000
	t.Cleanup(func() { sizeLimits = saved })

	srv := newFakeServer(t)
	o := srv.options(t, t.TempDir())
	o.BatchEvents = 300
	c := newClient(t, o)
	for i := range 300 {
		c.Send(testEvent(i))
	}
	closeClient(t, c)
	srv.checkExactlyOnce(t, 300)
	sizes := srv.batchSizes()
	if len(sizes) < 4 || c.Stats().Rejected != 0 {
		t.Errorf("batch sizes %v, rejected %d: want the batch split, nothing rejected", sizes, c.Stats().Rejected)
	}
}

func TestOversized(t *testing.T) {
	// oversized trusts gzip's trailer for the JSON length: check that on
	// a real encoding.
	var buf bytes.Buffer
	b := wire.Batch{ID: randomHex(16), Node: "n", Events: []wire.Event{testEvent(1), testEvent(2)}}
	if err := wire.Encode(&buf, &b); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	gz := buf.Bytes()
	if got := binary.LittleEndian.Uint32(gz[len(gz)-4:]); int(got) != len(plain) {
		t.Fatalf("gzip trailer says %d bytes, the stream holds %d", got, len(plain))
	}
	if oversized(gz) {
		t.Error("a two-event batch is oversized")
	}

	trailer := func(n uint32) []byte {
		return binary.LittleEndian.AppendUint32(make([]byte, 16), n)
	}
	for _, tc := range []struct {
		name string
		gz   []byte
		want bool
	}{
		{"json at the limit", trailer(wire.MaxBatchBytes), false},
		{"json over the limit", trailer(wire.MaxBatchBytes + 1), true},
		{"compressed over the limit", make([]byte, wire.MaxCompressedBytes+1), true},
		{"compressed at the limit", make([]byte, wire.MaxCompressedBytes), false},
		{"shorter than a trailer", []byte{1, 2}, false},
	} {
		if got := oversized(tc.gz); got != tc.want {
			t.Errorf("%s: oversized = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCorruptSpoolFiles(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var good bytes.Buffer
	b := wire.Batch{ID: randomHex(16), Node: "node-1", SentAt: time.Now(), Events: []wire.Event{testEvent(0), testEvent(1)}}
	if err := wire.Encode(&good, &b); err != nil {
		t.Fatal(err)
	}
	var invalid bytes.Buffer
	b2 := wire.Batch{ID: randomHex(16), Node: "node-1", SentAt: time.Now(), Events: []wire.Event{{Kind: "bogus"}}}
	if err := wire.Encode(&invalid, &b2); err != nil { // fails validation when read back
		t.Fatal(err)
	}
	files := map[string][]byte{
		spoolName(3):            good.Bytes()[:good.Len()/2], // torn
		spoolName(4):            []byte("not gzip at all"),
		spoolName(5):            good.Bytes(),
		spoolName(6):            invalid.Bytes(),
		spoolName(7):            {},
		".tmp-12345":            []byte("half-written"),
		"README":                []byte("a stranger's file"),
		spoolName(8) + ".extra": []byte("ignored"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(spoolDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, srv.options(t, dir))
	c.Send(testEvent(2))
	closeClient(t, c)
	srv.checkExactlyOnce(t, 3) // 0 and 1 from the spool, 2 sent now
	if s := c.Stats(); s.CorruptFiles != 4 || s.SentEvents != 3 {
		t.Errorf("stats = %+v, want 4 corrupt files and 3 events sent", s)
	}
	aside, _ := os.ReadDir(filepath.Join(spoolDir, corruptDir))
	var names []string
	for _, de := range aside {
		names = append(names, de.Name())
	}
	if diff := cmp.Diff([]string{spoolName(3), spoolName(4), spoolName(6), spoolName(7)}, names); diff != "" {
		t.Errorf("files set aside (-want +got):\n%s", diff)
	}
	left, _ := os.ReadDir(spoolDir)
	var leftNames []string
	for _, de := range left {
		leftNames = append(leftNames, de.Name())
	}
	slices.Sort(leftNames)
	if diff := cmp.Diff([]string{spoolName(8) + ".extra", "README", corruptDir}, leftNames); diff != "" {
		t.Errorf("files left in the spool (-want +got):\n%s", diff)
	}
}

func TestServerURLs(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://bulwark.example.com", true},
		{"https://bulwark.example.com:8443/prefix/", true},
		{"http://127.0.0.1:8080", true},
		{"http://127.9.9.9", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080", true},
		{"http://bulwark.example.com", false},
		{"http://10.0.0.1:8080", false},
		{"http://[::ffff:10.0.0.1]:80", false},
		{"http://127.0.0.1.nip.io", false},
		{"ftp://127.0.0.1", false},
		{"https://user:pw@bulwark.example.com", false},
		{"https://bulwark.example.com/?x=1", false},
		{"bulwark.example.com", false},
		{"", false},
	} {
		_, err := serverBase(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("serverBase(%q) error = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	_, err := New(Options{Server: "http://bulwark.example.com", Node: "n", StateDir: t.TempDir(), Token: "t"})
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("New with a non-loopback http URL: err = %v", err)
	}
}

func TestStateDirLocked(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	newClient(t, srv.options(t, dir))
	if _, err := New(srv.options(t, dir)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second client on one state dir: err = %v", err)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	srv := newFakeServer(t)
	o := srv.options(t, t.TempDir())
	o.CAFile = "" // system roots do not include httptest's CA
	c := newClient(t, o)
	c.Send(testEvent(0))
	c.cutPendingForTest()
	waitFor(t, "a failed enrolment", func() bool { return c.Stats().SendErrors > 0 })
	if s := c.Stats(); !strings.Contains(s.LastError, "certificate") || srv.enrollCount() != 0 {
		t.Errorf("last error %q, %d enrolments; want a certificate error and none", s.LastError, srv.enrollCount())
	}
}

func TestMetrics(t *testing.T) {
	srv := newFakeServer(t)
	reg := prometheus.NewPedanticRegistry()
	o := srv.options(t, t.TempDir())
	o.Registerer = reg
	c := newClient(t, o)
	for i := range 25 {
		c.Send(testEvent(i))
	}
	waitFor(t, "two batches", func() bool { return c.Stats().SentEvents == 20 })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got["bulwark_sensor_sent_events_total"] != 20 || got["bulwark_sensor_sent_batches_total"] != 2 {
		t.Errorf("metrics = %v, want 20 events in 2 batches sent", got)
	}
	if _, ok := got["bulwark_sensor_dropped_events_total"]; !ok || len(got) != 10 {
		t.Errorf("metrics = %v, want all ten", got)
	}
	closeClient(t, c)
	// Close unregisters, so a new client can register again.
	c = newClient(t, o)
	closeClient(t, c)
}

func TestOptionsLogValueHidesToken(t *testing.T) {
	var logs bytes.Buffer
	slogTo(&logs).Info("starting", "options", Options{Server: "https://x", Token: "bwe_secret"})
	if strings.Contains(logs.String(), "bwe_secret") {
		t.Errorf("token logged: %s", logs.String())
	}
}

// cutPendingForTest cuts the pending events into the spool now, as the
// interval would.
func (c *Client) cutPendingForTest() {
	done := make(chan struct{})
	c.flush <- done
	<-done
}

// A sensor enrols when it starts, before it has any event to send, so
// that a quiet node shows up at once.
func TestEnrolsBeforeTheFirstEvent(t *testing.T) {
	srv := newFakeServer(t)
	c := newClient(t, srv.options(t, t.TempDir()))
	deadline := time.Now().Add(20 * time.Second)
	for srv.enrollCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no enrolment within 20s of starting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	closeClient(t, c)
	if got := c.Stats().Enrolments; got != 1 {
		t.Errorf("Enrolments = %d, want 1", got)
	}
}
