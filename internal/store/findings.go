package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Finding states a listing can ask for.
const (
	StateOpen  = "open"
	StateFixed = "fixed"
	StateAll   = "all"
)

// FindingSorts are the orders findings can be listed in.
var FindingSorts = []string{"severity", "-severity", "first_seen", "-first_seen", "package", "vulnerability"}

// FindingFilter selects findings; zero fields select everything (open
// findings only, unless State says otherwise).
type FindingFilter struct {
	// Severities keeps findings of these severities.
	Severities []model.Severity
	// MinSeverity keeps findings at least this severe.
	MinSeverity model.Severity
	Package     string
	// Vulnerability matches the id or one of its aliases.
	Vulnerability string
	Fixable       *bool
	RegistryID    int64
	Repository    string
	ImageID       int64
	State         string
	// Sort is one of FindingSorts; empty is "severity" (most severe
	// first).
	Sort string
}

// sortSpec says how a listing order reads: the column, whether it runs
// high to low, and whether it is a number.
type sortSpec struct {
	column  string
	desc    bool
	numeric bool
}

var findingSorts = map[string]sortSpec{
	"severity":      {"f.severity_rank", true, true},
	"-severity":     {"f.severity_rank", false, true},
	"first_seen":    {"f.first_seen_at", false, true},
	"-first_seen":   {"f.first_seen_at", true, true},
	"package":       {"f.package_name", false, false},
	"vulnerability": {"f.vuln_id", false, false},
}

// Findings lists findings one page at a time with keyset pagination, so
// the hundredth page costs what the first does.
func (s *DB) Findings(ctx context.Context, f FindingFilter, p Page) ([]Finding, string, error) {
	sortName := f.Sort
	if sortName == "" {
		sortName = "severity"
	}
	spec, ok := findingSorts[sortName]
	if !ok {
		return nil, "", fmt.Errorf("unknown sort %q (want one of %s)", sortName, strings.Join(FindingSorts, ", "))
	}
	c, err := decodeCursor(p.Cursor, sortName)
	if err != nil {
		return nil, "", err
	}
	var w conditions
	switch f.State {
	case "", StateOpen:
		w.add(`f.fixed_at IS NULL`)
	case StateFixed:
		w.add(`f.fixed_at IS NOT NULL`)
	case StateAll:
	default:
		return nil, "", fmt.Errorf("unknown finding state %q (want open, fixed or all)", f.State)
	}
	if len(f.Severities) > 0 {
		ranks := make([]any, len(f.Severities))
		for i, sev := range f.Severities {
			ranks[i] = sev.Rank()
		}
		w.add(`f.severity_rank IN (`+placeholders(len(ranks))+`)`, ranks...)
	}
	w.addIf(f.MinSeverity != "", `f.severity_rank >= ?`, f.MinSeverity.Rank())
	w.addIf(f.Package != "", `f.package_name = ?`, f.Package)
	w.addIf(f.Vulnerability != "", `(f.vuln_id = ? OR f.id IN (SELECT finding_id FROM finding_aliases WHERE alias = ?))`, f.Vulnerability, f.Vulnerability)
	if f.Fixable != nil {
		w.add(`f.fixable = ?`, boolInt(*f.Fixable))
	}
	w.addIf(f.RegistryID != 0, `f.image_id IN (SELECT image_id FROM image_refs WHERE registry_id = ?)`, f.RegistryID)
	w.addIf(f.Repository != "", `f.image_id IN (SELECT image_id FROM image_refs WHERE repository = ?)`, f.Repository)
	w.addIf(f.ImageID != 0, `f.image_id = ?`, f.ImageID)
	dir, cmp := "ASC", ">"
	if spec.desc {
		dir, cmp = "DESC", "<"
	}
	if c != nil {
		var v any = c.Str
		if spec.numeric {
			v = c.Num
		}
		w.add(fmt.Sprintf(`(%s %s ? OR (%s = ? AND f.id %s ?))`, spec.column, cmp, spec.column, cmp), v, v, c.ID)
	}
	limit := p.limit()
	query := `SELECT f.id, f.image_id, i.digest, f.vuln_id, f.aliases, f.package_name, f.package_version, f.ecosystem, f.purl, f.path,
		f.fixed_version, f.severity, f.severity_rank, f.cvss, f.summary, f.first_seen_at, f.fixed_at
		FROM findings f JOIN images i ON i.id = f.image_id` + w.sql() + fmt.Sprintf(` ORDER BY %s %s, f.id %s LIMIT ?`, spec.column, dir, dir)
	args := append(w.args, limit+1)

	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing findings: %w", err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var (
			x       Finding
			aliases string
			first   int64
			fixed   sql.NullInt64
		)
		if err := rows.Scan(&x.ID, &x.ImageID, &x.ImageDigest, &x.VulnID, &aliases, &x.PackageName, &x.PackageVersion, &x.Ecosystem, &x.PURL, &x.Path,
			&x.FixedVersion, &x.Severity, &x.SeverityRank, &x.CVSS, &x.Summary, &first, &fixed); err != nil {
			return nil, "", fmt.Errorf("listing findings: %w", err)
		}
		if err := json.Unmarshal([]byte(aliases), &x.Aliases); err != nil {
			return nil, "", fmt.Errorf("reading aliases of finding %d: %w", x.ID, err)
		}
		x.FirstSeenAt, x.FixedAt = fromMS(first), fromNullMS(fixed)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing findings: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		c := cursor{Sort: sortName, ID: last.ID}
		switch spec.column {
		case "f.severity_rank":
			c.Num = int64(last.SeverityRank)
		case "f.first_seen_at":
			c.Num = ms(last.FirstSeenAt)
		case "f.package_name":
			c.Str = last.PackageName
		case "f.vuln_id":
			c.Str = last.VulnID
		}
		next = c.encode()
	}
	return out, next, nil
}
