package auditlog

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
)

// Webhook receives the batches of kube-apiserver's audit webhook backend:
// POSTed EventLists. It answers 200 only after the sink accepted a batch
// and 503 when the sink failed, so that kube-apiserver retries the batch
// with backoff. It enforces method, content type and MaxBodySize; it does
// not authenticate callers — mount it behind bearer-token authentication.
type Webhook struct {
	sink Sink
	log  *slog.Logger
	// mu keeps the sink's calls in sequence: kube-apiserver sends batches
	// concurrently.
	mu sync.Mutex
}

var _ http.Handler = (*Webhook)(nil)

// NewWebhook returns a webhook delivering to sink. A nil logger discards.
func NewWebhook(sink Sink, logger *slog.Logger) *Webhook {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Webhook{sink: sink, log: logger}
}

func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "audit webhook accepts POST only", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(rw, "audit webhook accepts application/json only", http.StatusUnsupportedMediaType)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		http.Error(rw, "audit webhook accepts no content encoding", http.StatusUnsupportedMediaType)
		return
	}
	if r.ContentLength > MaxBodySize {
		http.Error(rw, "audit event list too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBodySize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(rw, "audit event list too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.log.Warn("audit webhook: reading request body", "err", err)
		http.Error(rw, "reading request body failed", http.StatusBadRequest)
		return
	}
	events, err := ParseEventList(body)
	if err != nil {
		w.log.Warn("audit webhook: rejected event list", "remote", r.RemoteAddr, "bytes", len(body), "err", err)
		code := http.StatusBadRequest
		if errors.Is(err, ErrTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(rw, err.Error(), code)
		return
	}
	if len(events) > 0 {
		w.mu.Lock()
		err = w.sink(r.Context(), events)
		w.mu.Unlock()
		if err != nil {
			w.log.Warn("audit webhook: sink failed; kube-apiserver will retry", "events", len(events), "err", err)
			http.Error(rw, "audit events not accepted", http.StatusServiceUnavailable)
			return
		}
	}
	rw.WriteHeader(http.StatusOK)
}
