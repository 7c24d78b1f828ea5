package server

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/nodeingest"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// newSensorIngest makes the pipeline behind the node sensors' ingest
// endpoint. Runtime alerts go to the same outputs, through the same
// dispatcher, as control-plane alerts.
func newSensorIngest(c Config, db *store.DB, det *detection, reg prometheus.Registerer, log *slog.Logger) (*nodeingest.Pipeline, error) {
	if c.NewSensorDetector == nil {
		factory, rules, err := RuntimeDetection(c.RuntimeRulesDir, c.RuntimeListsDir, log)
		if err != nil {
			return nil, err
		}
		c.NewSensorDetector = factory
		log.Info("runtime detection ready", "rules", len(rules))
	}
	p, err := nodeingest.New(nodeingest.Options{Store: db, NewDetector: c.NewSensorDetector, Outputs: det.dispatcher.Outputs(),
		Wake: det.dispatcher.Wake, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	return p, nil
}
