package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const tokenColumns = `id, name, role, hash, prefix, created_at, created_by, expires_at, last_used_at, revoked_at`

func scanToken(row interface{ Scan(...any) error }) (*Token, error) {
	var (
		t                      Token
		created                int64
		expires, used, revoked sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &t.Prefix, &created, &t.CreatedBy, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromMS(created), fromNullMS(expires), fromNullMS(used), fromNullMS(revoked)
	return &t, nil
}

// CreateToken stores a token (its hash, never the token) and sets t.ID; a
// name already taken is ErrConflict.
func (s *DB) CreateToken(ctx context.Context, t *Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	err := s.queryRow(ctx, `INSERT INTO api_tokens (name, role, hash, prefix, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		t.Name, t.Role, t.Hash, t.Prefix, ms(t.CreatedAt), t.CreatedBy, msOrNull(t.ExpiresAt)).Scan(&t.ID)
	if isUnique(err) {
		return fmt.Errorf("creating token %q: %w", t.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("creating token %q: %w", t.Name, err)
	}
	return nil
}

// TokenByHash finds the token with this hash, revoked or not; the caller
// decides what a revoked or expired token may do (nothing).
func (s *DB) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	t, err := scanToken(s.queryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading token: %w", err)
	}
	return t, nil
}

// TouchToken records that a token was used, at most once a minute per
// token so reads do not turn into writes.
func (s *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		ms(at), id, ms(at.Add(-time.Minute)))
	if err != nil {
		return fmt.Errorf("recording use of token %d: %w", id, err)
	}
	return nil
}

// Tokens lists every token by name.
func (s *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("listing tokens: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// RevokeToken revokes a token for good.
func (s *DB) RevokeToken(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoking token %d: %w", id, err)
	}
	return affectedOne(res, "active token", id)
}

// CountAdmins counts tokens with the admin role that are neither revoked
// nor expired; the server creates the first admin token when there is
// none.
func (s *DB) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
		ms(s.now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting admin tokens: %w", err)
	}
	return n, nil
}
