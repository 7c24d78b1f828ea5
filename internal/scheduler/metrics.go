package scheduler

import "github.com/prometheus/client_golang/prometheus"

// metrics are the scheduler's Prometheus series.
type metrics struct {
	scans         *prometheus.CounterVec
	scanDuration  *prometheus.HistogramVec
	queueDepth    *prometheus.GaugeVec
	polls         *prometheus.CounterVec
	notifications *prometheus.CounterVec
	publishes     *prometheus.CounterVec
	dbBuilt       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_scans_total",
			Help: "Scans finished, by kind (pull, rematch) and result (succeeded, retried, failed)."}, []string{"kind", "result"}),
		scanDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bulwark_scan_duration_seconds",
			Help: "How long scans took, by kind.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"kind"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bulwark_scan_queue_depth",
			Help: "Scans in the queue, by status."}, []string{"status"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_registry_polls_total",
			Help: "Registry listings, by result (succeeded, failed)."}, []string{"result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_notifications_total",
			Help: "Pushed manifests notified, by result (queued, duplicate, unknown_registry, ignored, failed)."}, []string{"result"}),
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_referrer_publish_total",
			Help: "Scan reports published as OCI referrers, by result (succeeded, failed)."}, []string{"result"}),
		dbBuilt: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bulwark_vulndb_built_timestamp_seconds",
			Help: "Build time of the vulnerability database in use, in Unix seconds."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.scans, m.scanDuration, m.queueDepth, m.polls, m.notifications, m.publishes, m.dbBuilt} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
