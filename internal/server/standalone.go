package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bulwarkhq/bulwark/internal/admission/webhook"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// AdmissionOnlyConfig is what `bulwark admission` is told: the webhook
// alone, deployed in the cluster it guards, sharing the server's store.
type AdmissionOnlyConfig struct {
	DataDir   string
	Database  string
	Admission AdmissionConfig
	// Cluster is the name decisions are recorded under.
	Cluster string
	// Kubeconfig reaches the cluster (to watch namespace labels and to
	// register the webhook); empty uses the pod's service account.
	Kubeconfig string
	// Register, when set, registers the webhook with the certificate's CA
	// and registers it again when the CA changes; nil leaves registration
	// to a chart.
	Register *webhook.Config
	Logger   *slog.Logger
	// Ready, when set, receives the listening address once serving.
	Ready func(addr string)
}

// RunAdmission serves only the admission webhook until ctx ends.
func RunAdmission(ctx context.Context, c AdmissionOnlyConfig) error {
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if c.Admission.Listen == "" {
		return errors.New("admission: no listen address")
	}
	if c.DataDir == "" {
		return errors.New("admission: --data-dir is required")
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	db, err := store.Open(ctx, c.Database, c.DataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close()

	rc, err := kubeConfig(c.Kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nsLister := factory.Core().V1().Namespaces().Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	syncCtx, cancelSync := context.WithTimeout(ctx, time.Minute)
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			cancelSync()
			return fmt.Errorf("watching %v: not synced within a minute (RBAC?)", typ)
		}
	}
	cancelSync()

	adm, err := newAdmissionService(c.Admission, db, nil, nil, prometheus.NewRegistry(), logger)
	if err != nil {
		return err
	}
	adm.namespaces = func(name string) (map[string]string, bool) {
		ns, err := nsLister.Get(name)
		if err != nil {
			return nil, false
		}
		return maps.Clone(ns.Labels), true
	}
	rot, tc, err := admissionTLS(Config{DataDir: c.DataDir, Admission: c.Admission}, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Admission.Listen)
	if err != nil {
		return fmt.Errorf("listening for admission reviews on %s: %w", c.Admission.Listen, err)
	}
	mux := http.NewServeMux()
	review := adm.handler()
	// In its own cluster the webhook serves one cluster, named or not.
	mux.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) {
		rv, err := adm.reviewer(c.Cluster)
		if err != nil {
			http.Error(w, "admission policy unavailable", http.StatusInternalServerError)
			return
		}
		rv.ServeHTTP(w, r)
	})
	mux.Handle("/healthz", review)
	srv := &http.Server{Handler: mux, TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	register := func(ca []byte) {
		if c.Register == nil {
			return
		}
		cfg := *c.Register
		cfg.CABundle = ca
		if err := webhook.Register(ctx, client, cfg); err != nil {
			logger.Error("registering the admission webhook", "err", err)
			return
		}
		logger.Info("admission webhook registered", "name", cfg.Name, "failure_policy", cfg.FailurePolicy)
	}
	done := make(chan error, 3)
	go func() {
		if err := srv.Serve(tls.NewListener(ln, tc)); !errors.Is(err, http.ErrServerClosed) {
			done <- err
			return
		}
		done <- nil
	}()
	go func() { done <- adm.run(ctx) }()
	go func() { rot.Run(ctx, 0, register); done <- nil }()
	register(rot.CABundle())
	logger.Info("serving admission reviews", "addr", ln.Addr().String(), "cluster", c.Cluster)
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
		logger.Warn("shutting down the admission webhook", "err", err)
	}
	n := cap(done)
	if first != nil {
		n--
	}
	for range n {
		select {
		case err := <-done:
			if first == nil && err != nil {
				first = err
			}
		case <-shutdown.Done():
			return errors.New("admission: timed out stopping")
		}
	}
	return first
}

// kubeConfig reads a kubeconfig file, or the pod's service account.
func kubeConfig(path string) (*rest.Config, error) {
	if path == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration (give --kubeconfig outside a cluster): %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", path, err)
	}
	return rc, nil
}
