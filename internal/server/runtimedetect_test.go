package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// docsRule is the example rule of docs/SENSOR.md, so that the example
// users copy is one that loads and fires.
func docsRule(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/SENSOR.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "Your own rule")
	if !ok {
		t.Fatal("docs/SENSOR.md has no example rule")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	if !ok {
		t.Fatal("docs/SENSOR.md's example rule is not a yaml block")
	}
	rule, _, _ := strings.Cut(rest, "```")
	return rule
}

func TestRuntimeDetectionLoadsTheDocsExample(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(docsRule(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	factory, rules, err := RuntimeDetection(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rules[len(rules)-1].ID != "acme-curl-in-payments" {
		t.Fatalf("last rule %s, want the docs example", rules[len(rules)-1].ID)
	}
	d, err := factory("prod")
	if err != nil {
		t.Fatal(err)
	}
	ev := &wire.Event{Kind: wire.KindExec, Time: time.Now(),
		Process:   wire.Process{PID: 42, Exe: "/usr/bin/curl", Args: []string{"curl", "-s", "https://example.com"}},
		Container: &wire.Container{ID: "c1", Name: "api", Pod: "api-1", Namespace: "payments", Image: "acme/api:1"}}
	var got *store.Alert
	for _, a := range d.Process(ev, nodeingest.Meta{Cluster: "prod", Node: "n1", EvidenceID: "b/0"}) {
		if a.RuleID == "acme-curl-in-payments" {
			got = &a
		}
	}
	if got == nil {
		t.Fatal("the docs example rule did not fire")
	}
	if got.Source != store.SourceSensor || got.Namespace != "payments" || got.Name != "api-1" || got.Resource != "pods" ||
		got.ContainerID != "c1" || got.Image != "acme/api:1" || got.Summary != "curl -s https://example.com in api-1" {
		t.Errorf("alert = %+v", got)
	}
}

func TestRuntimeDetectionRefusesBrokenRules(t *testing.T) {
	dir := t.TempDir()
	broken := strings.Replace(docsRule(t), `process.name == "curl"`, `process.nmae == "curl"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RuntimeDetection(dir, "", nil); err == nil || !strings.Contains(err.Error(), "nmae") {
		t.Fatalf("RuntimeDetection = %v, want an error naming the misspelt field", err)
	}
}
