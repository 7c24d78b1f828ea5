package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// newSensorFixture is newFixture with the real sensor ingest pipeline
// behind /api/v1/ingest/sensor (without runtime rules: the pipeline's
// own tests judge events).
func newSensorFixture(t *testing.T) (*fixture, *prometheus.Registry) {
	f := newFixture(t)
	s, reg := sensorServer(t, f.db, f.sched, f.api.box)
	f.srv.Close()
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	f.api = s
	return f, reg
}

// sensorServer is an API server over db with the sensor ingest pipeline.
func sensorServer(tb testing.TB, db *store.DB, sched Scheduler, box *secretbox.Box) (*Server, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	p, err := nodeingest.New(nodeingest.Options{Store: db, Registerer: reg})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Options{Store: db, Scheduler: sched, Box: box, Gatherer: reg, Registerer: reg, Version: "test", SensorIngest: p})
	if err != nil {
		tb.Fatal(err)
	}
	return s, reg
}

// standaloneSensorServer is sensorServer over a new SQLite store, with a
// sensor of node n1 enrolled; it returns the server and the sensor's
// credential. Fuzz targets and benchmarks use it.
func standaloneSensorServer(tb testing.TB) (*Server, string) {
	tb.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(tb.TempDir(), store.SQLiteFile), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	s, _ := sensorServer(tb, db, &recordingScheduler{db: db}, box)
	cred, hash := NewSensorCredential()
	if err := db.EnrollSensor(context.Background(), &store.Sensor{Cluster: "prod", Node: "n1", Hash: hash}); err != nil {
		tb.Fatal(err)
	}
	return s, cred
}

// enroll enrols a sensor with an enrolment token and returns its id and
// credential.
func (f *fixture) enroll(token, cluster, node string) (int64, string) {
	f.t.Helper()
	code, body := f.call(token, "POST", "/api/v1/sensors/enroll", map[string]string{"node": node, "cluster": cluster})
	if code != 200 {
		f.t.Fatalf("enrol %s/%s = %d %s", cluster, node, code, body)
	}
	var out enrollResponse
	if err := json.Unmarshal(body, &out); err != nil {
		f.t.Fatal(err)
	}
	return out.ID, out.Credential
}

// post sends a body to the sensor ingest endpoint as a sensor does.
func (f *fixture) post(credential string, body []byte, encoding string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest("POST", f.srv.URL+"/api/v1/ingest/sensor", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	req.Header.Set("Content-Type", wire.ContentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func encodeBatch(t testing.TB, b *wire.Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := wire.Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

var batchSeq int

func testBatch(node string, n int) *wire.Batch {
	batchSeq++
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	b := &wire.Batch{ID: fmt.Sprintf("%032x", batchSeq), Node: node, Sensor: "v0.9.0", SentAt: at, Dropped: 2}
	for i := range n {
		e := wire.Event{Kind: wire.KindExec, Time: at.Add(time.Duration(i) * time.Millisecond),
			Process:   wire.Process{PID: uint32(100 + i), PPID: 1, Exe: "/bin/sh", Args: []string{"sh", "-c", "id"}, Stdin: "tcp", Remote: "10.1.2.3:4444"},
			Ancestors: []wire.Process{{PID: 1, Exe: "/usr/sbin/nginx"}},
			Container: &wire.Container{ID: "c0ffee", Name: "web", Runtime: "containerd", RuntimeNamespace: "k8s.io", Pod: "web-1", Namespace: "shop",
				Image: "nginx:1.27", Digest: "sha256:" + strings.Repeat("b", 64)}}
		if i%2 == 1 {
			e = wire.Event{Kind: wire.KindDNS, Time: e.Time, Process: wire.Process{PID: 7, Exe: "/usr/bin/curl"}, Container: e.Container,
				DNS: &wire.DNSQuery{Name: "pool.evil.example", Type: "A", Server: "10.96.0.10:53"}}
		}
		b.Events = append(b.Events, e)
	}
	return b
}

func (f *fixture) sensor(id int64) store.Sensor {
	f.t.Helper()
	list, _, err := f.db.Sensors(context.Background(), store.SensorFilter{}, store.Page{Limit: store.MaxPageSize})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, sn := range list {
		if sn.ID == id {
			return sn
		}
	}
	f.t.Fatalf("no sensor %d", id)
	return store.Sensor{}
}

func TestSensorEnrolmentAndIngest(t *testing.T) {
	f, _ := newSensorFixture(t)
	viewer, analyst, ingest := f.token("viewer", store.RoleViewer), f.token("analyst", store.RoleAnalyst), f.token("audit", store.RoleIngest)
	code, body := f.call(f.admin, "POST", "/api/v1/tokens", map[string]string{"name": "ds", "role": store.RoleEnroll})
	if code != 201 {
		t.Fatalf("creating an enroll token = %d %s", code, body)
	}
	var tok tokenView
	json.Unmarshal(body, &tok)
	enroll := tok.Token

	id, cred := f.enroll(enroll, "prod", "node-1")
	if !strings.HasPrefix(cred, SensorCredentialPrefix) || len(cred) != len(SensorCredentialPrefix)+64 {
		t.Fatalf("credential = %q", cred)
	}
	b := testBatch("node-1", 4)
	for _, tc := range []struct {
		name, token, method, path string
		body                      any
		want                      int
	}{
		{"enroll token reads nothing", enroll, "GET", "/api/v1/sensors", nil, 403},
		{"enroll token sends no audit events", enroll, "POST", "/api/v1/ingest/k8s-audit/prod", "{}", 403},
		{"viewer may not enrol", viewer, "POST", "/api/v1/sensors/enroll", map[string]string{"node": "x", "cluster": "y"}, 403},
		{"ingest token may not enrol", ingest, "POST", "/api/v1/sensors/enroll", map[string]string{"node": "x", "cluster": "y"}, 403},
		{"credential is no API token", cred, "GET", "/api/v1/sensors", nil, 401},
		{"viewer lists sensors", viewer, "GET", "/api/v1/sensors", nil, 200},
		{"viewer may not hunt", viewer, "GET", "/api/v1/sensor-events", nil, 403},
		{"analyst may not revoke", analyst, "DELETE", fmt.Sprintf("/api/v1/sensors/%d", id), nil, 403},
	} {
		if code, body := f.call(tc.token, tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s: %s %s = %d %s, want %d", tc.name, tc.method, tc.path, code, body, tc.want)
		}
	}
	for name, token := range map[string]string{"viewer": viewer, "admin": f.admin, "ingest": ingest, "enroll": enroll, "none": ""} {
		if code, body := f.post(token, encodeBatch(t, b), "gzip"); code != 401 {
			t.Errorf("%s token ingests: %d %s", name, code, body)
		}
	}

	code, body = f.post(cred, encodeBatch(t, b), "gzip")
	if code != 200 || strings.TrimSpace(string(body)) != `{"accepted":4}` {
		t.Fatalf("ingest = %d %s", code, body)
	}
	code, body = f.post(cred, encodeBatch(t, b), "gzip")
	if code != 200 || strings.TrimSpace(string(body)) != `{"duplicate":true}` {
		t.Fatalf("resend = %d %s", code, body)
	}
	sn := f.sensor(id)
	if sn.Events != 4 || sn.Dropped != 2 || sn.Version != "v0.9.0" || sn.LastSeenAt.IsZero() || sn.EnrolledBy != "ds" {
		t.Errorf("sensor = %+v", sn)
	}

	list := func(path string) []string {
		t.Helper()
		code, body := f.call(analyst, "GET", path, nil)
		if code != 200 {
			t.Fatalf("GET %s = %d %s", path, code, body)
		}
		var page listPage[sensorEventView]
		json.Unmarshal(body, &page)
		var out []string
		for _, e := range page.Items {
			out = append(out, e.Evidence)
		}
		return out
	}
	ev := func(i int) string { return b.ID + "/" + fmt.Sprint(i) }
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{ev(3), ev(2), ev(1), ev(0)}},
		{"?kind=exec", []string{ev(2), ev(0)}},
		{"?node=node-1&cluster=prod&namespace=shop&pod=web-1&container=web&exe=/bin/sh", []string{ev(2), ev(0)}},
		{"?container=c0ffee&kind=dns", []string{ev(3), ev(1)}},
		{"?dns=pool.evil.example&limit=1", []string{ev(3)}},
		{"?evidence=" + ev(2), []string{ev(2)}},
		{"?node=node-2", nil},
		{"?since=" + b.Events[2].Time.Format(time.RFC3339Nano) + "&until=" + b.Events[3].Time.Format(time.RFC3339Nano), []string{ev(2)}},
	} {
		if diff := cmp.Diff(tc.want, list("/api/v1/sensor-events"+tc.query)); diff != "" {
			t.Errorf("sensor-events%s (-want +got):\n%s", tc.query, diff)
		}
	}
	for _, bad := range []string{"?kind=open", "?since=yesterday", "?evidence=nope", "?limit=0"} {
		if code, _ := f.call(analyst, "GET", "/api/v1/sensor-events"+bad, nil); code != 400 {
			t.Errorf("sensor-events%s = %d, want 400", bad, code)
		}
	}

	// Enrolling the node again replaces the credential.
	again, cred2 := f.enroll(enroll, "prod", "node-1")
	if again != id {
		t.Errorf("re-enrolled as %d, was %d", again, id)
	}
	if code, _ := f.post(cred, encodeBatch(t, testBatch("node-1", 1)), "gzip"); code != 401 {
		t.Errorf("replaced credential ingests: %d", code)
	}
	if code, body := f.post(cred2, encodeBatch(t, testBatch("node-1", 1)), "gzip"); code != 200 {
		t.Errorf("new credential: %d %s", code, body)
	}
	// An admin may enrol too; revoking stops the credential.
	otherID, other := f.enroll(f.admin, "prod", "node-2")
	if code, _ := f.call(f.admin, "DELETE", fmt.Sprintf("/api/v1/sensors/%d", otherID), nil); code != 204 {
		t.Errorf("revoke = %d", code)
	}
	if code, _ := f.call(f.admin, "DELETE", fmt.Sprintf("/api/v1/sensors/%d", otherID), nil); code != 404 {
		t.Errorf("revoking again = %d, want 404", code)
	}
	if code, _ := f.post(other, encodeBatch(t, testBatch("node-2", 1)), "gzip"); code != 401 {
		t.Errorf("revoked credential ingests: %d", code)
	}
	code, body = f.call(viewer, "GET", "/api/v1/sensors?cluster=prod", nil)
	var sensors listPage[sensorView]
	if code != 200 || json.Unmarshal(body, &sensors) != nil || len(sensors.Items) != 2 || sensors.Items[0].RevokedAt == nil || sensors.Items[1].Events != 5 {
		t.Errorf("sensors = %d %s", code, body)
	}
	if bytes.Contains(body, []byte(cred2[len(SensorCredentialPrefix)+6:])) {
		t.Error("the sensor listing holds a credential")
	}

	_, body = f.call(f.admin, "GET", "/api/v1/audit?action=sensor.enroll", nil)
	var log listPage[auditView]
	json.Unmarshal(body, &log)
	if len(log.Items) != 3 || log.Items[2].Actor != "ds" || log.Items[2].Target != "prod/node-1" {
		t.Errorf("enrolment audit = %s", body)
	}
}

func TestSensorEnrolmentBadInput(t *testing.T) {
	f, _ := newSensorFixture(t)
	enroll := f.token("ds", store.RoleEnroll)
	for _, body := range []any{
		map[string]string{"cluster": "prod"},
		map[string]string{"node": "n1"},
		map[string]string{"node": "n\x001", "cluster": "prod"},
		map[string]string{"node": "n1", "cluster": "pr\u202eod"},
		map[string]string{"node": strings.Repeat("n", 254), "cluster": "prod"},
		`{"node":"n1","cluster":"prod","role":"admin"}`,
		`{"node":"n1","cluster":"prod"} {}`,
		`{"node":"` + strings.Repeat("n", 8<<10) + `","cluster":"prod"}`,
	} {
		if code, resp := f.call(enroll, "POST", "/api/v1/sensors/enroll", body); code != 400 {
			t.Errorf("enrol %v = %d %s, want 400", body, code, resp)
		}
	}
	if list, _, _ := f.db.Sensors(context.Background(), store.SensorFilter{}, store.Page{}); len(list) != 0 {
		t.Errorf("bad enrolments stored sensors: %+v", list)
	}
}

func TestSensorIngestRejectsHostileBodies(t *testing.T) {
	f, reg := newSensorFixture(t)
	id, cred := f.enroll(f.admin, "prod", "n1")

	bomb := gzipBytes(t, []byte(`{"id":"`+strings.Repeat("0", 32)+`","node":"n1","events":[],"sensor":"`+strings.Repeat("a", wire.MaxBatchBytes)+`"}`))
	noise := make([]byte, wire.MaxCompressedBytes+1024)
	rand.Read(noise)
	tooMany := testBatch("n1", 0)
	for range wire.MaxEvents + 1 {
		tooMany.Events = append(tooMany.Events, wire.Event{Kind: wire.KindExec, Time: time.Now(), Process: wire.Process{PID: 1}})
	}
	control := testBatch("n1", 2)
	control.Events[0].Process.Exe = "/bin/sh\x1b[2J"
	unknown := bytes.Replace(mustJSON(t, testBatch("n1", 1)), []byte(`"node":`), []byte(`"admin":true,"node":`), 1)
	trailing := append(mustJSON(t, testBatch("n1", 1)), []byte(` {"id":"x"}`)...)
	badID := testBatch("n1", 1)
	badID.ID = "../../etc"
	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
		reason   string
	}{
		{"not gzip", mustJSON(t, testBatch("n1", 1)), "gzip", "not gzip"},
		{"no content encoding", encodeBatch(t, testBatch("n1", 1)), "", "Content-Encoding"},
		{"another content encoding", encodeBatch(t, testBatch("n1", 1)), "br", "Content-Encoding"},
		{"gzip bomb", bomb, "gzip", "exceeds its size limit"},
		{"over the compressed limit", gzipBytes(t, noise), "gzip", "too large"},
		{"unknown field", gzipBytes(t, unknown), "gzip", `unknown field \"admin\"`},
		{"trailing data", gzipBytes(t, trailing), "gzip", "data after the batch"},
		{"wrong node", encodeBatch(t, testBatch("n2", 1)), "gzip", "node"},
		{"too many events", encodeBatch(t, tooMany), "gzip", "10001 events"},
		{"control characters", encodeBatch(t, control), "gzip", "process.exe has a control"},
		{"bad batch id", encodeBatch(t, badID), "gzip", "batch id"},
		{"empty", nil, "gzip", "not gzip"},
	} {
		code, body := f.post(cred, tc.body, tc.encoding)
		if code != 400 || !bytes.Contains(body, []byte(tc.reason)) {
			t.Errorf("%s: %d %.300s, want 400 saying %q", tc.name, code, body, tc.reason)
		}
	}
	if events, _, _ := f.db.SensorEvents(context.Background(), store.SensorEventFilter{}, store.Page{}); len(events) != 0 {
		t.Errorf("%d events stored from invalid batches", len(events))
	}
	sn := f.sensor(id)
	if sn.Rejected != 12 || sn.Events != 0 {
		t.Errorf("sensor after 12 invalid batches = %+v", sn)
	}
	families, _ := reg.Gather()
	var rejected float64
	for _, fam := range families {
		if fam.GetName() == "bulwark_sensor_batches_total" {
			for _, m := range fam.GetMetric() {
				if m.GetLabel()[0].GetValue() == "rejected" {
					rejected = m.GetCounter().GetValue()
				}
			}
		}
	}
	if rejected != 12 {
		t.Errorf("rejected batches metric = %v, want 12", rejected)
	}
	// The sensor still works.
	if code, body := f.post(cred, encodeBatch(t, testBatch("n1", 1)), "gzip"); code != 200 {
		t.Errorf("a valid batch after the invalid ones = %d %s", code, body)
	}
}

func TestSensorIngestOneBatchAtATime(t *testing.T) {
	f, _ := newSensorFixture(t)
	id, cred := f.enroll(f.admin, "prod", "n1")
	if !f.api.sensors.claim(id) {
		t.Fatal("claim of an idle sensor failed")
	}
	code, body := f.post(cred, encodeBatch(t, testBatch("n1", 1)), "gzip")
	if code != 429 {
		t.Errorf("a second batch in flight = %d %s, want 429", code, body)
	}
	f.api.sensors.release(id)
	if code, body := f.post(cred, encodeBatch(t, testBatch("n1", 1)), "gzip"); code != 200 {
		t.Errorf("after the first finished = %d %s", code, body)
	}
}

func TestSensorIngestWithoutPipeline(t *testing.T) {
	f := newFixture(t)
	_, cred := f.enroll(f.admin, "prod", "n1")
	if code, _ := f.post(cred, encodeBatch(t, testBatch("n1", 1)), "gzip"); code != 503 {
		t.Errorf("ingest without a pipeline = %d, want 503", code)
	}
}

func TestRuntimeAlertsThroughTheAPI(t *testing.T) {
	f, _ := newSensorFixture(t)
	seedAlerts(t, f)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	if _, err := f.db.SaveAlerts(context.Background(), []store.Alert{{Source: store.SourceSensor, Cluster: "prod", Node: "node-1", RuleID: "shell-in-container",
		Title: "Shell in a container", Severity: "HIGH", TechniqueID: "T1059.004", Resource: "pods", Namespace: "shop", Name: "web-1",
		ContainerID: "c0ffee", ContainerName: "web", Image: "nginx:1.27", Process: "/bin/sh -c id", Events: []string{strings.Repeat("a", 32) + "/0"},
		Count: 1, GroupKey: "s1", FirstAt: at, LastAt: at}}, nil); err != nil {
		t.Fatal(err)
	}
	rules := func(query string) (int, []string) {
		code, body := f.call(f.admin, "GET", "/api/v1/alerts"+query, nil)
		var page listPage[alertView]
		json.Unmarshal(body, &page)
		var out []string
		for _, a := range page.Items {
			out = append(out, a.Source+":"+a.Rule+"@"+a.Node)
		}
		return code, out
	}
	for _, tc := range []struct {
		query string
		code  int
		want  []string
	}{
		{"?source=sensor", 200, []string{"sensor:shell-in-container@node-1"}},
		{"?node=node-1", 200, []string{"sensor:shell-in-container@node-1"}},
		{"?source=audit", 200, []string{"audit:cluster-admin-binding@", "audit:pod-exec@"}},
		{"?source=kernel", 400, nil},
	} {
		code, got := rules(tc.query)
		if code != tc.code {
			t.Errorf("alerts%s = %d, want %d", tc.query, code, tc.code)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("alerts%s (-want +got):\n%s", tc.query, diff)
		}
	}
}

// TestSensorResponsesMatchTheirSchemas validates the sensor endpoints'
// answers against the OpenAPI document, undocumented fields forbidden.
func TestSensorResponsesMatchTheirSchemas(t *testing.T) {
	f, _ := newSensorFixture(t)
	schema := schemas(t)
	code, enrolled := f.call(f.admin, "POST", "/api/v1/sensors/enroll", map[string]string{"node": "n1", "cluster": "prod"})
	if code != 200 {
		t.Fatalf("enrol = %d %s", code, enrolled)
	}
	validate(t, schema("SensorEnrollment"), "enrolment", enrolled)
	var e enrollResponse
	json.Unmarshal(enrolled, &e)
	b := testBatch("n1", 3)
	b.Events = append(b.Events, wire.Event{Kind: wire.KindConnect, Time: b.SentAt, Process: wire.Process{PID: 9, Exe: "/usr/bin/nc", Drift: true},
		Remote: "[2001:db8::1]:443"})
	_, accepted := f.post(e.Credential, encodeBatch(t, b), "gzip")
	validate(t, schema("SensorIngestResult"), "accepted", accepted)
	_, duplicate := f.post(e.Credential, encodeBatch(t, b), "gzip")
	validate(t, schema("SensorIngestResult"), "duplicate", duplicate)
	at := time.Now().UTC()
	if _, err := f.db.SaveAlerts(context.Background(), []store.Alert{{Source: store.SourceSensor, Cluster: "prod", Node: "n1", RuleID: "r",
		Resource: "pods", Namespace: "shop", Name: "web-1", ContainerID: "c", ContainerName: "web", Image: "nginx", Process: "/bin/sh",
		Events: []string{b.ID + "/0"}, Count: 1, GroupKey: "k", FirstAt: at, LastAt: at}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, item string }{
		{"/api/v1/sensors", "Sensor"},
		{"/api/v1/sensor-events", "SensorEvent"},
		{"/api/v1/alerts?source=sensor", "Alert"},
	} {
		code, data := f.call(f.admin, "GET", tc.path, nil)
		if code != 200 {
			t.Fatalf("GET %s = %d %s", tc.path, code, data)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(data, &page); err != nil || len(page.Items) == 0 {
			t.Fatalf("GET %s: no items in %s", tc.path, data)
		}
		for _, item := range page.Items {
			validate(t, schema(tc.item), tc.path, item)
		}
	}
}

func TestMayCallEnroll(t *testing.T) {
	v, a, ad, in, en := store.RoleViewer, store.RoleAnalyst, store.RoleAdmin, store.RoleIngest, store.RoleEnroll
	for _, tc := range []struct {
		has, needs string
		want       bool
	}{
		{en, en, true}, {ad, en, true}, {v, en, false}, {a, en, false}, {in, en, false},
		{en, v, false}, {en, a, false}, {en, ad, false}, {en, in, false},
	} {
		if got := mayCall(tc.has, tc.needs); got != tc.want {
			t.Errorf("mayCall(%q, %q) = %v, want %v", tc.has, tc.needs, got, tc.want)
		}
	}
	if !ValidRole(en) {
		t.Error("enroll is not a valid role")
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzPrintableLabel checks the enrolment names' check never accepts a
// control character or an oversized name.
func FuzzPrintableLabel(f *testing.F) {
	f.Add("node-1")
	f.Add("n\x00")
	f.Add("\u202e")
	f.Fuzz(func(t *testing.T, v string) {
		if printableLabel("node", v) != nil {
			return
		}
		if v == "" || len(v) > wire.MaxLabel || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("accepted %q", v)
		}
	})
}

// FuzzSensorIngest sends arbitrary bodies as a sensor: every answer is a
// 200 or a 400, never a server error.
func FuzzSensorIngest(f *testing.F) {
	s, cred := standaloneSensorServer(f)
	f.Add(encodeBatch(f, testBatch("n1", 2)))
	f.Add(gzipBytes(f, []byte(`{"id":"`+strings.Repeat("1", 32)+`","node":"n1","events":[{"kind":"dns","time":"2026-01-01T00:00:00Z",`+
		`"process":{"pid":1,"uid":0},"dns":{"name":"a","type":"A"}}]}`)))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/v1/ingest/sensor", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Encoding", "gzip")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Errorf("answered %d %s", rec.Code, rec.Body)
		}
	})
}

// BenchmarkSensorIngest sends batches of 1,000 events to the server over
// HTTP, end to end (decompression, decoding, validation, storage in
// SQLite), and reports events/s.
func BenchmarkSensorIngest(b *testing.B) {
	s, cred := standaloneSensorServer(b)
	srv := httptest.NewServer(s)
	defer srv.Close()
	for b.Loop() {
		b.StopTimer()
		body := encodeBatch(b, testBatch("n1", 1000))
		req, err := http.NewRequest("POST", srv.URL+"/api/v1/ingest/sensor", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Encoding", "gzip")
		b.StartTimer()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("ingest = %d %s", resp.StatusCode, data)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
