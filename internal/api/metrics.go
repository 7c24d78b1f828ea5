package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type httpMetrics struct {
	latency  *prometheus.HistogramVec
	dbErrors prometheus.Counter
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulwark_http_request_duration_seconds",
			Help:    "Time to answer API requests, by route, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
		dbErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bulwark_store_errors_total",
			Help: "Store errors met while answering API requests.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.latency, m.dbErrors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering API metrics: %w", err)
			}
		}
	}
	return m, nil
}

// statusRecorder remembers the status code a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// wrap times a route; the label is the route's pattern, never the raw
// path, so label cardinality stays bounded.
func (m *httpMetrics) wrap(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		m.latency.WithLabelValues(pattern, r.Method, strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}
