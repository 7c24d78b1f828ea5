package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Bounds of text from a cluster: Kubernetes' own limits where it has
// them (object names are DNS subdomains of at most 253 bytes), generous
// ones elsewhere, small enough that the unique indexes over them stay
// within PostgreSQL's index row size.
const (
	maxObjectName = 253
	maxKind       = 100
	maxImage      = 1024
	maxDigest     = 200
	maxShortText  = 1000
	maxLongText   = 4000
)

const clusterColumns = `id, name, source, context, server, created_at, updated_at, status, last_error, synced_at, version,
	namespace_count, workload_count, pod_count`

func scanCluster(row interface{ Scan(...any) error }) (*Cluster, error) {
	var (
		c                Cluster
		created, updated int64
		synced           sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.Name, &c.Source, &c.Context, &c.Server, &created, &updated, &c.Status, &c.Error, &synced, &c.Version,
		&c.Namespaces, &c.Workloads, &c.Pods); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.SyncedAt = fromMS(created), fromMS(updated), fromNullMS(synced)
	return &c, nil
}

// CreateCluster adds a cluster with its sealed kubeconfig (nil for the
// in-cluster source) and fills c's id, times and pending status; a name
// already taken is ErrConflict.
func (s *DB) CreateCluster(ctx context.Context, c *Cluster, sealedConfig []byte) error {
	switch c.Source {
	case ClusterSourceKubeconfig, ClusterSourceInCluster:
	default:
		return fmt.Errorf("creating cluster %q: unknown source %q (want %s or %s)", c.Name, c.Source, ClusterSourceKubeconfig, ClusterSourceInCluster)
	}
	c.Name, c.Context, c.Server = clean(c.Name, maxObjectName), clean(c.Context, maxShortText), clean(c.Server, maxShortText)
	now := fromMS(ms(s.now()))
	err := s.queryRow(ctx, `INSERT INTO clusters (name, source, context, server, config, created_at, updated_at, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		c.Name, c.Source, c.Context, c.Server, sealedConfig, ms(now), ms(now), ClusterPending).Scan(&c.ID)
	if isUnique(err) {
		return fmt.Errorf("creating cluster %q: %w", c.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("creating cluster %q: %w", c.Name, err)
	}
	c.CreatedAt, c.UpdatedAt, c.Status = now, now, ClusterPending
	c.Error, c.Version, c.SyncedAt = "", "", time.Time{}
	c.Namespaces, c.Workloads, c.Pods = 0, 0, 0
	return nil
}

// Cluster returns one cluster by id.
func (s *DB) Cluster(ctx context.Context, id int64) (*Cluster, error) {
	c, err := scanCluster(s.queryRow(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cluster %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading cluster %d: %w", id, err)
	}
	return c, nil
}

// ClusterByName returns one cluster by name.
func (s *DB) ClusterByName(ctx context.Context, name string) (*Cluster, error) {
	c, err := scanCluster(s.queryRow(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE name = ?`, clean(name, maxObjectName)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cluster %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading cluster %q: %w", name, err)
	}
	return c, nil
}

// Clusters lists every cluster by name.
func (s *DB) Clusters(ctx context.Context) ([]Cluster, error) {
	rows, err := s.query(ctx, `SELECT `+clusterColumns+` FROM clusters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing clusters: %w", err)
	}
	defer rows.Close()
	var out []Cluster
	for rows.Next() {
		c, err := scanCluster(rows)
		if err != nil {
			return nil, fmt.Errorf("listing clusters: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing clusters: %w", err)
	}
	return out, nil
}

// ClusterConfig returns a cluster's sealed kubeconfig; nil for a cluster
// of the in-cluster source.
func (s *DB) ClusterConfig(ctx context.Context, id int64) ([]byte, error) {
	var config []byte
	err := s.queryRow(ctx, `SELECT config FROM clusters WHERE id = ?`, id).Scan(&config)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cluster %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig of cluster %d: %w", id, err)
	}
	return config, nil
}

// DeleteCluster removes a cluster with its namespaces, workloads and
// posture findings; scans it asked for stay, without it.
func (s *DB) DeleteCluster(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `DELETE FROM clusters WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("deleting cluster %d: %w", id, err)
	}
	return affectedOne(res, "cluster", id)
}

// ClaimCluster takes the lease on watching a cluster for owner until
// now+lease. It reports true when the lease was free, ran out, or was
// already owner's (then it is renewed), so of several server replicas one
// watches each cluster. A cluster that does not exist is never claimed.
func (s *DB) ClaimCluster(ctx context.Context, id int64, owner string, lease time.Duration) (bool, error) {
	now := s.now()
	res, err := s.exec(ctx, `UPDATE clusters SET lease_owner = ?, lease_until = ? WHERE id = ? AND (lease_owner = ? OR lease_until < ?)`,
		owner, ms(now.Add(lease)), id, owner, ms(now))
	if err != nil {
		return false, fmt.Errorf("claiming cluster %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claiming cluster %d: %w", id, err)
	}
	return n == 1, nil
}

// ReleaseCluster gives up owner's lease on a cluster, so another replica
// may take it at once; a lease owner no longer holds is left alone.
func (s *DB) ReleaseCluster(ctx context.Context, id int64, owner string) error {
	if _, err := s.exec(ctx, `UPDATE clusters SET lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`, id, owner); err != nil {
		return fmt.Errorf("releasing cluster %d: %w", id, err)
	}
	return nil
}

// ClusterStatus is how a connection to a cluster went.
type ClusterStatus struct {
	Status  string
	Error   string
	Version string
	// SyncedAt, when not zero, replaces the time of the last inventory.
	SyncedAt time.Time
}

// RecordClusterStatus stores how the last connection to a cluster went.
func (s *DB) RecordClusterStatus(ctx context.Context, id int64, st ClusterStatus) error {
	switch st.Status {
	case ClusterPending, ClusterConnected, ClusterError:
	default:
		return fmt.Errorf("recording status of cluster %d: unknown status %q", id, st.Status)
	}
	res, err := s.exec(ctx, `UPDATE clusters SET status = ?, last_error = ?, version = ?, synced_at = COALESCE(?, synced_at) WHERE id = ?`,
		st.Status, clean(st.Error, maxLongText), clean(st.Version, maxKind), msOrNull(st.SyncedAt), id)
	if err != nil {
		return fmt.Errorf("recording status of cluster %d: %w", id, err)
	}
	return affectedOne(res, "cluster", id)
}
