package nodedetect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// t0 is the start of every fixture sequence.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

type ruleCase struct {
	Rule   string           `yaml:"rule"`
	Name   string           `yaml:"name"`
	Fires  bool             `yaml:"fires"`
	Events []map[string]any `yaml:"events"`
}

type caseFile struct {
	Containers map[string]map[string]any `yaml:"containers"`
	Cases      []ruleCase                `yaml:"cases"`
}

// loadCases reads testdata/cases.yaml and expands each case's shorthand
// events into valid wire events (see the file's header).
func loadCases(t testing.TB) (map[string]map[string]any, []ruleCase, map[*ruleCase][]wire.Event) {
	t.Helper()
	data, err := os.ReadFile("testdata/cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f caseFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("testdata/cases.yaml: %v", err)
	}
	events := map[*ruleCase][]wire.Event{}
	for i := range f.Cases {
		c := &f.Cases[i]
		evs, err := expandEvents(f.Containers, c.Events)
		if err != nil {
			t.Fatalf("case %s/%s: %v", c.Rule, c.Name, err)
		}
		events[c] = evs
	}
	return f.Containers, f.Cases, events
}

func expandEvents(containers map[string]map[string]any, raw []map[string]any) ([]wire.Event, error) {
	var out []wire.Event
	for i, m := range raw {
		n := 1
		if r, ok := m["repeat"].(int); ok {
			n = r
			delete(m, "repeat")
		}
		at := time.Duration(i) * time.Second
		if s, ok := m["at"].(string); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				return nil, fmt.Errorf("event %d: at: %w", i, err)
			}
			at = d
			delete(m, "at")
		}
		if name, ok := m["container"].(string); ok {
			c, found := containers[name]
			if !found {
				return nil, fmt.Errorf("event %d: no container %q", i, name)
			}
			m["container"] = c
		}
		for k := range n {
			ev, err := toEvent(m, t0.Add(at+time.Duration(k)*time.Second), k)
			if err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

func toEvent(m map[string]any, at time.Time, copyIndex int) (wire.Event, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return wire.Event{}, err
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d", copyIndex))
	data = []byte(strings.ReplaceAll(string(data), "{hex}", hex.EncodeToString(sum[:])[:40]))
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var ev wire.Event
	if err := dec.Decode(&ev); err != nil {
		return wire.Event{}, err
	}
	ev.Time = at
	for _, p := range append([]*wire.Process{&ev.Process}, ptrs(ev.Ancestors)...) {
		if p.Comm == "" {
			p.Comm = processName(p)[:min(15, len(processName(p)))]
		}
		if p.PID == 0 {
			p.PID = 4000 + uint32(copyIndex)
		}
	}
	if err := ev.Validate(); err != nil {
		return wire.Event{}, err
	}
	return ev, nil
}

func ptrs(ps []wire.Process) []*wire.Process {
	out := make([]*wire.Process, len(ps))
	for i := range ps {
		out[i] = &ps[i]
	}
	return out
}
