package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/alertout"
	"github.com/bulwarkhq/bulwark/internal/auditlog"
	"github.com/bulwarkhq/bulwark/internal/controlplane"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// AuditLogFile is a kube-apiserver audit log the server tails.
type AuditLogFile struct {
	Cluster string
	Path    string
}

// ParseAuditLogFile reads CLUSTER=PATH.
func ParseAuditLogFile(s string) (AuditLogFile, error) {
	c, p, ok := strings.Cut(s, "=")
	if !ok || c == "" || p == "" {
		return AuditLogFile{}, fmt.Errorf("audit log %q: want CLUSTER=PATH", s)
	}
	return AuditLogFile{Cluster: c, Path: p}, nil
}

// detection is the control-plane threat detection of a server: the
// pipeline, the alert dispatcher, the file sources and the webhook
// handlers per cluster.
type detection struct {
	rules      []detect.Rule
	pipeline   *controlplane.Pipeline
	dispatcher *alertout.Dispatcher
	files      []*auditlog.FileSource
	fileSinks  []string
	log        *slog.Logger

	mu       sync.Mutex
	webhooks map[string]http.Handler
}

func newDetection(c Config, db *store.DB, reg prometheus.Registerer, log *slog.Logger, lookupEnv func(string) (string, bool)) (*detection, error) {
	rules := detect.Builtin()
	if c.AuditRulesDir != "" {
		own, err := detect.LoadDir(c.AuditRulesDir)
		if err != nil {
			return nil, fmt.Errorf("loading detection rules: %w", err)
		}
		rules = append(rules, own...)
	}
	var outputs []alertout.Output
	if c.AlertOutputsFile != "" {
		data, err := os.ReadFile(c.AlertOutputsFile)
		if err != nil {
			return nil, fmt.Errorf("reading alert outputs: %w", err)
		}
		cfgs, err := alertout.ParseConfig(data)
		if err != nil {
			return nil, fmt.Errorf("alert outputs %s: %w", c.AlertOutputsFile, err)
		}
		if outputs, err = alertout.Build(cfgs, lookupEnv); err != nil {
			return nil, fmt.Errorf("alert outputs %s: %w", c.AlertOutputsFile, err)
		}
	}
	dispatcher, err := alertout.NewDispatcher(db, outputs, alertout.DispatcherOptions{Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	pipeline, err := controlplane.New(controlplane.Options{Store: db, Rules: rules, EngineOptions: detect.Options{Logger: log},
		Outputs: dispatcher.Outputs(), Wake: dispatcher.Wake, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	d := &detection{rules: rules, pipeline: pipeline, dispatcher: dispatcher, log: log, webhooks: map[string]http.Handler{}}
	for _, f := range c.AuditLogs {
		d.files = append(d.files, auditlog.NewFileSource(f.Path, controlplane.StoreOffsets{DB: db}, auditlog.FileOptions{Logger: log}))
		d.fileSinks = append(d.fileSinks, f.Cluster)
	}
	log.Info("control-plane detection ready", "rules", len(rules), "outputs", dispatcher.Outputs(), "audit_logs", len(c.AuditLogs))
	return d, nil
}

// ingest returns the handler of a cluster's audit webhook batches; one per
// cluster, so a cluster's batches are judged in order.
func (d *detection) ingest(cluster string) http.Handler {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.webhooks[cluster]
	if h == nil {
		h = auditlog.NewWebhook(d.pipeline.Sink(cluster), d.log)
		d.webhooks[cluster] = h
	}
	return h
}

// run runs the pipeline's flushes, the dispatcher and the file sources
// until ctx is done.
func (d *detection) run(ctx context.Context) error {
	errs := make(chan error, 2+len(d.files))
	go func() { errs <- d.pipeline.Run(ctx) }()
	go func() { errs <- d.dispatcher.Run(ctx) }()
	for i, f := range d.files {
		go func() { errs <- f.Run(ctx, d.pipeline.Sink(d.fileSinks[i])) }()
	}
	var first error
	for range cap(errs) {
		if err := <-errs; err != nil && first == nil && ctx.Err() == nil {
			first = err
		}
	}
	return first
}
