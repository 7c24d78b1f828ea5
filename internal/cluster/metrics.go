package cluster

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	syncs           *prometheus.CounterVec
	syncDuration    prometheus.Histogram
	postureDuration prometheus.Histogram
	queued          prometheus.Counter
}

func (m *metrics) register(r prometheus.Registerer) error {
	m.syncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulwark_cluster_syncs_total", Help: "Cluster inventory and posture syncs, by result.",
	}, []string{"result"})
	m.syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bulwark_cluster_sync_duration_seconds", Help: "Time to store a cluster's inventory, posture and runtime scans.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	m.postureDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "bulwark_posture_evaluation_duration_seconds", Help: "Time to evaluate every posture check over one cluster.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	m.queued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bulwark_cluster_runtime_scans_queued_total", Help: "Scans queued for running images never scanned.",
	})
	if r == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.syncs, m.syncDuration, m.postureDuration, m.queued} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("registering cluster metrics: %w", err)
		}
	}
	return nil
}
