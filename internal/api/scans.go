package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/notification"
	"github.com/bulwarkhq/bulwark/internal/store"
)

type scanView struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	Reason      string     `json:"reason"`
	RegistryID  int64      `json:"registryID,omitempty"`
	Reference   string     `json:"reference"`
	ImageID     int64      `json:"imageID,omitempty"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	MaxAttempts int        `json:"maxAttempts"`
	Error       string     `json:"error,omitempty"`
	Findings    int        `json:"findings"`
	QueuedAt    time.Time  `json:"queuedAt"`
	NotBefore   time.Time  `json:"notBefore"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
}

func toScanView(j store.Scan) scanView {
	return scanView{ID: j.ID, Kind: j.Kind, Reason: j.Reason, RegistryID: j.RegistryID, Reference: j.Reference, ImageID: j.ImageID,
		Status: j.Status, Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, Error: j.Error, Findings: j.Findings, QueuedAt: j.QueuedAt,
		NotBefore: j.NotBefore, StartedAt: timePtr(j.StartedAt), FinishedAt: timePtr(j.FinishedAt)}
}

func (s *Server) listScans(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ScanFilter{Status: q.Get("status"), Kind: q.Get("kind"), Reference: q.Get("reference")}
	p, err := page(q)
	if err == nil {
		f.RegistryID, err = s.registryParam(r, q)
	}
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	scans, next, err := s.store.Scans(r.Context(), f, p)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := listPage[scanView]{Items: []scanView{}, NextPageToken: next}
	for _, j := range scans {
		out.Items = append(out.Items, toScanView(j))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	j, err := s.store.ScanJob(r.Context(), id)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, toScanView(*j))
}

type scanRequest struct {
	// Registry is the id or name of the registry whose credentials pull
	// the image; empty uses the server's keychain.
	Registry  string `json:"registry,omitempty"`
	Reference string `json:"reference"`
}

func (s *Server) createScan(w http.ResponseWriter, r *http.Request) {
	var req scanRequest
	if err := decode(w, r, &req); err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	setAudit(r, req.Reference, map[string]any{"registry": req.Registry})
	if req.Reference == "" || len(req.Reference) > 1000 {
		s.writeError(w, r, http.StatusBadRequest, errors.New("reference is required (at most 1000 characters)"))
		return
	}
	var regID int64
	if req.Registry != "" {
		q := r.URL.Query()
		q.Set("registry", req.Registry)
		var err error
		if regID, err = s.registryParam(r, q); err != nil {
			s.writeError(w, r, http.StatusNotFound, err)
			return
		}
	}
	j, err := s.scheduler.ScanNow(r.Context(), regID, req.Reference)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.dbError(w, r, err)
			return
		}
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, toScanView(*j))
}

func (s *Server) rematch(w http.ResponseWriter, r *http.Request) {
	n, err := s.scheduler.Rematch(r.Context(), "manual")
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	setAudit(r, "", map[string]any{"queued": n})
	s.writeJSON(w, http.StatusAccepted, map[string]int{"queued": n})
}

// registryNotification takes a registry's push notifications (the
// distribution notification envelope) and queues the pushed images.
func (s *Server) registryNotification(w http.ResponseWriter, r *http.Request) {
	if !notification.AcceptsContentType(r.Header.Get("Content-Type")) {
		s.writeError(w, r, http.StatusUnsupportedMediaType, errors.New("want "+notification.MediaType))
		return
	}
	pushes, rejected, err := notification.Parse(http.MaxBytesReader(w, r.Body, notification.DefaultLimit), notification.DefaultLimit)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, err)
		return
	}
	for _, e := range rejected {
		s.logger.Warn("rejected registry notification event", "err", e)
	}
	n, err := s.scheduler.Notify(r.Context(), pushes)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	setAudit(r, "", map[string]any{"pushes": len(pushes), "rejected": len(rejected), "queued": n})
	s.writeJSON(w, http.StatusAccepted, map[string]int{"pushes": len(pushes), "rejected": len(rejected), "queued": n})
}
