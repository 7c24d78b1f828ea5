package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// VulnerableWorkloadFilter selects running workloads by the open findings
// of their images; zero fields select everything.
type VulnerableWorkloadFilter struct {
	ClusterID int64
	Namespace string
	// MinSeverity keeps workloads running an image with an open finding
	// at least this severe.
	MinSeverity model.Severity
	// Fixable counts only findings with a fixed version.
	Fixable bool
	// Vulnerability counts only findings of this id or alias.
	Vulnerability string
	// Exposed keeps workloads reachable from outside their cluster.
	Exposed bool
}

// VulnerableImage is an image a workload runs in one of its containers,
// with its open findings counted by severity. Only findings the filter's
// Fixable and Vulnerability allow are counted.
type VulnerableImage struct {
	Container string
	Image     string
	Digest    string
	ImageID   int64
	Critical  int
	High      int
	Medium    int
	Low       int
	Unknown   int
	Fixable   int
}

// VulnerableWorkload is a running workload with the images that make it
// vulnerable. Its Pods are not read.
type VulnerableWorkload struct {
	Workload Workload
	Images   []VulnerableImage
}

// VulnerableWorkloads answers which running workloads carry which
// vulnerabilities, newest workload first, one page at a time: a workload
// is listed when one of its images has an open finding at least
// MinSeverity (fixable, of the vulnerability, when asked), and with it
// those of its images that do.
func (s *DB) VulnerableWorkloads(ctx context.Context, f VulnerableWorkloadFilter, p Page) ([]VulnerableWorkload, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	// The findings that count, as x.
	counted := []string{`x.fixed_at IS NULL`}
	var countedArgs []any
	if f.Fixable {
		counted = append(counted, `x.fixable = 1`)
	}
	if f.Vulnerability != "" {
		counted = append(counted, `(x.vuln_id = ? OR x.id IN (SELECT finding_id FROM finding_aliases WHERE alias = ?))`)
		countedArgs = append(countedArgs, f.Vulnerability, f.Vulnerability)
	}
	minRank := f.MinSeverity.Rank()

	var w conditions
	w.addIf(f.ClusterID != 0, `w.cluster_id = ?`, f.ClusterID)
	w.addIf(f.Namespace != "", `w.namespace = ?`, f.Namespace)
	w.addIf(f.Exposed, `w.exposure <> '[]'`)
	if c != nil {
		w.add(`w.id < ?`, c.ID)
	}
	w.add(`EXISTS (SELECT 1 FROM workload_images wi JOIN images i ON i.digest = wi.digest JOIN findings x ON x.image_id = i.id
		WHERE wi.workload_id = w.id AND wi.digest <> '' AND x.severity_rank >= ? AND `+strings.Join(counted, ` AND `)+`)`,
		append([]any{minRank}, countedArgs...)...)
	limit := p.limit()
	rows, err := s.query(ctx, `SELECT `+workloadColumns+` FROM workloads w JOIN clusters c ON c.id = w.cluster_id`+w.sql()+
		` ORDER BY w.id DESC LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("listing vulnerable workloads: %w", err)
	}
	defer rows.Close()
	var out []VulnerableWorkload
	for rows.Next() {
		w, err := scanWorkload(rows, false)
		if err != nil {
			return nil, "", fmt.Errorf("listing vulnerable workloads: %w", err)
		}
		out = append(out, VulnerableWorkload{Workload: *w})
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing vulnerable workloads: %w", err)
	}
	// Its connection is free for the images' query.
	rows.Close()
	out, next := pageByID(out, limit, func(x VulnerableWorkload) int64 { return x.Workload.ID })
	if err := s.attachVulnerableImages(ctx, out, counted, countedArgs, minRank); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// attachVulnerableImages reads the images of the workloads whose counted
// findings reach minRank, with those findings counted.
func (s *DB) attachVulnerableImages(ctx context.Context, ws []VulnerableWorkload, counted []string, countedArgs []any, minRank int) error {
	if len(ws) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(ws))
	args := make([]any, 0, len(ws)+len(countedArgs)+1)
	for i, w := range ws {
		idx[w.Workload.ID] = i
		args = append(args, w.Workload.ID)
	}
	args = append(append(args, countedArgs...), minRank)
	count := func(ranks ...model.Severity) string {
		in := make([]string, len(ranks))
		for i, r := range ranks {
			in[i] = fmt.Sprint(r.Rank())
		}
		return `COUNT(CASE WHEN x.severity_rank IN (` + strings.Join(in, ", ") + `) THEN 1 END)`
	}
	rows, err := s.query(ctx, `SELECT wi.workload_id, wi.container, wi.image, wi.digest, i.id, `+
		count(model.SeverityCritical)+`, `+count(model.SeverityHigh)+`, `+count(model.SeverityMedium)+`, `+
		count(model.SeverityLow, model.SeverityNone)+`, `+count(model.SeverityUnknown)+`, COUNT(CASE WHEN x.fixable = 1 THEN 1 END)
		FROM workload_images wi JOIN images i ON i.digest = wi.digest JOIN findings x ON x.image_id = i.id
		WHERE wi.workload_id IN (`+placeholders(len(ws))+`) AND wi.digest <> '' AND `+strings.Join(counted, ` AND `)+`
		GROUP BY wi.workload_id, wi.container, wi.image, wi.digest, i.id
		HAVING MAX(x.severity_rank) >= ?
		ORDER BY wi.workload_id, wi.container, wi.image, wi.digest`, args...)
	if err != nil {
		return fmt.Errorf("reading vulnerable images of workloads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var im VulnerableImage
		if err := rows.Scan(&id, &im.Container, &im.Image, &im.Digest, &im.ImageID,
			&im.Critical, &im.High, &im.Medium, &im.Low, &im.Unknown, &im.Fixable); err != nil {
			return fmt.Errorf("reading vulnerable images of workloads: %w", err)
		}
		w := &ws[idx[id]]
		w.Images = append(w.Images, im)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading vulnerable images of workloads: %w", err)
	}
	return nil
}
