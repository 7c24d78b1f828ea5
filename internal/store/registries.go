package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

const registryColumns = `id, name, type, url, settings, credentials, created_at, updated_at, next_poll_at, last_polled_at, last_error`

func scanRegistry(row interface{ Scan(...any) error }) (*Registry, error) {
	var (
		r                Registry
		settings         string
		created, updated int64
		next             int64
		polled           sql.NullInt64
	)
	if err := row.Scan(&r.ID, &r.Name, &r.Type, &r.URL, &settings, &r.Credentials, &created, &updated, &next, &polled, &r.LastError); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
		return nil, fmt.Errorf("reading settings of registry %d: %w", r.ID, err)
	}
	r.CreatedAt, r.UpdatedAt, r.NextPollAt, r.LastPolledAt = fromMS(created), fromMS(updated), fromMS(next), fromNullMS(polled)
	return &r, nil
}

// CreateRegistry adds a registry and sets r.ID; a name already taken is
// ErrConflict.
func (s *DB) CreateRegistry(ctx context.Context, r *Registry) error {
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return fmt.Errorf("encoding registry settings: %w", err)
	}
	now := s.now()
	err = s.queryRow(ctx, `INSERT INTO registries (name, type, url, settings, credentials, created_at, updated_at, next_poll_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.Name, r.Type, r.URL, string(settings), r.Credentials, ms(now), ms(now), ms(r.NextPollAt)).Scan(&r.ID)
	if isUnique(err) {
		return fmt.Errorf("creating registry %q: %w", r.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("creating registry %q: %w", r.Name, err)
	}
	r.CreatedAt, r.UpdatedAt = fromMS(ms(now)), fromMS(ms(now))
	return nil
}

// UpdateRegistry replaces a registry's name, type, URL, settings and
// credentials.
func (s *DB) UpdateRegistry(ctx context.Context, r *Registry) error {
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return fmt.Errorf("encoding registry settings: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE registries SET name = ?, type = ?, url = ?, settings = ?, credentials = ?, updated_at = ?, next_poll_at = 0 WHERE id = ?`,
		r.Name, r.Type, r.URL, string(settings), r.Credentials, ms(s.now()), r.ID)
	if isUnique(err) {
		return fmt.Errorf("renaming registry %d to %q: %w", r.ID, r.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("updating registry %d: %w", r.ID, err)
	}
	return affectedOne(res, "registry", r.ID)
}

// Registry returns one registry by id.
func (s *DB) Registry(ctx context.Context, id int64) (*Registry, error) {
	r, err := scanRegistry(s.queryRow(ctx, `SELECT `+registryColumns+` FROM registries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry %d: %w", id, err)
	}
	return r, nil
}

// RegistryByName returns one registry by name.
func (s *DB) RegistryByName(ctx context.Context, name string) (*Registry, error) {
	r, err := scanRegistry(s.queryRow(ctx, `SELECT `+registryColumns+` FROM registries WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry %q: %w", name, err)
	}
	return r, nil
}

// Registries lists every registry by name.
func (s *DB) Registries(ctx context.Context) ([]Registry, error) {
	rows, err := s.query(ctx, `SELECT `+registryColumns+` FROM registries ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing registries: %w", err)
	}
	defer rows.Close()
	var out []Registry
	for rows.Next() {
		r, err := scanRegistry(rows)
		if err != nil {
			return nil, fmt.Errorf("listing registries: %w", err)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing registries: %w", err)
	}
	return out, nil
}

// DeleteRegistry removes a registry and its repositories; images seen in
// it stay (they may be seen elsewhere) until retention removes them.
func (s *DB) DeleteRegistry(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `DELETE FROM registries WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("deleting registry %d: %w", id, err)
	}
	return affectedOne(res, "registry", id)
}

// ClaimPoll takes the registry's next listing if it is due: it moves
// next_poll_at to next and reports true, so of several server replicas
// exactly one lists a registry each round.
func (s *DB) ClaimPoll(ctx context.Context, id int64, now, next time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE registries SET next_poll_at = ? WHERE id = ? AND next_poll_at <= ?`, ms(next), id, ms(now))
	if err != nil {
		return false, fmt.Errorf("claiming poll of registry %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claiming poll of registry %d: %w", id, err)
	}
	return n == 1, nil
}

// PollNow makes a registry due for listing at once.
func (s *DB) PollNow(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `UPDATE registries SET next_poll_at = 0 WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("scheduling poll of registry %d: %w", id, err)
	}
	return affectedOne(res, "registry", id)
}

// RecordPoll stores how a listing went; an empty message means success.
func (s *DB) RecordPoll(ctx context.Context, id int64, at time.Time, message string) error {
	if _, err := s.exec(ctx, `UPDATE registries SET last_polled_at = ?, last_error = ? WHERE id = ?`, ms(at), message, id); err != nil {
		return fmt.Errorf("recording poll of registry %d: %w", id, err)
	}
	return nil
}

// SeeRepositories records repositories found in a registry's listing.
func (s *DB) SeeRepositories(ctx context.Context, registryID int64, names []string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO repositories (registry_id, name, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (registry_id, name) DO UPDATE SET last_seen_at = excluded.last_seen_at`))
		if err != nil {
			return fmt.Errorf("recording repositories: %w", err)
		}
		defer stmt.Close()
		for _, n := range names {
			if _, err := stmt.ExecContext(ctx, registryID, n, ms(at), ms(at)); err != nil {
				return fmt.Errorf("recording repository %q: %w", n, err)
			}
		}
		return nil
	})
}

// Repositories lists a registry's repositories by name.
func (s *DB) Repositories(ctx context.Context, registryID int64) ([]Repository, error) {
	rows, err := s.query(ctx, `SELECT id, registry_id, name, first_seen_at, last_seen_at FROM repositories WHERE registry_id = ? ORDER BY name`, registryID)
	if err != nil {
		return nil, fmt.Errorf("listing repositories of registry %d: %w", registryID, err)
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		var r Repository
		var first, last int64
		if err := rows.Scan(&r.ID, &r.RegistryID, &r.Name, &first, &last); err != nil {
			return nil, fmt.Errorf("listing repositories: %w", err)
		}
		r.FirstSeenAt, r.LastSeenAt = fromMS(first), fromMS(last)
		out = append(out, r)
	}
	return out, rows.Err()
}

func affectedOne(res sql.Result, what string, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %d: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	return nil
}
