package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// AuditEvent is one Kubernetes audit event as an API server sent it,
// already redacted: the fields hunting filters on, and the whole event.
type AuditEvent struct {
	ID int64
	// AuditID is the API server's id of the request; with Cluster it
	// tells a resent event from a new one.
	AuditID   string
	Cluster   string
	At        time.Time
	Verb      string
	User      string
	Groups    []string
	SourceIP  string
	UserAgent string
	Resource  string
	// Subresource is "exec", "status", "token" and the like.
	Subresource string
	Namespace   string
	Name        string
	APIGroup    string
	// Code is the response's HTTP status.
	Code int
	// Impersonated is the user the request acted as, when it
	// impersonated one.
	Impersonated string
	Event        json.RawMessage
}

// MaxAuditEventSize bounds the stored JSON of one event. A larger event
// loses its request and response objects first; see RecordAuditEvents.
const MaxAuditEventSize = 256 << 10

// auditEventWidth is the number of columns RecordAuditEvents writes per
// event.
const auditEventWidth = 16

// RecordAuditEvents stores events in one transaction and returns how many
// were new: an event whose cluster and audit id are already stored is
// left out. Text is cleaned and bounded; an event's JSON larger than
// MaxAuditEventSize is cut down (see boundEvent) rather than refused, as
// an API server cannot be asked to send it again.
func (s *DB) RecordAuditEvents(ctx context.Context, events []AuditEvent) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	var added int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return inBatches(events, auditEventWidth, func(batch []AuditEvent) error {
			args := make([]any, 0, auditEventWidth*len(batch))
			for _, e := range batch {
				groups, err := json.Marshal(cleanList(e.Groups, 100, 500))
				if err != nil {
					return fmt.Errorf("encoding groups of audit event %s: %w", e.AuditID, err)
				}
				at := e.At
				if at.IsZero() {
					at = s.now()
				}
				args = append(args, clean(e.AuditID, 100), clean(e.Cluster, 200), ms(at), clean(e.Verb, 50), clean(e.User, 500),
					string(groups), clean(e.SourceIP, 100), clean(e.UserAgent, 1000), clean(e.Resource, 253), clean(e.Subresource, 253),
					clean(e.Namespace, 253), clean(e.Name, 253), clean(e.APIGroup, 253), e.Code, clean(e.Impersonated, 500),
					boundEvent(e.Event))
			}
			res, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit_events (audit_id, cluster, at, verb, username, user_groups, source_ip,
				user_agent, resource, subresource, namespace, name, api_group, code, impersonated, event) VALUES `+
				valueRows(len(batch), auditEventWidth)+` ON CONFLICT DO NOTHING`), args...)
			if err != nil {
				return fmt.Errorf("recording %d audit events: %w", len(batch), err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("recording %d audit events: %w", len(batch), err)
			}
			added += n
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	return int(added), nil
}

// The parts of an event boundEvent drops, largest first in practice.
var droppableEventFields = []string{"requestObject", "responseObject", "annotations", "managedFields"}

// boundEvent returns an event's JSON as text both databases take and no
// larger than MaxAuditEventSize. An oversized event keeps its other
// fields and lists what it lost under "bulwarkTruncated"; text that is
// not a JSON object, or an object still too large without its request
// and response, is kept as a JSON string, cut to fit.
func boundEvent(raw json.RawMessage) string {
	if len(raw) == 0 {
		return `{}`
	}
	// The common case: a valid event (JSON never holds a raw NUL) that
	// fits, checked without copying it.
	if len(raw) <= MaxAuditEventSize && utf8.Valid(raw) && json.Valid(raw) {
		return string(raw)
	}
	text := clean(string(raw), math.MaxInt)
	if len(text) <= MaxAuditEventSize && json.Valid([]byte(text)) {
		return text
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &fields); err == nil {
		var dropped []string
		for _, k := range droppableEventFields {
			if _, ok := fields[k]; ok {
				delete(fields, k)
				dropped = append(dropped, k)
			}
		}
		fields["bulwarkTruncated"], _ = json.Marshal(dropped)
		if b, err := json.Marshal(fields); err == nil && len(b) <= MaxAuditEventSize {
			return string(b)
		}
	}
	// A JSON string escapes at most 6 bytes per input byte.
	b, _ := json.Marshal(map[string]string{"bulwarkTruncated": "event", "text": clean(text, MaxAuditEventSize/6-100)})
	return string(b)
}

// AuditEventFilter selects audit events; zero fields select everything.
// Since is inclusive, Until exclusive.
type AuditEventFilter struct {
	Cluster   string
	User      string
	Verb      string
	Resource  string
	Namespace string
	Name      string
	SourceIP  string
	Since     time.Time
	Until     time.Time
	// MinCode and MaxCode bound the response status: 400 and 499 select
	// the client errors, 403 and 403 the forbidden requests.
	MinCode int
	MaxCode int
}

// AuditEvents lists events, newest recorded first, one page at a time.
func (s *DB) AuditEvents(ctx context.Context, f AuditEventFilter, p Page) ([]AuditEvent, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Cluster != "", `cluster = ?`, f.Cluster)
	w.addIf(f.User != "", `username = ?`, f.User)
	w.addIf(f.Verb != "", `verb = ?`, f.Verb)
	w.addIf(f.Resource != "", `resource = ?`, f.Resource)
	w.addIf(f.Namespace != "", `namespace = ?`, f.Namespace)
	w.addIf(f.Name != "", `name = ?`, f.Name)
	w.addIf(f.SourceIP != "", `source_ip = ?`, f.SourceIP)
	w.addIf(!f.Since.IsZero(), `at >= ?`, ms(f.Since))
	w.addIf(!f.Until.IsZero(), `at < ?`, ms(f.Until))
	w.addIf(f.MinCode > 0, `code >= ?`, f.MinCode)
	w.addIf(f.MaxCode > 0, `code <= ?`, f.MaxCode)
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	rows, err := s.query(ctx, `SELECT id, audit_id, cluster, at, verb, username, user_groups, source_ip, user_agent, resource, subresource,
		namespace, name, api_group, code, impersonated, event FROM audit_events`+w.sql()+` ORDER BY id DESC LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("listing audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var (
			e             AuditEvent
			at            int64
			groups, event string
		)
		if err := rows.Scan(&e.ID, &e.AuditID, &e.Cluster, &at, &e.Verb, &e.User, &groups, &e.SourceIP, &e.UserAgent, &e.Resource,
			&e.Subresource, &e.Namespace, &e.Name, &e.APIGroup, &e.Code, &e.Impersonated, &event); err != nil {
			return nil, "", fmt.Errorf("listing audit events: %w", err)
		}
		if err := json.Unmarshal([]byte(groups), &e.Groups); err != nil {
			return nil, "", fmt.Errorf("reading audit event %d: %w", e.ID, err)
		}
		e.At, e.Event = fromMS(at), json.RawMessage(event)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing audit events: %w", err)
	}
	out, next := pageByID(out, limit, func(e AuditEvent) int64 { return e.ID })
	return out, next, nil
}
