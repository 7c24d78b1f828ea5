// Package api is the server's HTTP interface: the REST API under /api/v1
// with its OpenAPI document, bearer-token authentication with roles, the
// audit log of every mutating call, health and readiness probes and the
// Prometheus metrics endpoint. It owns no state: it reads and writes
// through the Store and asks the Scheduler to scan.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/notification"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Store is what the API reads and writes; *store.DB is one.
type Store interface {
	Ping(ctx context.Context) error
	TokenByHash(ctx context.Context, hash string) (*store.Token, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error
	CreateToken(ctx context.Context, t *store.Token) error
	Tokens(ctx context.Context) ([]store.Token, error)
	RevokeToken(ctx context.Context, id int64) error
	Audit(ctx context.Context, e store.AuditEntry) error
	AuditLog(ctx context.Context, f store.AuditFilter, p store.Page) ([]store.AuditEntry, string, error)
	CreateRegistry(ctx context.Context, r *store.Registry) error
	UpdateRegistry(ctx context.Context, r *store.Registry) error
	Registry(ctx context.Context, id int64) (*store.Registry, error)
	RegistryByName(ctx context.Context, name string) (*store.Registry, error)
	Registries(ctx context.Context) ([]store.Registry, error)
	DeleteRegistry(ctx context.Context, id int64) error
	Repositories(ctx context.Context, registryID int64) ([]store.Repository, error)
	Images(ctx context.Context, f store.ImageFilter, p store.Page) ([]store.Image, string, error)
	Image(ctx context.Context, id int64) (*store.Image, error)
	Packages(ctx context.Context, imageID int64) ([]model.Package, error)
	Findings(ctx context.Context, f store.FindingFilter, p store.Page) ([]store.Finding, string, error)
	Scans(ctx context.Context, f store.ScanFilter, p store.Page) ([]store.Scan, string, error)
	ScanJob(ctx context.Context, id int64) (*store.Scan, error)
	CreateCluster(ctx context.Context, c *store.Cluster, sealedConfig []byte) error
	Cluster(ctx context.Context, id int64) (*store.Cluster, error)
	ClusterByName(ctx context.Context, name string) (*store.Cluster, error)
	Clusters(ctx context.Context) ([]store.Cluster, error)
	DeleteCluster(ctx context.Context, id int64) error
	ClusterNamespaces(ctx context.Context, clusterID int64) ([]store.ClusterNamespace, error)
	Workloads(ctx context.Context, f store.WorkloadFilter, p store.Page) ([]store.Workload, string, error)
	Workload(ctx context.Context, id int64) (*store.Workload, error)
	VulnerableWorkloads(ctx context.Context, f store.VulnerableWorkloadFilter, p store.Page) ([]store.VulnerableWorkload, string, error)
	PostureFindings(ctx context.Context, f store.PostureFilter, p store.Page) ([]store.PostureFinding, string, error)
	AdmissionDecisions(ctx context.Context, f store.AdmissionFilter, p store.Page) ([]store.AdmissionDecision, string, error)
	AuditEvents(ctx context.Context, f store.AuditEventFilter, p store.Page) ([]store.AuditEvent, string, error)
	Alerts(ctx context.Context, f store.AlertFilter, p store.Page) ([]store.Alert, string, error)
	Alert(ctx context.Context, id int64) (*store.Alert, error)
	AlertDeliveries(ctx context.Context, alertID int64) ([]store.Delivery, error)
	EnrollSensor(ctx context.Context, sn *store.Sensor) error
	SensorByHash(ctx context.Context, hash string) (*store.Sensor, error)
	Sensors(ctx context.Context, f store.SensorFilter, p store.Page) ([]store.Sensor, string, error)
	RevokeSensor(ctx context.Context, id int64) error
	SensorEvents(ctx context.Context, f store.SensorEventFilter, p store.Page) ([]store.SensorEvent, string, error)
}

// Scheduler runs scans; the API asks it for work.
type Scheduler interface {
	Notify(ctx context.Context, pushes []notification.Push) (int, error)
	ScanNow(ctx context.Context, registryID int64, reference string) (*store.Scan, error)
	PollNow(ctx context.Context, registryID int64) error
	Rematch(ctx context.Context, reason string) (int, error)
}

// Options configure a Server.
type Options struct {
	Store     Store
	Scheduler Scheduler
	// Box seals registry credentials and cluster kubeconfigs.
	Box    *secretbox.Box
	Logger *slog.Logger
	// Gatherer serves /metrics; Registerer gets the API's own metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	Version    string
	// PostureChecks are the loaded posture checks: the API lists them and
	// shows their remediation with the findings they made.
	PostureChecks []posture.Check
	// AuditIngest returns the handler of a cluster's Kubernetes audit
	// webhook batches; nil answers 503.
	AuditIngest func(cluster string) http.Handler
	// DetectionRules are the loaded control-plane detection rules.
	DetectionRules []detect.Rule
	// SensorIngest stores and judges node sensor batches; nil answers
	// 503.
	SensorIngest SensorIngest
}

// Server serves the API.
type Server struct {
	store     Store
	scheduler Scheduler
	box       *secretbox.Box
	logger    *slog.Logger
	version   string
	mux       *http.ServeMux
	metrics   *httpMetrics
	// checkList are the posture checks sorted by id; checks finds one
	// by id.
	checkList []posture.Check
	checks    map[string]posture.Check
	ingest    func(cluster string) http.Handler
	rules     []detect.Rule
	sensors   sensorIngest
}

// New builds the API's handler.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Scheduler == nil || o.Box == nil {
		return nil, errors.New("api: Store, Scheduler and Box are required")
	}
	s := &Server{store: o.Store, scheduler: o.Scheduler, box: o.Box, logger: o.Logger, version: o.Version, mux: http.NewServeMux(),
		ingest: o.AuditIngest, sensors: sensorIngest{SensorIngest: o.SensorIngest, busy: map[int64]bool{}}, rules: slices.SortedFunc(slices.Values(o.DetectionRules), func(a, b detect.Rule) int { return strings.Compare(a.ID, b.ID) })}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.checkList = slices.SortedFunc(slices.Values(o.PostureChecks), func(a, b posture.Check) int { return strings.Compare(a.ID, b.ID) })
	s.checks = make(map[string]posture.Check, len(o.PostureChecks))
	for _, c := range o.PostureChecks {
		s.checks[c.ID] = c
	}
	m, err := newHTTPMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	for _, rt := range s.routes() {
		h := rt.handler
		switch rt.role {
		case "":
		case roleSensor:
			h = s.authenticateSensor(h)
		default:
			h = s.authenticate(h, rt.role)
		}
		s.mux.Handle(rt.method+" "+rt.pattern, s.metrics.wrap(rt.pattern, h))
	}
	gatherer := o.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	s.mux.Handle("GET /metrics", s.authenticate(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}), store.RoleViewer))
	return s, nil
}

// ServeHTTP serves every endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// route is one endpoint: its method and path pattern (net/http's), the
// least role that may call it ("" for the unauthenticated probes,
// roleSensor for a sensor's credential), and its audit action when it
// changes something.
type route struct {
	method, pattern, role string
	handler               http.Handler
}

func (s *Server) routes() []route {
	v, a, ad := store.RoleViewer, store.RoleAnalyst, store.RoleAdmin
	return []route{
		{"GET", "/healthz", "", http.HandlerFunc(s.healthz)},
		{"GET", "/readyz", "", http.HandlerFunc(s.readyz)},
		{"GET", "/api/v1/openapi.json", v, http.HandlerFunc(s.openapi)},
		{"GET", "/api/v1/version", v, http.HandlerFunc(s.getVersion)},
		{"GET", "/api/v1/registries", v, http.HandlerFunc(s.listRegistries)},
		{"POST", "/api/v1/registries", ad, s.audited("registry.create", s.createRegistry)},
		{"GET", "/api/v1/registries/{id}", v, http.HandlerFunc(s.getRegistry)},
		{"PUT", "/api/v1/registries/{id}", ad, s.audited("registry.update", s.updateRegistry)},
		{"DELETE", "/api/v1/registries/{id}", ad, s.audited("registry.delete", s.deleteRegistry)},
		{"POST", "/api/v1/registries/{id}/poll", a, s.audited("registry.poll", s.pollRegistry)},
		{"GET", "/api/v1/registries/{id}/repositories", v, http.HandlerFunc(s.listRepositories)},
		{"GET", "/api/v1/images", v, http.HandlerFunc(s.listImages)},
		{"GET", "/api/v1/images/{id}", v, http.HandlerFunc(s.getImage)},
		{"GET", "/api/v1/images/{id}/packages", v, http.HandlerFunc(s.getPackages)},
		{"GET", "/api/v1/findings", v, http.HandlerFunc(s.listFindings)},
		{"GET", "/api/v1/scans", v, http.HandlerFunc(s.listScans)},
		{"POST", "/api/v1/scans", a, s.audited("scan.create", s.createScan)},
		{"GET", "/api/v1/scans/{id}", v, http.HandlerFunc(s.getScan)},
		{"GET", "/api/v1/clusters", v, http.HandlerFunc(s.listClusters)},
		{"POST", "/api/v1/clusters", ad, s.audited("cluster.create", s.createCluster)},
		{"GET", "/api/v1/clusters/{id}", v, http.HandlerFunc(s.getCluster)},
		{"DELETE", "/api/v1/clusters/{id}", ad, s.audited("cluster.delete", s.deleteCluster)},
		{"GET", "/api/v1/clusters/{id}/namespaces", v, http.HandlerFunc(s.listClusterNamespaces)},
		{"GET", "/api/v1/workloads", v, http.HandlerFunc(s.listWorkloads)},
		{"GET", "/api/v1/workloads/{id}", v, http.HandlerFunc(s.getWorkload)},
		{"GET", "/api/v1/vulnerable-workloads", v, http.HandlerFunc(s.listVulnerableWorkloads)},
		{"GET", "/api/v1/posture/findings", v, http.HandlerFunc(s.listPostureFindings)},
		{"GET", "/api/v1/posture/checks", v, http.HandlerFunc(s.listPostureChecks)},
		{"GET", "/api/v1/admission/decisions", v, http.HandlerFunc(s.listAdmissionDecisions)},
		{"POST", "/api/v1/ingest/k8s-audit/{cluster}", store.RoleIngest, http.HandlerFunc(s.ingestAudit)},
		{"GET", "/api/v1/k8s-audit/events", a, http.HandlerFunc(s.listAuditEvents)},
		{"GET", "/api/v1/alerts", v, http.HandlerFunc(s.listAlerts)},
		{"GET", "/api/v1/alerts/{id}", v, http.HandlerFunc(s.getAlert)},
		{"GET", "/api/v1/detection/rules", v, http.HandlerFunc(s.listDetectionRules)},
		{"POST", "/api/v1/sensors/enroll", store.RoleEnroll, s.audited("sensor.enroll", s.enrollSensor)},
		{"GET", "/api/v1/sensors", v, http.HandlerFunc(s.listSensors)},
		{"DELETE", "/api/v1/sensors/{id}", ad, s.audited("sensor.revoke", s.revokeSensor)},
		{"POST", "/api/v1/ingest/sensor", roleSensor, http.HandlerFunc(s.ingestSensor)},
		{"GET", "/api/v1/sensor-events", a, http.HandlerFunc(s.listSensorEvents)},
		{"POST", "/api/v1/rematch", ad, s.audited("vulndb.rematch", s.rematch)},
		{"POST", "/api/v1/notifications/registry", a, s.audited("registry.notification", s.registryNotification)},
		{"GET", "/api/v1/tokens", ad, http.HandlerFunc(s.listTokens)},
		{"POST", "/api/v1/tokens", ad, s.audited("token.create", s.createToken)},
		{"DELETE", "/api/v1/tokens/{id}", ad, s.audited("token.revoke", s.revokeToken)},
		{"GET", "/api/v1/audit", ad, http.HandlerFunc(s.listAudit)},
	}
}

// problem is the JSON body of every error response.
type problem struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.logger.Warn("writing response failed", "err", err)
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	s.writeJSON(w, status, problem{Error: err.Error(), Status: status})
}

// dbError answers for a store error: 404 and 409 say what was wrong,
// anything else is a 500 that is counted and logged, its detail kept
// out of the response.
func (s *Server) dbError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.writeError(w, r, http.StatusNotFound, err)
	case errors.Is(err, store.ErrConflict):
		s.writeError(w, r, http.StatusConflict, err)
	case errors.Is(err, store.ErrBadCursor):
		s.writeError(w, r, http.StatusBadRequest, err)
	case errors.Is(err, context.Canceled):
		s.writeError(w, r, 499, err)
	default:
		s.metrics.dbErrors.Inc()
		s.logger.Error("store error", "method", r.Method, "path", r.URL.Path, "err", err)
		s.writeJSON(w, http.StatusInternalServerError, problem{Error: "internal error (logged on the server)", Status: 500})
	}
}

// maxBody bounds request bodies; only a cluster's kubeconfig is larger
// (maxClusterBody).
const maxBody = 1 << 20

// decode reads a JSON request body of at most maxBody bytes strictly:
// unknown fields and trailing data are errors.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeLimited(w, r, v, maxBody)
}

// decodeLimited is decode for a body of at most limit bytes.
func decodeLimited(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("reading request body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("reading request body: trailing data after the JSON value")
	}
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("invalid id %q", r.PathValue("id"))
	}
	return id, nil
}

// auditRecorder captures the status and the target a handler sets.
type auditRecorder struct {
	statusRecorder
	target string
	detail map[string]any
}

type auditKey struct{}

// setAudit lets a handler name what it acted on, for the audit log.
func setAudit(r *http.Request, target string, detail map[string]any) {
	if a, ok := r.Context().Value(auditKey{}).(*auditRecorder); ok {
		a.target, a.detail = target, detail
	}
}

// audited writes an audit entry for every call of a mutating handler,
// whether it succeeded or not.
func (s *Server) audited(action string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &auditRecorder{statusRecorder: statusRecorder{ResponseWriter: w}}
		h(rec, r.WithContext(context.WithValue(r.Context(), auditKey{}, rec)))
		c := callerOf(r.Context())
		e := store.AuditEntry{At: time.Now(), Actor: c.name, Role: c.role, Action: action, Method: r.Method, Path: r.URL.Path,
			Target: rec.target, Status: rec.code, RemoteAddr: r.RemoteAddr, Detail: rec.detail}
		// The entry is written even if the client went away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := s.store.Audit(ctx, e); err != nil {
			s.metrics.dbErrors.Inc()
			s.logger.Error("writing audit entry failed", "action", action, "actor", c.name, "err", err)
		}
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.logger.Warn("not ready", "err", err)
		s.writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unavailable"})
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, map[string]string{"version": s.version})
}
