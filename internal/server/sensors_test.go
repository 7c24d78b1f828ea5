package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// execDetector stands in for the runtime rules (internal/nodedetect): it
// raises an alert for every exec of /bin/sh.
type execDetector struct{ cluster string }

func (d execDetector) Process(ev *wire.Event, meta nodeingest.Meta) []store.Alert {
	if ev.Kind != wire.KindExec || ev.Process.Exe != "/bin/sh" {
		return nil
	}
	return []store.Alert{{RuleID: "shell", Title: "Shell", Severity: "high", Process: ev.Process.Exe, Events: []string{meta.EvidenceID},
		Count: 1, GroupKey: meta.Node + "/" + meta.EvidenceID, FirstAt: ev.Time, LastAt: ev.Time, Summary: "shell in " + d.cluster}}
}

func (execDetector) Flush(time.Time) []store.Alert { return nil }

// TestSensorDetectionUsesTheAlertOutputs runs the server with a runtime
// detector factory and an alert webhook: a sensor's batch is judged with
// the cluster's detector and the alert reaches the output that
// control-plane alerts go to.
func TestSensorDetectionUsesTheAlertOutputs(t *testing.T) {
	var (
		mu       sync.Mutex
		received []string
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		received = append(received, string(body))
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	dataDir := t.TempDir()
	emptyDB(t, dataDir)
	outputs := filepath.Join(t.TempDir(), "outputs.yaml")
	if err := os.WriteFile(outputs, []byte("outputs:\n  - name: siem\n    type: webhook\n    url: "+receiver.URL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var clusters []string
	admin := "bwk_" + strings.Repeat("5", 64)
	addr, _ := start(t, Config{DataDir: dataDir, AdminToken: admin, AlertOutputsFile: outputs,
		NewSensorDetector: func(cluster string) (nodeingest.Detector, error) {
			mu.Lock()
			clusters = append(clusters, cluster)
			mu.Unlock()
			return execDetector{cluster: cluster}, nil
		}})
	call := func(bearer, path string, body []byte, gzipped bool) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		if gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	code, body := call(admin, "/api/v1/sensors/enroll", []byte(`{"node":"n1","cluster":"edge"}`), false)
	var enrolled struct{ Credential string }
	if code != 200 || json.Unmarshal(body, &enrolled) != nil {
		t.Fatalf("enrol = %d %s", code, body)
	}
	var batch bytes.Buffer
	if err := wire.Encode(&batch, &wire.Batch{ID: strings.Repeat("e", 32), Node: "n1", SentAt: time.Now(), Events: []wire.Event{
		{Kind: wire.KindExec, Time: time.Now(), Process: wire.Process{PID: 1, Exe: "/bin/sh"}},
		{Kind: wire.KindExec, Time: time.Now(), Process: wire.Process{PID: 2, Exe: "/bin/ls"}},
	}}); err != nil {
		t.Fatal(err)
	}
	if code, body := call(enrolled.Credential, "/api/v1/ingest/sensor", batch.Bytes(), true); code != 200 {
		t.Fatalf("ingest = %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(received, "\n")
		mu.Unlock()
		if strings.Contains(got, "shell in edge") && strings.Contains(got, strings.Repeat("e", 32)+"/0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the alert output did not receive the runtime alert; got %q", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(clusters) != 1 || clusters[0] != "edge" {
		t.Errorf("detectors made for %v, want [edge]", clusters)
	}
}
