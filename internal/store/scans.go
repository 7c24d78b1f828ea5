package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const scanColumns = `id, kind, reason, registry_id, reference, image_id, status, attempts, max_attempts, error, findings,
	queued_at, not_before, started_at, finished_at, lease_owner, lease_until, cluster_id, pull_secrets`

func scanScan(row interface{ Scan(...any) error }) (*Scan, error) {
	var (
		j                 Scan
		reg, img, cluster sql.NullInt64
		queued, notBefore int64
		started, finished sql.NullInt64
		leaseUntil        int64
		secrets           string
	)
	if err := row.Scan(&j.ID, &j.Kind, &j.Reason, &reg, &j.Reference, &img, &j.Status, &j.Attempts, &j.MaxAttempts, &j.Error, &j.Findings,
		&queued, &notBefore, &started, &finished, &j.LeaseOwner, &leaseUntil, &cluster, &secrets); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(secrets), &j.PullSecrets); err != nil {
		return nil, fmt.Errorf("reading pull secrets of scan %d: %w", j.ID, err)
	}
	j.RegistryID, j.ImageID, j.ClusterID = reg.Int64, img.Int64, cluster.Int64
	j.QueuedAt, j.NotBefore = fromMS(queued), fromMS(notBefore)
	j.StartedAt, j.FinishedAt = fromNullMS(started), fromNullMS(finished)
	if leaseUntil != 0 {
		j.LeaseUntil = fromMS(leaseUntil)
	}
	return &j, nil
}

// Enqueue adds a scan to the queue unless the same kind of scan of the
// same reference is already queued or running; it reports whether a new
// job was added and sets j.ID either way.
func (s *DB) Enqueue(ctx context.Context, j *Scan) (bool, error) {
	if j.MaxAttempts <= 0 {
		j.MaxAttempts = 5
	}
	now := s.now()
	if j.NotBefore.IsZero() {
		j.NotBefore = now
	}
	j.Status, j.QueuedAt = ScanQueued, now
	secrets := make([]string, len(j.PullSecrets))
	for i, n := range j.PullSecrets {
		secrets[i] = clean(n, 600)
	}
	encoded, err := json.Marshal(secrets)
	if err != nil {
		return false, fmt.Errorf("encoding pull secrets of %s scan of %s: %w", j.Kind, j.Reference, err)
	}
	err = s.queryRow(ctx, `INSERT INTO scans (kind, reason, registry_id, reference, image_id, status, max_attempts, queued_at, not_before, cluster_id, pull_secrets)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		j.Kind, j.Reason, nullID(j.RegistryID), j.Reference, nullID(j.ImageID), ScanQueued, j.MaxAttempts, ms(now), ms(j.NotBefore),
		nullID(j.ClusterID), string(encoded)).Scan(&j.ID)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("queueing %s scan of %s: %w", j.Kind, j.Reference, err)
	}
	err = s.queryRow(ctx, `SELECT id FROM scans WHERE kind = ? AND reference = ? AND status IN ('queued', 'running')`, j.Kind, j.Reference).Scan(&j.ID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("finding queued %s scan of %s: %w", j.Kind, j.Reference, err)
	}
	return false, nil
}

// Claim takes the next due job for owner, leasing it until now+lease. A
// running job whose lease ran out (its server died) is due again, so no
// job is lost. It returns nil when nothing is due.
func (s *DB) Claim(ctx context.Context, owner string, lease time.Duration) (*Scan, error) {
	now := s.now()
	pick := `SELECT id FROM scans WHERE (status = 'queued' AND not_before <= ?) OR (status = 'running' AND lease_until < ?)
		ORDER BY not_before, id LIMIT 1`
	if s.dialect.skipLocked {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	j, err := scanScan(s.queryRow(ctx, `UPDATE scans SET status = 'running', attempts = attempts + 1, started_at = ?, lease_owner = ?, lease_until = ?
		WHERE id = (`+pick+`) RETURNING `+scanColumns,
		ms(now), owner, ms(now.Add(lease)), ms(now), ms(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claiming a scan: %w", err)
	}
	return j, nil
}

// Renew extends a running job's lease; it fails with ErrNotFound when the
// job is no longer owner's (its lease ran out and another server took it).
func (s *DB) Renew(ctx context.Context, id int64, owner string, lease time.Duration) error {
	res, err := s.exec(ctx, `UPDATE scans SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = 'running'`, ms(s.now().Add(lease)), id, owner)
	if err != nil {
		return fmt.Errorf("renewing lease of scan %d: %w", id, err)
	}
	return affectedOne(res, "running scan", id)
}

// Succeed records a finished job.
func (s *DB) Succeed(ctx context.Context, id int64, owner string, imageID int64, findings int) error {
	res, err := s.exec(ctx, `UPDATE scans SET status = 'succeeded', image_id = ?, findings = ?, error = '', finished_at = ?, lease_until = 0
		WHERE id = ? AND lease_owner = ? AND status = 'running'`, nullID(imageID), findings, ms(s.now()), id, owner)
	if err != nil {
		return fmt.Errorf("recording scan %d: %w", id, err)
	}
	return affectedOne(res, "running scan", id)
}

// Fail records a failed attempt. When attempts remain the job goes back
// to the queue, due at retryAt; otherwise it is marked failed with its
// error, kept for the API. It reports whether the job will be retried.
func (s *DB) Fail(ctx context.Context, id int64, owner string, cause error, retryAt time.Time) (bool, error) {
	msg := clean(cause.Error(), 4000)
	var retried bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var attempts, max int
		err := tx.QueryRowContext(ctx, s.q(`SELECT attempts, max_attempts FROM scans WHERE id = ? AND lease_owner = ? AND status = 'running'`), id, owner).Scan(&attempts, &max)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("running scan %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading scan %d: %w", id, err)
		}
		if attempts < max {
			retried = true
			_, err = tx.ExecContext(ctx, s.q(`UPDATE scans SET status = 'queued', error = ?, not_before = ?, lease_owner = '', lease_until = 0 WHERE id = ?`),
				msg, ms(retryAt), id)
		} else {
			_, err = tx.ExecContext(ctx, s.q(`UPDATE scans SET status = 'failed', error = ?, finished_at = ?, lease_until = 0 WHERE id = ?`), msg, ms(s.now()), id)
		}
		if err != nil {
			return fmt.Errorf("recording failure of scan %d: %w", id, err)
		}
		return nil
	})
	return retried, err
}

// ScanJob returns one job by id.
func (s *DB) ScanJob(ctx context.Context, id int64) (*Scan, error) {
	j, err := scanScan(s.queryRow(ctx, `SELECT `+scanColumns+` FROM scans WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("scan %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading scan %d: %w", id, err)
	}
	return j, nil
}

// ScanFilter selects scans; zero fields select everything.
type ScanFilter struct {
	Status     string
	Kind       string
	RegistryID int64
	ClusterID  int64
	Reference  string
}

// Scans lists jobs, newest first.
func (s *DB) Scans(ctx context.Context, f ScanFilter, p Page) ([]Scan, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Status != "", `status = ?`, f.Status)
	w.addIf(f.Kind != "", `kind = ?`, f.Kind)
	w.addIf(f.RegistryID != 0, `registry_id = ?`, f.RegistryID)
	w.addIf(f.ClusterID != 0, `cluster_id = ?`, f.ClusterID)
	w.addIf(f.Reference != "", `reference = ?`, f.Reference)
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	query := `SELECT ` + scanColumns + ` FROM scans` + w.sql() + ` ORDER BY id DESC LIMIT ?`
	args := append(w.args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing scans: %w", err)
	}
	defer rows.Close()
	var out []Scan
	for rows.Next() {
		j, err := scanScan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("listing scans: %w", err)
		}
		out = append(out, *j)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing scans: %w", err)
	}
	out, next := pageByID(out, limit, func(x Scan) int64 { return x.ID })
	return out, next, nil
}

// QueueDepth counts jobs by status (queued, running); the metrics report
// it.
func (s *DB) QueueDepth(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, `SELECT status, COUNT(*) FROM scans WHERE status IN ('queued', 'running') GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("counting the scan queue: %w", err)
	}
	defer rows.Close()
	out := map[string]int{ScanQueued: 0, ScanRunning: 0}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("counting the scan queue: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}
