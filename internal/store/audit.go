package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// Audit appends an entry to the audit log.
func (s *DB) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fmt.Errorf("encoding audit detail: %w", err)
		}
	}
	_, err := s.exec(ctx, `INSERT INTO audit_log (at, actor, role, action, method, path, target, status, remote_addr, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ms(e.At), clean(e.Actor, 200), e.Role, clean(e.Action, 200), e.Method, clean(e.Path, 2000), clean(e.Target, 1000), e.Status,
		clean(e.RemoteAddr, 200), clean(string(detail), 16000))
	if err != nil {
		return fmt.Errorf("writing audit entry %s by %s: %w", e.Action, e.Actor, err)
	}
	return nil
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Actor  string
	Action string
}

// AuditLog lists entries, newest first.
func (s *DB) AuditLog(ctx context.Context, f AuditFilter, p Page) ([]AuditEntry, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Actor != "", `actor = ?`, f.Actor)
	w.addIf(f.Action != "", `action = ?`, f.Action)
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	query := `SELECT id, at, actor, role, action, method, path, target, status, remote_addr, detail FROM audit_log` + w.sql() + ` ORDER BY id DESC LIMIT ?`
	args := append(w.args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("reading the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Role, &e.Action, &e.Method, &e.Path, &e.Target, &e.Status, &e.RemoteAddr, &detail); err != nil {
			return nil, "", fmt.Errorf("reading the audit log: %w", err)
		}
		e.At = fromMS(at)
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return nil, "", fmt.Errorf("reading audit entry %d: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("reading the audit log: %w", err)
	}
	out, next := pageByID(out, limit, func(x AuditEntry) int64 { return x.ID })
	return out, next, nil
}
