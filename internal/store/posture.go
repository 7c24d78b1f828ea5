package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// StateResolved selects posture findings the last evaluation no longer
// reports (StateOpen and StateAll select as they do for findings).
const StateResolved = "resolved"

// postureKey names a posture finding within its cluster: one check of
// one resource.
type postureKey struct{ check, kind, namespace, name string }

// storedPosture is a posture finding cleaned and encoded as its row.
type storedPosture struct {
	key        postureKey
	title      string
	severity   model.Severity
	frameworks string
	evidence   string
}

func storePosture(f PostureFinding) (storedPosture, error) {
	p := storedPosture{
		key: postureKey{clean(f.CheckID, maxKind), clean(f.ResourceKind, maxKind),
			clean(f.ResourceNamespace, maxObjectName), clean(f.ResourceName, maxObjectName)},
		title: clean(f.Title, maxShortText),
	}
	// An unrecognised severity is unknown, never guessed.
	p.severity, _ = model.ParseSeverity(clean(f.Severity, maxKind))
	frameworks := make([]string, len(f.Frameworks))
	for i, fw := range f.Frameworks {
		frameworks[i] = clean(fw, maxKind)
	}
	evidence := make([]string, len(f.Evidence))
	for i, e := range f.Evidence {
		evidence[i] = clean(e, maxLongText)
	}
	b, err := json.Marshal(frameworks)
	if err != nil {
		return p, fmt.Errorf("encoding frameworks of check %s: %w", p.key.check, err)
	}
	p.frameworks = string(b)
	if b, err = json.Marshal(evidence); err != nil {
		return p, fmt.Errorf("encoding evidence of check %s: %w", p.key.check, err)
	}
	p.evidence = string(b)
	return p, nil
}

// ReplacePostureFindings records one evaluation of a cluster: the given
// findings are stored as open (one that was resolved and is back is
// reopened, keeping its first-seen time) and open ones not given are
// resolved. It returns how many were opened (new or reopened) and how
// many resolved. Of several findings of the same check and resource the
// first is kept.
func (s *DB) ReplacePostureFindings(ctx context.Context, clusterID int64, fs []PostureFinding, at time.Time) (opened, resolved int, err error) {
	var findings []storedPosture
	seen := map[postureKey]bool{}
	for _, f := range fs {
		p, err := storePosture(f)
		if err != nil {
			return 0, 0, err
		}
		if !seen[p.key] {
			seen[p.key] = true
			findings = append(findings, p)
		}
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		opened, resolved = 0, 0
		var one int
		err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM clusters WHERE id = ?`), clusterID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("cluster %d: %w", clusterID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading cluster %d: %w", clusterID, err)
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, check_id, resource_kind, resource_namespace, resource_name, resolved_at
			FROM posture_findings WHERE cluster_id = ?`), clusterID)
		if err != nil {
			return fmt.Errorf("reading posture findings of cluster %d: %w", clusterID, err)
		}
		type old struct {
			id   int64
			open bool
		}
		existing := map[postureKey]old{}
		for rows.Next() {
			var k postureKey
			var o old
			var res sql.NullInt64
			if err := rows.Scan(&o.id, &k.check, &k.kind, &k.namespace, &k.name, &res); err != nil {
				rows.Close()
				return fmt.Errorf("reading posture findings of cluster %d: %w", clusterID, err)
			}
			o.open = !res.Valid
			existing[k] = o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading posture findings of cluster %d: %w", clusterID, err)
		}
		for _, p := range findings {
			if o, ok := existing[p.key]; !ok || !o.open {
				opened++
			}
			delete(existing, p.key)
		}

		const width = 12
		err = inBatches(findings, width, func(batch []storedPosture) error {
			args := make([]any, 0, width*len(batch))
			for _, p := range batch {
				args = append(args, clusterID, p.key.check, p.title, string(p.severity), p.severity.Rank(), p.frameworks,
					p.key.kind, p.key.namespace, p.key.name, p.evidence, ms(at), ms(at))
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO posture_findings (cluster_id, check_id, title, severity, severity_rank, frameworks,
				resource_kind, resource_namespace, resource_name, evidence, first_seen_at, last_seen_at) VALUES `+valueRows(len(batch), width)+`
				ON CONFLICT (cluster_id, check_id, resource_kind, resource_namespace, resource_name) DO UPDATE SET title = excluded.title,
				severity = excluded.severity, severity_rank = excluded.severity_rank, frameworks = excluded.frameworks,
				evidence = excluded.evidence, last_seen_at = excluded.last_seen_at, resolved_at = NULL`), args...)
			if err != nil {
				return fmt.Errorf("storing posture findings of cluster %d: %w", clusterID, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		var gone []int64
		for _, o := range existing {
			if o.open {
				gone = append(gone, o.id)
			}
		}
		resolved = len(gone)
		return inBatches(gone, 1, func(batch []int64) error {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE posture_findings SET resolved_at = ? WHERE id IN (`+placeholders(len(batch))+`)`),
				append([]any{ms(at)}, int64Args(batch)...)...)
			if err != nil {
				return fmt.Errorf("resolving posture findings of cluster %d: %w", clusterID, err)
			}
			return nil
		})
	})
	if err != nil {
		return 0, 0, err
	}
	return opened, resolved, nil
}

// PostureFilter selects posture findings; zero fields select everything
// (open findings only, unless State says otherwise).
type PostureFilter struct {
	ClusterID    int64
	CheckID      string
	Namespace    string
	ResourceKind string
	ResourceName string
	// Framework keeps findings of checks that belong to this framework.
	Framework string
	// State is StateOpen (the default), StateResolved or StateAll.
	State string
	// Severity keeps findings of this severity, MinSeverity those at
	// least this severe.
	Severity    string
	MinSeverity string
}

// PostureFindings lists posture findings, newest first, one page at a
// time.
func (s *DB) PostureFindings(ctx context.Context, f PostureFilter, p Page) ([]PostureFinding, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	switch f.State {
	case "", StateOpen:
		w.add(`p.resolved_at IS NULL`)
	case StateResolved:
		w.add(`p.resolved_at IS NOT NULL`)
	case StateAll:
	default:
		return nil, "", fmt.Errorf("unknown posture finding state %q (want open, resolved or all)", f.State)
	}
	for _, sev := range []struct {
		name, op string
	}{{f.Severity, "="}, {f.MinSeverity, ">="}} {
		if sev.name == "" {
			continue
		}
		parsed, ok := model.ParseSeverity(sev.name)
		if !ok {
			return nil, "", fmt.Errorf("unknown severity %q", sev.name)
		}
		w.add(`p.severity_rank `+sev.op+` ?`, parsed.Rank())
	}
	w.addIf(f.ClusterID != 0, `p.cluster_id = ?`, f.ClusterID)
	w.addIf(f.CheckID != "", `p.check_id = ?`, f.CheckID)
	w.addIf(f.Namespace != "", `p.resource_namespace = ?`, f.Namespace)
	w.addIf(f.ResourceKind != "", `p.resource_kind = ?`, f.ResourceKind)
	w.addIf(f.ResourceName != "", `p.resource_name = ?`, f.ResourceName)
	w.addIf(f.Framework != "", `EXISTS (SELECT 1 FROM `+fmt.Sprintf(s.dialect.jsonElements, `p.frameworks`)+` WHERE e.value = ?)`, f.Framework)
	if c != nil {
		w.add(`p.id < ?`, c.ID)
	}
	limit := p.limit()
	query := `SELECT p.id, p.cluster_id, c.name, p.check_id, p.title, p.severity, p.frameworks, p.resource_kind, p.resource_namespace,
		p.resource_name, p.evidence, p.first_seen_at, p.last_seen_at, p.resolved_at
		FROM posture_findings p JOIN clusters c ON c.id = p.cluster_id` + w.sql() + ` ORDER BY p.id DESC LIMIT ?`
	args := append(w.args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing posture findings: %w", err)
	}
	defer rows.Close()
	var out []PostureFinding
	for rows.Next() {
		var (
			x                    PostureFinding
			frameworks, evidence string
			first, last          int64
			res                  sql.NullInt64
		)
		if err := rows.Scan(&x.ID, &x.ClusterID, &x.Cluster, &x.CheckID, &x.Title, &x.Severity, &frameworks, &x.ResourceKind, &x.ResourceNamespace,
			&x.ResourceName, &evidence, &first, &last, &res); err != nil {
			return nil, "", fmt.Errorf("listing posture findings: %w", err)
		}
		if err := json.Unmarshal([]byte(frameworks), &x.Frameworks); err != nil {
			return nil, "", fmt.Errorf("reading frameworks of posture finding %d: %w", x.ID, err)
		}
		if err := json.Unmarshal([]byte(evidence), &x.Evidence); err != nil {
			return nil, "", fmt.Errorf("reading evidence of posture finding %d: %w", x.ID, err)
		}
		x.FirstSeenAt, x.LastSeenAt, x.ResolvedAt = fromMS(first), fromMS(last), fromNullMS(res)
		x.State = StateOpen
		if res.Valid {
			x.State = StateResolved
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing posture findings: %w", err)
	}
	out, next := pageByID(out, limit, func(x PostureFinding) int64 { return x.ID })
	return out, next, nil
}
