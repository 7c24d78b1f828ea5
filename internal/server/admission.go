package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/admission"
	"github.com/bulwarkhq/bulwark/internal/admission/webhook"
	"github.com/bulwarkhq/bulwark/internal/cluster"
	"github.com/bulwarkhq/bulwark/internal/imagefacts"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// AdmissionConfig is how the admission webhook is served.
type AdmissionConfig struct {
	// Listen is the HTTPS address kube-apiserver calls; empty serves no
	// webhook.
	Listen string
	// PolicyFile replaces the default policy.
	PolicyFile string
	// CertDir keeps the webhook's CA and serving certificate; default
	// <data-dir>/admission.
	CertDir string
	// Hosts are the DNS names and IP addresses the serving certificate is
	// for; default the listen host, localhost, 127.0.0.1 and the hostname.
	Hosts []string
	// ClientCA, a PEM file, makes the webhook require client certificates
	// it signed: kube-apiserver presents one when its admission
	// configuration names a kubeconfig for the webhook.
	ClientCA string
}

// clusterID caches a cluster name's id (0: no such cluster).
type clusterID struct {
	id      int64
	expires time.Time
}

// decisionBuffer bounds decisions waiting to be stored; past it they are
// dropped and counted, so storing never slows a review.
const decisionBuffer = 10000

// admissionService serves the webhook: one reviewer per cluster (the URL
// path /validate/{cluster} says which; /validate is a cluster not
// registered), the store-backed image facts, and a writer that stores
// decisions in batches.
type admissionService struct {
	policy   admission.Policy
	facts    *imagefacts.Provider
	db       *store.DB
	clusters *cluster.Manager
	// namespaces, when set, answers namespace labels from a watch of the
	// cluster the webhook runs in (bulwark admission).
	namespaces func(namespace string) (map[string]string, bool)
	log        *slog.Logger
	decisions  chan store.AdmissionDecision
	scanned    chan string

	mu        sync.Mutex
	reviewers map[string]*admission.Reviewer
	ids       map[string]clusterID // cluster name → id, looked up at most every few seconds

	reviews  *prometheus.CounterVec
	duration prometheus.Histogram
	dropped  prometheus.Counter
}

func loadPolicy(file string) (admission.Policy, error) {
	if file == "" {
		return admission.DefaultPolicy(), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return admission.Policy{}, fmt.Errorf("reading admission policy: %w", err)
	}
	p, err := admission.ParsePolicy(data, file)
	if err != nil {
		return admission.Policy{}, err
	}
	return p, nil
}

func newAdmissionService(cfg AdmissionConfig, db *store.DB, clusters *cluster.Manager, wake func(), reg prometheus.Registerer, log *slog.Logger) (*admissionService, error) {
	policy, err := loadPolicy(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	for _, w := range admission.Lint(policy, time.Now()) {
		log.Warn("admission policy", "problem", w)
	}
	facts, err := imagefacts.New(imagefacts.Options{Store: db, Wake: wake, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &admissionService{policy: policy, facts: facts, db: db, clusters: clusters, log: log.With("component", "admission"),
		decisions: make(chan store.AdmissionDecision, decisionBuffer), scanned: make(chan string, 1000),
		reviewers: map[string]*admission.Reviewer{}, ids: map[string]clusterID{},
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_admission_reviews_total",
			Help: "Admission reviews answered, by the strongest action and whether the object was allowed."}, []string{"action", "allowed"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bulwark_admission_review_duration_seconds",
			Help: "Time to answer an admission review.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "bulwark_admission_decisions_dropped_total",
			Help: "Admission decisions not stored because the store fell behind."}),
	}
	// The default reviewer checks the policy compiles before serving.
	if _, err := s.reviewer(""); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{s.reviews, s.duration, s.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering admission metrics: %w", err)
		}
	}
	return s, nil
}

// reviewer returns the reviewer for decisions about a cluster.
func (s *admissionService) reviewer(clusterName string) (*admission.Reviewer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.reviewers[clusterName]; r != nil {
		return r, nil
	}
	r, err := admission.NewReviewer(admission.Options{Policy: s.policy, Facts: s.facts, Logger: s.log,
		NamespaceLabels: func(ctx context.Context, namespace string) (map[string]string, error) {
			return s.namespaceLabels(ctx, clusterName, namespace)
		},
		Record: func(d admission.Decision) { s.record(clusterName, d) }})
	if err != nil {
		return nil, err
	}
	s.reviewers[clusterName] = r
	return r, nil
}

// namespaceLabels reads a namespace's labels from the live connector when
// this replica watches the cluster, else from the stored inventory. A
// request names no cluster only when the webhook was registered without
// one: its namespaces have no labels Bulwark knows.
func (s *admissionService) namespaceLabels(ctx context.Context, clusterName, namespace string) (map[string]string, error) {
	if s.namespaces != nil {
		labels, ok := s.namespaces(namespace)
		if !ok {
			return nil, fmt.Errorf("namespace %s: %w", namespace, store.ErrNotFound)
		}
		return labels, nil
	}
	if clusterName == "" {
		return nil, nil
	}
	id, err := s.clusterID(ctx, clusterName)
	if err != nil {
		return nil, err
	}
	if s.clusters != nil {
		labels, err := s.clusters.NamespaceLabels(id, namespace)
		if !errors.Is(err, cluster.ErrNotWatched) {
			return labels, err
		}
	}
	nss, err := s.db.ClusterNamespaces(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if ns.Name == namespace {
			return ns.Labels, nil
		}
	}
	return nil, fmt.Errorf("namespace %s of cluster %s: %w", namespace, clusterName, store.ErrNotFound)
}

// clusterID returns the id of a registered cluster, cached for a few
// seconds so a review stays a lookup; store.ErrNotFound if there is none.
func (s *admissionService) clusterID(ctx context.Context, name string) (int64, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.ids[name]
	s.mu.Unlock()
	if !ok || now.After(c.expires) {
		cl, err := s.db.ClusterByName(ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			c = clusterID{0, now.Add(5 * time.Second)}
		case err != nil:
			return 0, err
		default:
			c = clusterID{cl.ID, now.Add(5 * time.Second)}
		}
		s.mu.Lock()
		if len(s.ids) > 1000 {
			clear(s.ids)
		}
		s.ids[name] = c
		s.mu.Unlock()
	}
	if c.id == 0 {
		return 0, fmt.Errorf("cluster %q: %w", name, store.ErrNotFound)
	}
	return c.id, nil
}

// record counts a decision and hands it to the writer without waiting.
func (s *admissionService) record(clusterName string, d admission.Decision) {
	s.reviews.WithLabelValues(d.Action, fmt.Sprint(d.Allowed)).Inc()
	s.duration.Observe(d.Duration.Seconds())
	if d.BreakGlass {
		s.log.Warn("break-glass admission", "cluster", clusterName, "namespace", d.Namespace, "kind", d.Kind, "name", d.Name,
			"user", d.User, "reason", d.BreakGlassReason, "rules", d.Rules)
	}
	sd := store.AdmissionDecision{At: d.At, Cluster: clusterName, UID: d.UID, Operation: d.Operation, Kind: d.Kind, Namespace: d.Namespace,
		Name: d.Name, User: d.User, Allowed: d.Allowed, Action: d.Action, Rules: d.Rules, Message: d.Message, Warnings: d.Warnings,
		DryRun: d.DryRun, BreakGlass: d.BreakGlass, BreakGlassReason: d.BreakGlassReason, Duration: d.Duration}
	for _, im := range d.Images {
		sd.Images = append(sd.Images, store.AdmissionImage{Container: im.Container, ContainerKind: im.ContainerKind, Reference: im.Reference,
			Digest: im.Digest, Scanned: im.Scanned, Rules: im.Rules, Findings: im.Findings})
	}
	select {
	case s.decisions <- sd:
	default:
		s.dropped.Inc()
	}
}

// imageScanned is the scheduler's Scanned hook.
func (s *admissionService) imageScanned(digest string) {
	select {
	case s.scanned <- digest:
	default:
	}
}

// run stores decisions in batches and recomputes verdicts of images whose
// scans finished, until ctx is done; then it stores what is left.
func (s *admissionService) run(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var batch []store.AdmissionDecision
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := s.db.RecordDecisions(ctx, batch); err != nil {
			s.log.Warn("storing admission decisions", "decisions", len(batch), "err", err)
			s.dropped.Add(float64(len(batch)))
		}
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case d := <-s.decisions:
					batch = append(batch, d)
				default:
					flush(context.WithoutCancel(ctx))
					return nil
				}
			}
		case d := <-s.decisions:
			batch = append(batch, d)
			if len(batch) >= 200 {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		case digest := <-s.scanned:
			s.precompute(ctx, digest)
		}
	}
}

// precompute makes the next review of a freshly scanned image a lookup,
// under every reference it is known by.
func (s *admissionService) precompute(ctx context.Context, digest string) {
	s.facts.Forget(digest)
	img, err := s.db.ImageByDigest(ctx, digest)
	if err != nil {
		return
	}
	s.mu.Lock()
	reviewers := make([]*admission.Reviewer, 0, len(s.reviewers))
	for _, r := range s.reviewers {
		reviewers = append(reviewers, r)
	}
	s.mu.Unlock()
	for _, ref := range img.Refs {
		f, err := s.facts.Image(ctx, ref.Host+"/"+ref.Repository+"@"+digest)
		if err != nil {
			continue
		}
		for _, r := range reviewers {
			if err := r.Precompute(ctx, f); err != nil {
				s.log.Debug("precomputing a verdict", "digest", digest, "err", err)
			}
		}
	}
}

// handler routes /validate and /validate/{cluster} to their reviewers; a
// cluster that is not registered is 404, so a mistyped URL fails loudly
// at registration instead of reviewing with no namespace labels.
func (s *admissionService) handler() http.Handler {
	mux := http.NewServeMux()
	serve := func(w http.ResponseWriter, r *http.Request, clusterName string) {
		if clusterName != "" {
			if _, err := s.clusterID(r.Context(), clusterName); errors.Is(err, store.ErrNotFound) {
				http.Error(w, "no such cluster", http.StatusNotFound)
				return
			} else if err != nil {
				http.Error(w, "looking up the cluster failed", http.StatusInternalServerError)
				return
			}
		}
		rv, err := s.reviewer(clusterName)
		if err != nil {
			http.Error(w, "admission policy unavailable", http.StatusInternalServerError)
			return
		}
		rv.ServeHTTP(w, r)
	}
	mux.HandleFunc("/validate", func(w http.ResponseWriter, r *http.Request) { serve(w, r, "") })
	mux.HandleFunc("/validate/{cluster}", func(w http.ResponseWriter, r *http.Request) { serve(w, r, r.PathValue("cluster")) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

// admissionTLS returns the webhook's TLS configuration: a certificate
// Bulwark issues and rotates, and client certificates required when a
// client CA is given.
func admissionTLS(c Config, log *slog.Logger) (*webhook.Rotator, *tls.Config, error) {
	cfg, dir := c.Admission, certDir(c)
	var names []string
	var ips []net.IP
	hosts := cfg.Hosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
		if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
		if h, err := os.Hostname(); err == nil {
			hosts = append(hosts, h)
		}
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	rot, err := webhook.NewRotator(dir, names, ips, 30*24*time.Hour, log)
	if err != nil {
		return nil, nil, fmt.Errorf("admission webhook certificate: %w", err)
	}
	tc := rot.TLSConfig()
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the admission client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("admission client CA %s holds no PEM certificate", cfg.ClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	} else {
		log.Warn("the admission webhook accepts any client; set --admission-client-ca to require kube-apiserver's certificate")
	}
	return rot, tc, nil
}
