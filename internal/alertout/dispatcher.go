package alertout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// DispatcherOptions tune a Dispatcher; zero values take the defaults.
type DispatcherOptions struct {
	Logger *slog.Logger
	// Registerer gets the dispatcher's metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxAttempts is how often a delivery is tried before it is given
	// up; default 150, which with the default backoff is about a day.
	MaxAttempts int
	// Backoff is the wait after a first failure, doubling after each
	// further one up to MaxBackoff, with ±20% jitter; defaults 5s and
	// 10m.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Batch is how many deliveries one claim takes; default 10.
	Batch int
	// SendTimeout bounds one Send; default 15s. A claim is leased for
	// Batch sends and a margin, after which a delivery whose sender died
	// is sent by another.
	SendTimeout time.Duration
	// Poll is how often the outbox is read without a Wake; default 5s.
	Poll time.Duration
}

// Dispatcher drains the store's outbox: for each output, it claims due
// deliveries, sends them and records the outcome. Several dispatchers
// (server replicas) may share one database; a claim is exclusive.
type Dispatcher struct {
	db      *store.DB
	outputs []Output
	o       DispatcherOptions
	log     *slog.Logger
	wake    map[string]chan struct{}
	lease   time.Duration

	deliveries *prometheus.CounterVec
	pending    *prometheus.GaugeVec
}

// Delivery results, the result label of bulwark_alert_deliveries_total.
const (
	resultSent    = "sent"
	resultRetried = "retried"
	resultFailed  = "failed"
)

// NewDispatcher returns a dispatcher for outputs, whose names must be
// unique: they key the outbox.
func NewDispatcher(db *store.DB, outputs []Output, o DispatcherOptions) (*Dispatcher, error) {
	if db == nil {
		return nil, errors.New("alert dispatcher: no store")
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 150
	}
	if o.Backoff <= 0 {
		o.Backoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 15 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{db: db, outputs: outputs, o: o, log: logger, wake: map[string]chan struct{}{},
		lease: time.Duration(o.Batch)*o.SendTimeout + 30*time.Second,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulwark_alert_deliveries_total",
			Help: "Alert delivery attempts, by output and result (sent, retried, failed)."}, []string{"output", "result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bulwark_alert_outbox_pending",
			Help: "Alert deliveries not yet sent or given up, by output."}, []string{"output"}),
	}
	for _, out := range outputs {
		if out.Name() == "" {
			return nil, errors.New("alert dispatcher: an output has no name")
		}
		if _, dup := d.wake[out.Name()]; dup {
			return nil, fmt.Errorf("alert dispatcher: two outputs are named %s", out.Name())
		}
		d.wake[out.Name()] = make(chan struct{}, 1)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{d.deliveries, d.pending} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("alert dispatcher: registering metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Outputs names the outputs, for store.SaveAlerts.
func (d *Dispatcher) Outputs() []string {
	names := make([]string, len(d.outputs))
	for i, o := range d.outputs {
		names[i] = o.Name()
	}
	return names
}

// Wake makes every output's loop read the outbox now rather than at its
// next poll; call it after SaveAlerts.
func (d *Dispatcher) Wake() {
	for _, c := range d.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Run sends until ctx ends, then returns nil. Deliveries in flight when
// it stops stay leased and are sent again after their lease.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, out := range d.outputs {
		wg.Go(func() { d.loop(ctx, out) })
	}
	wg.Go(func() { d.countPending(ctx) })
	wg.Wait()
	return nil
}

func (d *Dispatcher) loop(ctx context.Context, out Output) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake[out.Name()]:
		case <-timer.C:
		}
		d.drain(ctx, out)
		timer.Reset(d.o.Poll)
	}
}

// drain sends what is due to out until nothing is.
func (d *Dispatcher) drain(ctx context.Context, out Output) {
	for ctx.Err() == nil {
		ds, err := d.db.ClaimDeliveries(ctx, out.Name(), d.o.Batch, d.lease)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("claiming alert deliveries", "output", out.Name(), "err", err)
			}
			return
		}
		if len(ds) == 0 {
			return
		}
		for i, del := range ds {
			err := d.deliver(ctx, out, del)
			if err == nil || errors.Is(err, ErrRejected) {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			// The output is down: the rest of the claim waits its
			// backoff too rather than each waiting for a timeout.
			for _, rest := range ds[i+1:] {
				d.failed(ctx, out, rest, fmt.Errorf("not tried, as the output failed just before: %w", err))
			}
			return
		}
	}
}

// deliver sends one delivery and records how it went; it returns the
// send's error.
func (d *Dispatcher) deliver(ctx context.Context, out Output, del store.Delivery) error {
	a, err := d.db.Alert(ctx, del.AlertID)
	if errors.Is(err, store.ErrNotFound) {
		// Pruned since it was queued; its deliveries go with it.
		return nil
	}
	if err != nil {
		d.log.Error("reading alert to deliver", "output", out.Name(), "alert", del.AlertID, "err", err)
		return err
	}
	sendCtx, cancel := context.WithTimeout(ctx, d.o.SendTimeout)
	err = out.Send(sendCtx, *a, del.Kind)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: the lease runs out and another try follows.
			return err
		}
		d.failed(ctx, out, del, err)
		return err
	}
	if err := d.db.DeliverySent(ctx, del.ID); err != nil {
		d.log.Error("recording alert delivery", "output", out.Name(), "delivery", del.ID, "err", err)
	}
	d.deliveries.WithLabelValues(out.Name(), resultSent).Inc()
	return nil
}

// failed records a failed attempt: given up when the output rejected the
// alert or the attempts ran out, otherwise due again after a backoff.
func (d *Dispatcher) failed(ctx context.Context, out Output, del store.Delivery, cause error) {
	giveUp := errors.Is(cause, ErrRejected) || del.Attempts >= d.o.MaxAttempts
	retryAt := time.Now().Add(d.backoff(del.Attempts))
	if err := d.db.DeliveryFailed(ctx, del.ID, cause, retryAt, giveUp); err != nil && ctx.Err() == nil {
		d.log.Error("recording failed alert delivery", "output", out.Name(), "delivery", del.ID, "err", err)
	}
	if giveUp {
		d.deliveries.WithLabelValues(out.Name(), resultFailed).Inc()
		d.log.Error("gave up delivering an alert", "output", out.Name(), "alert", del.AlertID, "kind", del.Kind,
			"attempts", del.Attempts, "err", cause)
		return
	}
	d.deliveries.WithLabelValues(out.Name(), resultRetried).Inc()
	d.log.Warn("alert delivery failed; will retry", "output", out.Name(), "alert", del.AlertID, "kind", del.Kind,
		"attempts", del.Attempts, "retryAt", retryAt, "err", cause)
}

// backoff is the wait after the attempts-th failure: Backoff·2^(n-1) up
// to MaxBackoff, ±20%.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	wait := d.o.Backoff
	for i := 1; i < attempts && wait < d.o.MaxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, d.o.MaxBackoff)
	return time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
}

// countPending keeps bulwark_alert_outbox_pending current.
func (d *Dispatcher) countPending(ctx context.Context) {
	tick := time.NewTicker(d.o.Poll)
	defer tick.Stop()
	for {
		counts, err := d.db.PendingDeliveries(ctx)
		if err == nil {
			for _, out := range d.outputs {
				d.pending.WithLabelValues(out.Name()).Set(float64(counts[out.Name()]))
			}
		} else if ctx.Err() == nil {
			d.log.Warn("counting pending alert deliveries", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
