package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Admission decision actions, strongest first.
const (
	AdmissionDeny  = "deny"
	AdmissionWarn  = "warn"
	AdmissionAudit = "audit"
	AdmissionAllow = "allow"
	AdmissionError = "error"
)

// AdmissionImage is what a decision found about one container's image.
type AdmissionImage struct {
	Container     string   `json:"container"`
	ContainerKind string   `json:"containerKind"`
	Reference     string   `json:"reference"`
	Digest        string   `json:"digest,omitempty"`
	Scanned       bool     `json:"scanned"`
	Rules         []string `json:"rules,omitempty"`
	Findings      []string `json:"findings,omitempty"`
}

// AdmissionDecision is one review the admission webhook answered.
type AdmissionDecision struct {
	ID               int64
	At               time.Time
	Cluster          string
	UID              string
	Operation        string
	Kind             string
	Namespace        string
	Name             string
	User             string
	Allowed          bool
	Action           string
	Rules            []string
	Message          string
	Warnings         []string
	DryRun           bool
	BreakGlass       bool
	BreakGlassReason string
	Images           []AdmissionImage
	Duration         time.Duration
}

// Bounds on what one decision stores: the webhook's input is an API
// request anyone allowed to create a pod can shape.
const (
	maxDecisionImages   = 100
	maxDecisionFindings = 50
)

// RecordDecisions stores decisions in one transaction.
func (s *DB) RecordDecisions(ctx context.Context, ds []AdmissionDecision) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, d := range ds {
			images := d.Images
			if len(images) > maxDecisionImages {
				images = images[:maxDecisionImages]
			}
			cleaned := make([]AdmissionImage, len(images))
			for i, im := range images {
				im.Container, im.ContainerKind = clean(im.Container, 253), clean(im.ContainerKind, 20)
				im.Reference, im.Digest = clean(im.Reference, 1000), clean(im.Digest, 200)
				im.Rules = cleanList(im.Rules, 20, 200)
				im.Findings = cleanList(im.Findings, maxDecisionFindings, 300)
				cleaned[i] = im
			}
			imagesJSON, err := json.Marshal(cleaned)
			if err != nil {
				return fmt.Errorf("encoding decision images: %w", err)
			}
			rules, _ := json.Marshal(cleanList(d.Rules, 50, 200))
			warnings, _ := json.Marshal(cleanList(d.Warnings, 20, 500))
			at := d.At
			if at.IsZero() {
				at = s.now()
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO admission_decisions (at, cluster, uid, operation, kind, namespace, name, username,
				allowed, action, rules, message, warnings, dry_run, break_glass, break_glass_reason, images, duration_us)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				ms(at), clean(d.Cluster, 200), clean(d.UID, 100), clean(d.Operation, 20), clean(d.Kind, 100), clean(d.Namespace, 253),
				clean(d.Name, 253), clean(d.User, 500), boolInt(d.Allowed), clean(d.Action, 20), string(rules), clean(d.Message, 4000),
				string(warnings), boolInt(d.DryRun), boolInt(d.BreakGlass), clean(d.BreakGlassReason, 1000), string(imagesJSON),
				d.Duration.Microseconds()); err != nil {
				return fmt.Errorf("recording admission decision %s: %w", d.UID, err)
			}
		}
		return nil
	})
}

// cleanList cleans each string of l and keeps at most n.
func cleanList(l []string, n, size int) []string {
	if len(l) > n {
		l = l[:n]
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = clean(v, size)
	}
	return out
}

// AdmissionFilter selects decisions; zero fields select everything.
type AdmissionFilter struct {
	Cluster    string
	Namespace  string
	Action     string
	Rule       string
	BreakGlass bool
	// Denied keeps only reviews that were refused.
	Denied bool
}

// AdmissionDecisions lists decisions, newest first, one page at a time.
func (s *DB) AdmissionDecisions(ctx context.Context, f AdmissionFilter, p Page) ([]AdmissionDecision, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Cluster != "", `cluster = ?`, f.Cluster)
	w.addIf(f.Namespace != "", `namespace = ?`, f.Namespace)
	w.addIf(f.Action != "", `action = ?`, f.Action)
	w.addIf(f.Rule != "", `EXISTS (SELECT 1 FROM `+fmt.Sprintf(s.dialect.jsonElements, `rules`)+` WHERE e.value = ?)`, f.Rule)
	w.addIf(f.BreakGlass, `break_glass = 1`)
	w.addIf(f.Denied, `allowed = 0`)
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	rows, err := s.query(ctx, `SELECT id, at, cluster, uid, operation, kind, namespace, name, username, allowed, action, rules, message,
		warnings, dry_run, break_glass, break_glass_reason, images, duration_us FROM admission_decisions`+w.sql()+
		` ORDER BY id DESC LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("listing admission decisions: %w", err)
	}
	defer rows.Close()
	var out []AdmissionDecision
	for rows.Next() {
		var (
			d                           AdmissionDecision
			at, us                      int64
			allowed, dryRun, breakGlass int
			rules, warnings, imagesJSON string
		)
		if err := rows.Scan(&d.ID, &at, &d.Cluster, &d.UID, &d.Operation, &d.Kind, &d.Namespace, &d.Name, &d.User, &allowed, &d.Action,
			&rules, &d.Message, &warnings, &dryRun, &breakGlass, &d.BreakGlassReason, &imagesJSON, &us); err != nil {
			return nil, "", fmt.Errorf("listing admission decisions: %w", err)
		}
		d.At, d.Duration = fromMS(at), time.Duration(us)*time.Microsecond
		d.Allowed, d.DryRun, d.BreakGlass = allowed != 0, dryRun != 0, breakGlass != 0
		for _, dec := range []struct {
			data string
			into any
		}{{rules, &d.Rules}, {warnings, &d.Warnings}, {imagesJSON, &d.Images}} {
			if err := json.Unmarshal([]byte(dec.data), dec.into); err != nil {
				return nil, "", fmt.Errorf("reading admission decision %d: %w", d.ID, err)
			}
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing admission decisions: %w", err)
	}
	out, next := pageByID(out, limit, func(d AdmissionDecision) int64 { return d.ID })
	return out, next, nil
}
