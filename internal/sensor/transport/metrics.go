package transport

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// registerMetrics exposes the client's counters. The collectors read the
// same atomics as Stats, so the two never disagree.
func (c *Client) registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	counter := func(name, help string, read func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(read()) })
	}
	gauge := func(name, help string, read func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read)
	}
	cs := []prometheus.Collector{
		counter("bulwark_sensor_sent_events_total", "Events the server acknowledged.", c.stats.sentEvents.Load),
		counter("bulwark_sensor_sent_batches_total", "Batches the server acknowledged.", c.stats.sentBatches.Load),
		counter("bulwark_sensor_duplicate_batches_total", "Batches the server already had (a resend).", c.stats.duplicates.Load),
		counter("bulwark_sensor_dropped_events_total", "Events dropped because the on-disk spool was full.", c.stats.dropped.Load),
		counter("bulwark_sensor_rejected_events_total", "Events discarded because the server refused their batch for good or they were invalid.", c.stats.rejected.Load),
		counter("bulwark_sensor_corrupt_spool_files_total", "Spool files set aside as unreadable.", c.stats.corrupt.Load),
		counter("bulwark_sensor_send_errors_total", "Failed attempts to send a batch or to enrol.", c.stats.sendErrors.Load),
		gauge("bulwark_sensor_spool_bytes", "Size of the on-disk spool in bytes.", func() float64 { b, _ := c.spool.usage(); return float64(b) }),
		gauge("bulwark_sensor_spool_files", "Batches in the on-disk spool.", func() float64 { _, f := c.spool.usage(); return float64(f) }),
		gauge("bulwark_sensor_unauthorized", "1 while the server refuses the sensor's credential and token.", func() float64 {
			if c.stats.unauthorized.Load() {
				return 1
			}
			return 0
		}),
	}
	for i, m := range cs {
		if err := reg.Register(m); err != nil {
			for _, r := range cs[:i] {
				reg.Unregister(r)
			}
			return fmt.Errorf("registering sensor transport metrics: %w", err)
		}
	}
	c.metrics = cs
	return nil
}

func (c *Client) unregisterMetrics() {
	for _, m := range c.metrics {
		c.opts.Registerer.Unregister(m)
	}
	c.metrics = nil
}
