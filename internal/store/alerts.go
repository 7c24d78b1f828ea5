package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Alert is what a detection rule raised over audit events or a node
// sensor's events: one actor doing one suspicious thing, grouped under
// GroupKey from FirstAt on so that a burst of the same events is one
// alert with a Count.
type Alert struct {
	ID int64
	// Source is what was judged: SourceAudit (the default) or
	// SourceSensor.
	Source        string
	Cluster       string
	RuleID        string
	Title         string
	Severity      string
	TechniqueID   string
	TechniqueName string
	Summary       string
	Actor         string
	Groups        []string
	SourceIP      string
	UserAgent     string
	Verb          string
	Resource      string
	Subresource   string
	Namespace     string
	Name          string
	// Node, the container and the process (its executable and
	// arguments) say where a runtime alert happened; its pod is in
	// Namespace and Name, with Resource "pods".
	Node          string
	ContainerID   string
	ContainerName string
	Image         string
	Process       string
	// Events are the ids of the events the alert groups (audit ids, or
	// sensor evidence ids), the first maxAlertEvents of them.
	Events    []string
	Count     int
	GroupKey  string
	FirstAt   time.Time
	LastAt    time.Time
	CreatedAt time.Time
}

// maxAlertEvents bounds the audit ids one alert lists; Count goes on.
const maxAlertEvents = 500

const alertColumns = `id, cluster, rule_id, title, severity, technique_id, technique_name, summary, actor, actor_groups, source_ip,
	user_agent, verb, resource, subresource, namespace, name, events, event_count, group_key, first_at, last_at, created_at, source, node,
	container_id, container_name, image, process`

func scanAlert(row interface{ Scan(...any) error }) (*Alert, error) {
	var (
		a                          Alert
		groups, events             string
		firstAt, lastAt, createdAt int64
	)
	if err := row.Scan(&a.ID, &a.Cluster, &a.RuleID, &a.Title, &a.Severity, &a.TechniqueID, &a.TechniqueName, &a.Summary, &a.Actor,
		&groups, &a.SourceIP, &a.UserAgent, &a.Verb, &a.Resource, &a.Subresource, &a.Namespace, &a.Name, &events, &a.Count, &a.GroupKey,
		&firstAt, &lastAt, &createdAt, &a.Source, &a.Node, &a.ContainerID, &a.ContainerName, &a.Image, &a.Process); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(groups), &a.Groups); err != nil {
		return nil, fmt.Errorf("reading groups of alert %d: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(events), &a.Events); err != nil {
		return nil, fmt.Errorf("reading events of alert %d: %w", a.ID, err)
	}
	a.FirstAt, a.LastAt, a.CreatedAt = fromMS(firstAt), fromMS(lastAt), fromMS(createdAt)
	return &a, nil
}

// alertSeverityRank orders alert severities as findings' are, with
// "info" beside "none".
func alertSeverityRank(severity string) (int, bool) {
	if strings.EqualFold(strings.TrimSpace(severity), "info") {
		return model.SeverityNone.Rank(), true
	}
	sev, ok := model.ParseSeverity(severity)
	return sev.Rank(), ok
}

// SaveAlerts stores alerts and, in the same transaction, queues their
// delivery to each of outputs. An alert whose cluster, group key and
// first time are new is inserted and queued as DeliveryNew; one already
// stored takes the new count, last time and events when they moved
// forward and is queued as DeliveryUpdate; one that did not change is
// queued nowhere, so saving the same state twice notifies once. It
// returns the alerts as stored, with their ids.
func (s *DB) SaveAlerts(ctx context.Context, alerts []Alert, outputs []string) ([]Alert, error) {
	outputs = slices.Compact(slices.Sorted(slices.Values(outputs)))
	now := s.now()
	out := make([]Alert, 0, len(alerts))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		type queued struct {
			alertID int64
			kind    string
		}
		var deliveries []queued
		for _, a := range alerts {
			stored, kind, err := s.saveAlert(ctx, tx, a, now)
			if err != nil {
				return err
			}
			out = append(out, *stored)
			if kind != "" {
				deliveries = append(deliveries, queued{stored.ID, kind})
			}
		}
		if len(outputs) == 0 {
			return nil
		}
		const width = 5
		return inBatches(deliveries, width*len(outputs), func(batch []queued) error {
			args := make([]any, 0, width*len(outputs)*len(batch))
			for _, d := range batch {
				for _, o := range outputs {
					args = append(args, d.alertID, o, d.kind, ms(now), ms(now))
				}
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO alert_deliveries (alert_id, output, kind, next_at, created_at) VALUES `+
				valueRows(len(batch)*len(outputs), width)), args...)
			if err != nil {
				return fmt.Errorf("queueing deliveries of %d alerts: %w", len(batch), err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// saveAlert inserts or updates one alert and says which delivery it
// needs: DeliveryNew, DeliveryUpdate or none.
func (s *DB) saveAlert(ctx context.Context, tx *sql.Tx, a Alert, now time.Time) (*Alert, string, error) {
	if a.RuleID == "" || a.GroupKey == "" || a.FirstAt.IsZero() {
		return nil, "", fmt.Errorf("saving alert of rule %q: rule, group key and first time are required", a.RuleID)
	}
	if a.LastAt.Before(a.FirstAt) {
		a.LastAt = a.FirstAt
	}
	groups, err := json.Marshal(cleanList(a.Groups, 100, 500))
	if err != nil {
		return nil, "", fmt.Errorf("encoding groups of alert %s: %w", a.RuleID, err)
	}
	events, err := json.Marshal(cleanList(a.Events, maxAlertEvents, 100))
	if err != nil {
		return nil, "", fmt.Errorf("encoding events of alert %s: %w", a.RuleID, err)
	}
	rank, _ := alertSeverityRank(a.Severity)
	cluster, ruleID, groupKey := clean(a.Cluster, 200), clean(a.RuleID, 200), clean(a.GroupKey, 1000)
	source := a.Source
	if source == "" {
		source = SourceAudit
	}
	stored, err := scanAlert(tx.QueryRowContext(ctx, s.q(`INSERT INTO alerts (cluster, rule_id, title, severity, severity_rank,
		technique_id, technique_name, summary, actor, actor_groups, source_ip, user_agent, verb, resource, subresource, namespace, name,
		events, event_count, group_key, first_at, last_at, created_at, source, node, container_id, container_name, image, process)
		VALUES (`+placeholders(29)+`)
		ON CONFLICT (cluster, group_key, first_at) DO NOTHING RETURNING `+alertColumns),
		cluster, ruleID, clean(a.Title, 500), clean(a.Severity, 20), rank, clean(a.TechniqueID, 50), clean(a.TechniqueName, 200),
		clean(a.Summary, 4000), clean(a.Actor, 500), string(groups), clean(a.SourceIP, 100), clean(a.UserAgent, 1000), clean(a.Verb, 50),
		clean(a.Resource, 253), clean(a.Subresource, 253), clean(a.Namespace, 253), clean(a.Name, 253), string(events), a.Count,
		groupKey, ms(a.FirstAt), ms(a.LastAt), ms(now), clean(source, 20), clean(a.Node, 253), clean(a.ContainerID, 253),
		clean(a.ContainerName, 253), clean(a.Image, 1000), clean(a.Process, 4000)))
	if err == nil {
		return stored, DeliveryNew, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("saving alert of rule %s: %w", ruleID, err)
	}
	// Another save of the group got here first. Only a later state
	// replaces it, so two replicas saving out of order cannot move the
	// alert back.
	stored, err = scanAlert(tx.QueryRowContext(ctx, s.q(`UPDATE alerts SET event_count = ?, last_at = ?, events = ?
		WHERE cluster = ? AND group_key = ? AND first_at = ? AND (event_count < ? OR last_at < ?) RETURNING `+alertColumns),
		a.Count, ms(a.LastAt), string(events), cluster, groupKey, ms(a.FirstAt), a.Count, ms(a.LastAt)))
	if err == nil {
		return stored, DeliveryUpdate, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("updating alert of rule %s: %w", ruleID, err)
	}
	stored, err = scanAlert(tx.QueryRowContext(ctx, s.q(`SELECT `+alertColumns+` FROM alerts WHERE cluster = ? AND group_key = ? AND first_at = ?`),
		cluster, groupKey, ms(a.FirstAt)))
	if err != nil {
		return nil, "", fmt.Errorf("reading alert of rule %s: %w", ruleID, err)
	}
	return stored, "", nil
}

// AlertFilter selects alerts; zero fields select everything.
type AlertFilter struct {
	// Source is SourceAudit or SourceSensor.
	Source  string
	Cluster string
	Node    string
	RuleID  string
	// Severity keeps alerts of exactly this severity; MinSeverity those
	// at least as severe ("low", "medium", "high", "critical").
	Severity    string
	MinSeverity string
	Actor       string
	Namespace   string
	TechniqueID string
	// Since keeps alerts whose last event is at or after it.
	Since time.Time
}

// Alerts lists alerts, newest raised first, one page at a time.
func (s *DB) Alerts(ctx context.Context, f AlertFilter, p Page) ([]Alert, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Source != "", `source = ?`, f.Source)
	w.addIf(f.Cluster != "", `cluster = ?`, f.Cluster)
	w.addIf(f.Node != "", `node = ?`, f.Node)
	w.addIf(f.RuleID != "", `rule_id = ?`, f.RuleID)
	w.addIf(f.Severity != "", `severity = ?`, f.Severity)
	if f.MinSeverity != "" {
		rank, ok := alertSeverityRank(f.MinSeverity)
		if !ok {
			return nil, "", fmt.Errorf("listing alerts: unknown severity %q", f.MinSeverity)
		}
		w.add(`severity_rank >= ?`, rank)
	}
	w.addIf(f.Actor != "", `actor = ?`, f.Actor)
	w.addIf(f.Namespace != "", `namespace = ?`, f.Namespace)
	w.addIf(f.TechniqueID != "", `technique_id = ?`, f.TechniqueID)
	w.addIf(!f.Since.IsZero(), `last_at >= ?`, ms(f.Since))
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	rows, err := s.query(ctx, `SELECT `+alertColumns+` FROM alerts`+w.sql()+` ORDER BY id DESC LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("listing alerts: %w", err)
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, "", fmt.Errorf("listing alerts: %w", err)
		}
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing alerts: %w", err)
	}
	out, next := pageByID(out, limit, func(a Alert) int64 { return a.ID })
	return out, next, nil
}

// Alert returns one alert by id.
func (s *DB) Alert(ctx context.Context, id int64) (*Alert, error) {
	a, err := scanAlert(s.queryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("alert %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading alert %d: %w", id, err)
	}
	return a, nil
}
