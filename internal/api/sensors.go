package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// SensorCredentialPrefix starts every sensor credential, telling it from
// an API token (which may not ingest, as a credential may not call the
// API) and making leaked ones easy to find.
const SensorCredentialPrefix = "bws_"

// roleSensor marks the routes a sensor calls with its credential.
const roleSensor = "sensor"

// NewSensorCredential makes a random sensor credential and returns it
// with its hash; only the hash is stored.
func NewSensorCredential() (credential, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	credential = SensorCredentialPrefix + hex.EncodeToString(b[:])
	return credential, HashToken(credential)
}

// SensorIngest stores and judges node sensor batches;
// *nodeingest.Pipeline is one.
type SensorIngest interface {
	// Ingest stores and judges a decoded batch of an authenticated
	// sensor and reports false for a batch stored before. An error
	// wrapping wire.ErrInvalid is the sensor's fault (already counted);
	// any other is the server's.
	Ingest(ctx context.Context, sn *store.Sensor, b *wire.Batch) (bool, error)
	// Reject counts a batch the server refused.
	Reject(ctx context.Context, sn *store.Sensor, reason error)
}

// sensorIngest is the server's SensorIngest with the sensors that have a
// batch in flight: one at a time per sensor bounds what a sensor (or a
// stolen credential) can make the server hold in memory.
type sensorIngest struct {
	SensorIngest
	mu   sync.Mutex
	busy map[int64]bool
}

// claim marks a sensor busy, reporting false when it already is.
func (si *sensorIngest) claim(id int64) bool {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.busy[id] {
		return false
	}
	si.busy[id] = true
	return true
}

func (si *sensorIngest) release(id int64) {
	si.mu.Lock()
	delete(si.busy, id)
	si.mu.Unlock()
}

type sensorKey struct{}

func sensorOf(ctx context.Context) *store.Sensor {
	sn, _ := ctx.Value(sensorKey{}).(*store.Sensor)
	return sn
}

var errSensorUnauthenticated = errors.New("missing, unknown, replaced or revoked sensor credential")

// authenticateSensor checks a sensor's bearer credential.
func (s *Server) authenticateSensor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !strings.HasPrefix(raw, SensorCredentialPrefix) || len(raw) > 200 {
			s.writeError(w, r, http.StatusUnauthorized, errSensorUnauthenticated)
			return
		}
		sn, err := s.store.SensorByHash(r.Context(), HashToken(raw))
		if errors.Is(err, store.ErrNotFound) {
			s.writeError(w, r, http.StatusUnauthorized, errSensorUnauthenticated)
			return
		}
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		if !sn.RevokedAt.IsZero() {
			s.writeError(w, r, http.StatusUnauthorized, errSensorUnauthenticated)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sensorKey{}, sn)))
	})
}

type enrollRequest struct {
	Node    string `json:"node"`
	Cluster string `json:"cluster"`
}

type enrollResponse struct {
	ID         int64  `json:"id"`
	Credential string `json:"credential"`
}

// printableLabel checks a name a sensor enrols with: required, at most
// wire.MaxLabel bytes, printable characters only.
func printableLabel(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", field)
	}
	if len(v) > wire.MaxLabel {
		return fmt.Errorf("%s is %d bytes, at most %d", field, len(v), wire.MaxLabel)
	}
	for i, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s has a character that is not printable at byte %d", field, i)
		}
	}
	return nil
}

// enrollSensor gives a node's sensor its credential, replacing the one it
// had.
func (s *Server) enrollSensor(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if err := decodeLimited(w, r, &req, 4<<10); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	if err := errors.Join(printableLabel("node", req.Node), printableLabel("cluster", req.Cluster)); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, req.Cluster+"/"+req.Node, nil)
	credential, hash := NewSensorCredential()
	sn := &store.Sensor{Cluster: req.Cluster, Node: req.Node, Hash: hash, Prefix: credential[:len(SensorCredentialPrefix)+6],
		EnrolledBy: callerOf(r.Context()).name}
	if err := s.store.EnrollSensor(r.Context(), sn); err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, enrollResponse{ID: sn.ID, Credential: credential})
}

type sensorView struct {
	ID         int64      `json:"id"`
	Cluster    string     `json:"cluster"`
	Node       string     `json:"node"`
	Version    string     `json:"version,omitempty"`
	Prefix     string     `json:"prefix"`
	EnrolledAt time.Time  `json:"enrolledAt"`
	EnrolledBy string     `json:"enrolledBy,omitempty"`
	LastSeenAt *time.Time `json:"lastSeenAt,omitempty"`
	Events     int64      `json:"events"`
	Dropped    int64      `json:"dropped"`
	Rejected   int64      `json:"rejected"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

func (s *Server) listSensors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := page(q)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	list, next, err := s.store.Sensors(r.Context(), store.SensorFilter{Cluster: q.Get("cluster"), Node: q.Get("node")}, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[sensorView]{Items: []sensorView{}, NextPageToken: next}
	for _, sn := range list {
		out.Items = append(out.Items, sensorView{ID: sn.ID, Cluster: sn.Cluster, Node: sn.Node, Version: sn.Version, Prefix: sn.Prefix,
			EnrolledAt: sn.EnrolledAt, EnrolledBy: sn.EnrolledBy, LastSeenAt: timePtr(sn.LastSeenAt), Events: sn.Events, Dropped: sn.Dropped,
			Rejected: sn.Rejected, RevokedAt: timePtr(sn.RevokedAt)})
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeSensor(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, r.PathValue("id"), nil)
	if err := s.store.RevokeSensor(r.Context(), id); err != nil {
		s.dbError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type ingestAccepted struct {
	Accepted int `json:"accepted"`
}

type ingestDuplicate struct {
	Duplicate bool `json:"duplicate"`
}

// ingestSensor receives one batch of a sensor. Every answer tells the
// sensor what to do with it: 200 forget it (stored now or before), 400
// drop it (invalid; it is counted here), 429 or 503 send it again later.
func (s *Server) ingestSensor(w http.ResponseWriter, r *http.Request) {
	sn := sensorOf(r.Context())
	if s.sensors.SensorIngest == nil {
		s.writeError(w, r, http.StatusServiceUnavailable, errors.New("this server does not take sensor events"))
		return
	}
	if !s.sensors.claim(sn.ID) {
		w.Header().Set("Retry-After", "1")
		s.writeError(w, r, http.StatusTooManyRequests, errors.New("another batch of this sensor is being stored; send one at a time"))
		return
	}
	defer s.sensors.release(sn.ID)
	if ce := r.Header.Get("Content-Encoding"); !strings.EqualFold(ce, "gzip") {
		err := fmt.Errorf("%w: Content-Encoding is %q, want gzip", wire.ErrInvalid, clipHeader(ce))
		s.sensors.Reject(r.Context(), sn, err)
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	b, err := wire.DecodeBatch(http.MaxBytesReader(w, r.Body, wire.MaxCompressedBytes))
	if err != nil {
		s.sensors.Reject(r.Context(), sn, err)
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	stored, err := s.sensors.Ingest(r.Context(), sn, b)
	switch {
	case errors.Is(err, wire.ErrInvalid):
		s.writeError(w, r, http.StatusBadRequest, err)
	case err != nil:
		s.metrics.dbErrors.Inc()
		s.logger.Error("storing a sensor batch", "cluster", sn.Cluster, "node", sn.Node, "batch", b.ID, "err", err)
		s.writeError(w, r, http.StatusServiceUnavailable, errors.New("the batch could not be stored now; send it again"))
	case !stored:
		s.writeJSON(w, http.StatusOK, ingestDuplicate{Duplicate: true})
	default:
		s.writeJSON(w, http.StatusOK, ingestAccepted{Accepted: len(b.Events)})
	}
}

func clipHeader(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

type sensorEventView struct {
	ID            int64           `json:"id"`
	Evidence      string          `json:"evidence"`
	Cluster       string          `json:"cluster"`
	Node          string          `json:"node"`
	At            time.Time       `json:"at"`
	Kind          string          `json:"kind"`
	PID           uint32          `json:"pid"`
	UID           uint32          `json:"uid"`
	Exe           string          `json:"exe,omitempty"`
	Args          []string        `json:"args"`
	ContainerID   string          `json:"containerID,omitempty"`
	ContainerName string          `json:"containerName,omitempty"`
	Pod           string          `json:"pod,omitempty"`
	Namespace     string          `json:"namespace,omitempty"`
	Image         string          `json:"image,omitempty"`
	Digest        string          `json:"digest,omitempty"`
	DNSName       string          `json:"dnsName,omitempty"`
	Remote        string          `json:"remote,omitempty"`
	Drift         bool            `json:"drift"`
	Event         json.RawMessage `json:"event"`
}

func (s *Server) listSensorEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.SensorEventFilter{Cluster: q.Get("cluster"), Node: q.Get("node"), Kind: q.Get("kind"), Container: q.Get("container"),
		Namespace: q.Get("namespace"), Pod: q.Get("pod"), Exe: q.Get("exe"), DNSName: q.Get("dns"), Evidence: q.Get("evidence")}
	p, err := page(q)
	if err == nil && f.Kind != "" && f.Kind != wire.KindExec && f.Kind != wire.KindDNS && f.Kind != wire.KindConnect {
		err = fmt.Errorf("kind must be %s, %s or %s", wire.KindExec, wire.KindDNS, wire.KindConnect)
	}
	for _, tp := range []struct {
		name string
		into *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if err == nil {
			*tp.into, err = timeParam(q, tp.name)
		}
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	es, next, err := s.store.SensorEvents(r.Context(), f, p)
	if errors.Is(err, store.ErrBadEvidence) {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[sensorEventView]{Items: []sensorEventView{}, NextPageToken: next}
	for _, e := range es {
		out.Items = append(out.Items, sensorEventView{ID: e.ID, Evidence: e.EvidenceID(), Cluster: e.Cluster, Node: e.Node, At: e.At, Kind: e.Kind,
			PID: e.PID, UID: e.UID, Exe: e.Exe, Args: nonNil(e.Args), ContainerID: e.ContainerID, ContainerName: e.ContainerName, Pod: e.Pod,
			Namespace: e.Namespace, Image: e.Image, Digest: e.Digest, DNSName: e.DNSName, Remote: e.Remote, Drift: e.Drift, Event: e.Event})
	}
	s.writeJSON(w, http.StatusOK, out)
}
