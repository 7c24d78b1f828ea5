// Package server runs `bulwark server`: it opens the store, unseals the
// credentials key, makes sure an admin token exists, starts the scheduler
// that keeps registries scanned, prunes old rows, and serves the API over
// HTTP or HTTPS until its context ends. It wires packages together and
// holds no logic of its own beyond start-up and shutdown.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/bulwarkhq/bulwark/internal/admission/webhook"
	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/cluster"
	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/scheduler"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Config is what `bulwark server` is told.
type Config struct {
	Listen   string
	DataDir  string
	Database string
	// DBDir holds the vulnerability database; empty is DataDir/vulndb.
	DBDir string
	// TLSCert and TLSKey switch on HTTPS.
	TLSCert, TLSKey string
	// SecretKey (from the environment) and SecretKeyFile give the keys
	// that seal registry credentials and kubeconfigs. With neither, SQLite servers keep
	// a generated key in DataDir; PostgreSQL servers must be given one,
	// since every replica needs the same key.
	SecretKey     string
	SecretKeyFile string
	// AdminToken (from the environment) or AdminTokenFile seed the first
	// admin token; with neither, one is generated and printed once.
	AdminToken     string
	AdminTokenFile string
	Workers        int
	PollInterval   time.Duration
	Retention      store.Retention
	// Admission serves the admission webhook when Admission.Listen is set.
	Admission AdmissionConfig
	// AuditRulesDir holds the user's own detection rules (*.yaml).
	AuditRulesDir string
	// AlertOutputsFile configures where alerts are sent.
	AlertOutputsFile string
	// AuditLogs are kube-apiserver audit log files to tail.
	AuditLogs []AuditLogFile
	// RuntimeRulesDir holds the user's own runtime detection rules
	// (*.yaml), judged with the built-in ones; RuntimeListsDir their own
	// lists (*.txt: miner pools, unusual TLDs …), added to the shipped ones.
	RuntimeRulesDir, RuntimeListsDir string
	// NewSensorDetector makes the runtime detector of a cluster's node
	// sensor events; nil means the built-in rules with RuntimeRulesDir and
	// RuntimeListsDir.
	NewSensorDetector func(cluster string) (nodeingest.Detector, error)
	// LookupEnv reads the environment variables output configs name
	// (tokens, URLs); default os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// PostureChecksDir holds the user's own posture checks (*.yaml),
	// evaluated with the built-in ones; empty means built-ins only.
	PostureChecksDir string
	Version          string
	Logger           *slog.Logger
	// Out receives the generated admin token, once.
	Out io.Writer
	// Ready, when set, receives the listening address once serving.
	Ready func(addr string)
	// AdmissionReady, when set, receives the admission webhook's address.
	AdmissionReady func(addr string)
}

// certDir is where the admission webhook's certificates are kept.
func certDir(c Config) string {
	if c.Admission.CertDir != "" {
		return c.Admission.CertDir
	}
	return filepath.Join(c.DataDir, "admission")
}

// postureEngine compiles the built-in posture checks and the user's.
func postureEngine(dir string) (*posture.Engine, error) {
	checks := posture.Builtin()
	if dir != "" {
		own, err := posture.LoadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("loading posture checks: %w", err)
		}
		checks = append(checks, own...)
	}
	engine, err := posture.Compile(checks)
	if err != nil {
		return nil, fmt.Errorf("compiling posture checks: %w", err)
	}
	return engine, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, c Config) error {
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if c.DataDir == "" {
		return errors.New("server: --data-dir is required")
	}
	for _, dir := range []string{c.DataDir, filepath.Join(c.DataDir, "work"), filepath.Join(c.DataDir, "layers")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating data directory: %w", err)
		}
	}
	db, err := store.Open(ctx, c.Database, c.DataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	logger.Info("store open", "database", db.Dialect())

	box, err := openBox(c, db.Dialect(), logger)
	if err != nil {
		return err
	}
	if err := ensureAdmin(ctx, db, c, logger); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dbDir := c.DBDir
	if dbDir == "" {
		dbDir = filepath.Join(c.DataDir, "vulndb")
	}
	engine, err := postureEngine(c.PostureChecksDir)
	if err != nil {
		return err
	}
	logger.Info("posture checks loaded", "checks", len(engine.Checks()), "dir", c.PostureChecksDir)
	var sched *scheduler.Scheduler
	clusters, err := cluster.New(cluster.Options{Store: db, Box: box, Engine: engine, Logger: logger, Registerer: reg,
		Notify: func() { sched.Wake() }})
	if err != nil {
		return fmt.Errorf("starting the cluster connections: %w", err)
	}
	var adm *admissionService
	if c.Admission.Listen != "" {
		if adm, err = newAdmissionService(c.Admission, db, clusters, func() { sched.Wake() }, reg, logger); err != nil {
			return err
		}
	}
	sched, err = scheduler.New(scheduler.Options{Store: db, Box: box, DBDir: dbDir, Workers: c.Workers, PollInterval: c.PollInterval,
		WorkDir: filepath.Join(c.DataDir, "work"), CacheDir: filepath.Join(c.DataDir, "layers"), Logger: logger, Registerer: reg,
		Keychain: clusters.Keychain, Scanned: func(digest string) {
			if adm != nil {
				adm.imageScanned(digest)
			}
		}})
	if err != nil {
		return fmt.Errorf("starting the scheduler: %w", err)
	}
	defer sched.Close()
	lookupEnv := c.LookupEnv
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	det, err := newDetection(c, db, reg, logger, lookupEnv)
	if err != nil {
		return err
	}
	sensors, err := newSensorIngest(c, db, det, reg, logger)
	if err != nil {
		return err
	}
	handler, err := api.New(api.Options{Store: db, Scheduler: sched, Box: box, Logger: logger, Gatherer: reg, Registerer: reg, Version: c.Version,
		PostureChecks: engine.Checks(), AuditIngest: det.ingest, DetectionRules: det.rules, SensorIngest: sensors})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", c.Listen, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 5 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	if c.TLSCert != "" || c.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}

	var (
		rot *webhook.Rotator
		tc  *tls.Config
		aln net.Listener
	)
	if adm != nil {
		if rot, tc, err = admissionTLS(c, logger); err != nil {
			ln.Close()
			return err
		}
		if aln, err = net.Listen("tcp", c.Admission.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("listening for admission reviews on %s: %w", c.Admission.Listen, err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 16)
	running := 0
	spawn := func(fn func() error) {
		running++
		go func() { done <- fn() }()
	}
	serve := func(srv *http.Server, ln net.Listener) func() error {
		return func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}
	}
	spawn(func() error { return sched.Run(ctx) })
	spawn(func() error { return clusters.Run(ctx) })
	spawn(func() error { return prune(ctx, db, c.Retention, logger) })
	spawn(func() error { return det.run(ctx) })
	spawn(func() error { return sensors.Run(ctx) })
	// Read before Serve starts: serving TLS sets up HTTP/2 in TLSConfig.
	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
	}
	spawn(serve(srv, ln))
	var admSrv *http.Server
	if adm != nil {
		admSrv = &http.Server{Handler: adm.handler(), TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		spawn(serve(admSrv, tls.NewListener(aln, tc)))
		spawn(func() error { return adm.run(ctx) })
		spawn(func() error {
			rot.Run(ctx, 0, func([]byte) { logger.Info("admission webhook certificate renewed") })
			return nil
		})
		logger.Info("serving admission reviews", "addr", aln.Addr().String(), "ca", filepath.Join(certDir(c), webhook.CAFile))
		if c.AdmissionReady != nil {
			c.AdmissionReady(aln.Addr().String())
		}
	}
	logger.Info("serving", "addr", ln.Addr().String(), "scheme", scheme, "vulndb", dbDir)
	if c.Ready != nil {
		c.Ready(ln.Addr().String())
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-done:
	}
	cancel()
	shutdown, stop := context.WithTimeout(context.Background(), 15*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdown); err != nil {
		logger.Warn("shutting down the HTTP server", "err", err)
	}
	if admSrv != nil {
		if err := admSrv.Shutdown(shutdown); err != nil {
			logger.Warn("shutting down the admission webhook", "err", err)
		}
	}
	if first != nil {
		running--
	}
	for i := 0; i < running; i++ {
		if first != nil {
			break
		}
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				first = err
			}
		case <-shutdown.Done():
			return errors.New("server: timed out stopping")
		}
	}
	logger.Info("stopped")
	return first
}

// openBox loads the credentials key, generating one for a single SQLite
// server on first start.
func openBox(c Config, dialect string, logger *slog.Logger) (*secretbox.Box, error) {
	if c.SecretKey != "" || c.SecretKeyFile != "" {
		keys, err := secretbox.LoadKeys(c.SecretKey, c.SecretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the credentials key: %w", err)
		}
		return secretbox.New(keys...)
	}
	if dialect != "sqlite" {
		return nil, errors.New("server: with PostgreSQL, give the credentials key with BULWARK_SECRET_KEY or --secret-key-file (every replica needs the same key)")
	}
	path := filepath.Join(c.DataDir, "secret.key")
	keys, err := secretbox.LoadKeys("", path)
	if errors.Is(err, fs.ErrNotExist) {
		key, gerr := secretbox.GenerateKeyFile(path)
		if gerr != nil {
			return nil, fmt.Errorf("generating the credentials key: %w", gerr)
		}
		logger.Warn("generated a credentials key; back it up with the database, registry credentials cannot be read without it", "path", path)
		keys = [][]byte{key}
	} else if err != nil {
		return nil, fmt.Errorf("loading the credentials key: %w", err)
	}
	return secretbox.New(keys...)
}

// ensureAdmin makes sure an admin can log in: the token from the
// environment or file is stored (hashed) if it is not yet; with none and
// no admin in the store, a token is generated and printed once.
func ensureAdmin(ctx context.Context, db *store.DB, c Config, logger *slog.Logger) error {
	token := c.AdminToken
	if token == "" && c.AdminTokenFile != "" {
		b, err := os.ReadFile(c.AdminTokenFile)
		if err != nil {
			return fmt.Errorf("reading the admin token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token != "" {
		if !strings.HasPrefix(token, api.TokenPrefix) || len(token) < len(api.TokenPrefix)+32 {
			return fmt.Errorf("server: the admin token must start with %q and have at least 32 more characters (generate one with: echo %s$(openssl rand -hex 32))", api.TokenPrefix, api.TokenPrefix)
		}
		hash := api.HashToken(token)
		if _, err := db.TokenByHash(ctx, hash); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t := &store.Token{Name: "admin-" + hash[:8], Role: store.RoleAdmin, Hash: hash, Prefix: token[:len(api.TokenPrefix)+6], CreatedBy: "bulwark server"}
		if err := db.CreateToken(ctx, t); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
		logger.Info("admin token from the environment stored", "name", t.Name)
		return nil
	}
	n, err := db.CountAdmins(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	token, hash := api.NewToken()
	t := &store.Token{Name: "admin", Role: store.RoleAdmin, Hash: hash, Prefix: token[:len(api.TokenPrefix)+6], CreatedBy: "bulwark server"}
	err = db.CreateToken(ctx, t)
	if errors.Is(err, store.ErrConflict) {
		t.Name = "admin-" + hash[:8]
		err = db.CreateToken(ctx, t)
	}
	if err != nil {
		return err
	}
	out := c.Out
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, "\nFirst admin token (shown once; store it now):\n\n    %s\n\n", token)
	return nil
}

// prune applies the retention settings every hour.
func prune(ctx context.Context, db *store.DB, r store.Retention, logger *slog.Logger) error {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := db.Prune(ctx, r)
		if err != nil && ctx.Err() == nil {
			logger.Error("pruning old rows failed", "err", err)
		} else if err == nil {
			logger.Debug("pruned old rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
