package server

import (
	"cmp"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/nodedetect"
	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// RuntimeDetection loads the runtime rules (the built-in ones and those in
// rulesDir) and lists (the shipped ones and those in listsDir) once, and
// returns the factory of the per-cluster detectors that judge node sensor
// events, with the rules it compiled.
func RuntimeDetection(rulesDir, listsDir string, log *slog.Logger) (func(cluster string) (nodeingest.Detector, error), []nodedetect.Rule, error) {
	rules, err := nodedetect.Builtin()
	if err != nil {
		return nil, nil, fmt.Errorf("loading the built-in runtime rules: %w", err)
	}
	if rulesDir != "" {
		own, err := nodedetect.LoadDir(rulesDir)
		if err != nil {
			return nil, nil, fmt.Errorf("loading runtime rules: %w", err)
		}
		rules = append(rules, own...)
	}
	var lists map[string][]string
	if listsDir != "" {
		if lists, err = nodedetect.LoadLists(listsDir); err != nil {
			return nil, nil, fmt.Errorf("loading runtime rule lists: %w", err)
		}
	}
	o := nodedetect.Options{Lists: lists, Logger: log}
	// Compile once now, so that a broken rule stops the server at start
	// rather than at a cluster's first event.
	if _, err := nodedetect.New(rules, o); err != nil {
		return nil, nil, fmt.Errorf("compiling runtime rules: %w", err)
	}
	factory := func(cluster string) (nodeingest.Detector, error) {
		e, err := nodedetect.New(rules, o)
		if err != nil {
			return nil, err
		}
		return runtimeDetector{e: e}, nil
	}
	return factory, rules, nil
}

// runtimeDetector adapts a nodedetect.Engine to the ingest pipeline.
type runtimeDetector struct{ e *nodedetect.Engine }

func (d runtimeDetector) Process(ev *wire.Event, m nodeingest.Meta) []store.Alert {
	return storeRuntimeAlerts(d.e.Process(ev, nodedetect.Meta{Node: m.Node, Cluster: m.Cluster, EvidenceID: m.EvidenceID}))
}

func (d runtimeDetector) Flush(now time.Time) []store.Alert {
	return storeRuntimeAlerts(d.e.Flush(now))
}

func storeRuntimeAlerts(as []nodedetect.Alert) []store.Alert {
	if len(as) == 0 {
		return nil
	}
	out := make([]store.Alert, 0, len(as))
	for _, a := range as {
		s := store.Alert{Source: store.SourceSensor, Cluster: a.Cluster, Node: a.Node, RuleID: a.RuleID, Title: a.Title,
			Severity: a.Severity, TechniqueID: a.Technique.ID, TechniqueName: a.Technique.Name, Summary: a.Summary,
			Actor: "uid " + strconv.FormatUint(uint64(a.UID), 10), Process: cmp.Or(a.Cmdline, a.Exe),
			Events: a.Events, Count: a.Count, GroupKey: a.Key, FirstAt: a.FirstAt, LastAt: a.LastAt}
		if c := a.Container; c != nil {
			s.ContainerID, s.ContainerName, s.Image = c.ID, c.Name, c.Image
			if c.Pod != "" {
				s.Resource, s.Namespace, s.Name = "pods", c.Namespace, c.Pod
			}
		}
		out = append(out, s)
	}
	return out
}
