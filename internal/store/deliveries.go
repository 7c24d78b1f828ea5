package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Delivery kinds: the first sending of an alert, or of a change to it.
const (
	DeliveryNew    = "new"
	DeliveryUpdate = "update"
)

// Delivery statuses. A delivery is pending until its output took it
// (sent) or refused it for good or too often (failed).
const (
	DeliveryPending = "pending"
	DeliveryDone    = "sent"
	DeliveryGaveUp  = "failed"
)

// Delivery is one alert to send to one output: a row of the outbox.
type Delivery struct {
	ID      int64
	AlertID int64
	Output  string
	Kind    string
	// Attempts counts claims, this one included.
	Attempts int
	// NextAt is when the delivery is next due: after a claim, the end
	// of its lease.
	NextAt time.Time
	Status string
	Error  string
}

const deliveryColumns = `id, alert_id, output, kind, attempts, next_at, status, last_error`

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var next int64
	if err := row.Scan(&d.ID, &d.AlertID, &d.Output, &d.Kind, &d.Attempts, &next, &d.Status, &d.Error); err != nil {
		return Delivery{}, err
	}
	d.NextAt = fromMS(next)
	return d, nil
}

// ClaimDeliveries takes up to n pending deliveries to output that are due,
// oldest due first, and leases them: they are not due again until the
// lease ends, so two senders never hold the same delivery at once, and
// one whose sender died is sent by another after the lease. The sender
// ends each with DeliverySent or DeliveryFailed.
func (s *DB) ClaimDeliveries(ctx context.Context, output string, n int, lease time.Duration) ([]Delivery, error) {
	n = max(1, min(n, MaxPageSize))
	now := s.now()
	pick := `SELECT id FROM alert_deliveries WHERE output = ? AND status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`
	if s.dialect.skipLocked {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := s.query(ctx, `UPDATE alert_deliveries SET attempts = attempts + 1, next_at = ? WHERE id IN (`+pick+`) RETURNING `+deliveryColumns,
		ms(now.Add(lease)), output, ms(now), n)
	if err != nil {
		return nil, fmt.Errorf("claiming deliveries to %s: %w", output, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("claiming deliveries to %s: %w", output, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming deliveries to %s: %w", output, err)
	}
	slices.SortFunc(out, func(a, b Delivery) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// DeliverySent records that the output took the delivery.
func (s *DB) DeliverySent(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `UPDATE alert_deliveries SET status = 'sent', sent_at = ?, last_error = '' WHERE id = ?`, ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("recording delivery %d: %w", id, err)
	}
	return affectedOne(res, "delivery", id)
}

// DeliveryFailed records a failed attempt: the delivery is due again at
// retryAt, or with giveUp marked failed for good. Either way cause is
// kept as its error. A delivery another sender has meanwhile finished is
// left alone (ErrNotFound).
func (s *DB) DeliveryFailed(ctx context.Context, id int64, cause error, retryAt time.Time, giveUp bool) error {
	msg := ""
	if cause != nil {
		msg = clean(cause.Error(), 2000)
	}
	query, args := `UPDATE alert_deliveries SET next_at = ?, last_error = ? WHERE id = ? AND status = 'pending'`, []any{ms(retryAt), msg, id}
	if giveUp {
		query, args = `UPDATE alert_deliveries SET status = 'failed', last_error = ? WHERE id = ? AND status = 'pending'`, []any{msg, id}
	}
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("recording failure of delivery %d: %w", id, err)
	}
	return affectedOne(res, "pending delivery", id)
}

// PendingDeliveries counts the deliveries not yet sent or given up, by
// output; the metrics report it.
func (s *DB) PendingDeliveries(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, `SELECT output, COUNT(*) FROM alert_deliveries WHERE status = 'pending' GROUP BY output`)
	if err != nil {
		return nil, fmt.Errorf("counting pending deliveries: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			return nil, fmt.Errorf("counting pending deliveries: %w", err)
		}
		out[o] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting pending deliveries: %w", err)
	}
	return out, nil
}

// AlertDeliveries lists an alert's deliveries, oldest first: where it
// was sent, and why not.
func (s *DB) AlertDeliveries(ctx context.Context, alertID int64) ([]Delivery, error) {
	rows, err := s.query(ctx, `SELECT `+deliveryColumns+` FROM alert_deliveries WHERE alert_id = ? ORDER BY id`, alertID)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries of alert %d: %w", alertID, err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("listing deliveries of alert %d: %w", alertID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing deliveries of alert %d: %w", alertID, err)
	}
	return out, nil
}
