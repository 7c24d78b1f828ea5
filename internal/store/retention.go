package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Retention says how long rows of the high-volume tables are kept; zero
// keeps them forever.
type Retention struct {
	// AuditLog bounds the audit log of user actions, the admission
	// webhook's decisions and the alerts raised over audit events (by
	// their last event).
	AuditLog time.Duration
	// AuditEvents bounds the Kubernetes audit events kept for hunting.
	AuditEvents time.Duration
	// SensorEvents bounds the node sensors' events kept for hunting, and
	// the batch ids that tell a resent batch from a new one.
	SensorEvents time.Duration
	// Scans bounds finished scan records (queued and running jobs are
	// never pruned) and alert deliveries that were sent or given up
	// (pending ones are never pruned).
	Scans time.Duration
	// FixedFindings bounds the history of findings that were fixed and
	// of posture findings that were resolved.
	FixedFindings time.Duration
	// Images removes images (and their findings) not seen in any registry
	// for this long, and the tags and repositories not seen for as long.
	Images time.Duration
}

// DefaultRetention keeps a quarter of history, a week of audit and
// sensor events and images seen within a month.
func DefaultRetention() Retention {
	return Retention{AuditLog: 90 * 24 * time.Hour, AuditEvents: 7 * 24 * time.Hour, SensorEvents: 7 * 24 * time.Hour, Scans: 30 * 24 * time.Hour, FixedFindings: 90 * 24 * time.Hour, Images: 30 * 24 * time.Hour}
}

// Pruned counts the rows a Prune removed, by table.
type Pruned map[string]int64

// Prune deletes rows older than the retention allows.
func (s *DB) Prune(ctx context.Context, r Retention) (Pruned, error) {
	now := s.now()
	out := Pruned{}
	for _, p := range []struct {
		table, query string
		keep         time.Duration
	}{
		{"audit_log", `DELETE FROM audit_log WHERE at < ?`, r.AuditLog},
		{"admission_decisions", `DELETE FROM admission_decisions WHERE at < ?`, r.AuditLog},
		{"audit_events", `DELETE FROM audit_events WHERE at < ?`, r.AuditEvents},
		{"sensor_events", `DELETE FROM sensor_events WHERE at < ?`, r.SensorEvents},
		{"sensor_batches", `DELETE FROM sensor_batches WHERE received_at < ?`, r.SensorEvents},
		{"alerts", `DELETE FROM alerts WHERE last_at < ?`, r.AuditLog},
		{"alert_deliveries", `DELETE FROM alert_deliveries WHERE status IN ('sent', 'failed') AND created_at < ?`, r.Scans},
		{"scans", `DELETE FROM scans WHERE finished_at IS NOT NULL AND finished_at < ?`, r.Scans},
		{"findings", `DELETE FROM findings WHERE fixed_at IS NOT NULL AND fixed_at < ?`, r.FixedFindings},
		{"posture_findings", `DELETE FROM posture_findings WHERE resolved_at IS NOT NULL AND resolved_at < ?`, r.FixedFindings},
		{"images", `DELETE FROM images WHERE last_seen_at < ?`, r.Images},
		{"image_refs", `DELETE FROM image_refs WHERE last_seen_at < ?`, r.Images},
		{"repositories", `DELETE FROM repositories WHERE last_seen_at < ?`, r.Images},
	} {
		if p.keep <= 0 {
			continue
		}
		res, err := s.exec(ctx, p.query, ms(now.Add(-p.keep)))
		if err != nil {
			return out, fmt.Errorf("pruning %s: %w", p.table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return out, fmt.Errorf("pruning %s: %w", p.table, err)
		}
		out[p.table] = n
	}
	return out, nil
}

// Setting reads a server-wide value; ErrNotFound when unset.
func (s *DB) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.queryRow(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading setting %q: %w", name, err)
	}
	return v, nil
}

// SetSetting writes a server-wide value.
func (s *DB) SetSetting(ctx context.Context, name, value string) error {
	_, err := s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("writing setting %q: %w", name, err)
	}
	return nil
}

// CompareAndSetSetting changes a value only if it still holds old (empty
// old: only if unset), so of several replicas one wins; it reports
// whether this call changed it.
func (s *DB) CompareAndSetSetting(ctx context.Context, name, old, value string) (bool, error) {
	var res sql.Result
	var err error
	if old == "" {
		res, err = s.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, name, value)
	} else {
		res, err = s.exec(ctx, `UPDATE settings SET value = ? WHERE name = ? AND value = ?`, value, name, old)
	}
	if err != nil {
		return false, fmt.Errorf("writing setting %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("writing setting %q: %w", name, err)
	}
	return n == 1, nil
}
