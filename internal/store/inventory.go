package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// workloadKey names a workload within its cluster.
type workloadKey struct{ namespace, kind, name string }

// storedWorkload is a workload cleaned and encoded as its row.
type storedWorkload struct {
	key            workloadKey
	serviceAccount string
	exposure       string
	hostNetwork    int
	hostPID        int
	hostIPC        int
	pods           string
	// hash covers every column an inventory sets, so an unchanged
	// workload is not rewritten.
	hash   string
	images []workloadImage
}

// workloadImage is an image a workload runs, in one of its containers.
type workloadImage struct{ container, kind, image, digest string }

func cleanContainer(c WorkloadContainer) WorkloadContainer {
	c.Name, c.Kind = clean(c.Name, maxObjectName), clean(c.Kind, maxKind)
	c.Image, c.Digest = clean(c.Image, maxImage), clean(c.Digest, maxDigest)
	if c.Capabilities != nil {
		caps := make([]string, len(c.Capabilities))
		for i, cp := range c.Capabilities {
			caps[i] = clean(cp, maxKind)
		}
		c.Capabilities = caps
	}
	return c
}

// storeWorkload cleans w's text (names and images come from the
// cluster's API, written by whoever may create pods) and encodes it,
// without changing the caller's slices.
func storeWorkload(w Workload) (storedWorkload, error) {
	sw := storedWorkload{
		key:            workloadKey{clean(w.Namespace, maxObjectName), clean(w.Kind, maxKind), clean(w.Name, maxObjectName)},
		serviceAccount: clean(w.ServiceAccount, maxObjectName),
		hostNetwork:    boolInt(w.HostNetwork),
		hostPID:        boolInt(w.HostPID),
		hostIPC:        boolInt(w.HostIPC),
	}
	exposure := make([]string, len(w.Exposure))
	for i, e := range w.Exposure {
		exposure[i] = clean(e, maxShortText)
	}
	seen := map[workloadImage]bool{}
	pods := make([]WorkloadPod, len(w.Pods))
	for i, p := range w.Pods {
		cp := WorkloadPod{Name: clean(p.Name, maxObjectName), Node: clean(p.Node, maxObjectName), Phase: clean(p.Phase, maxKind),
			Containers: make([]WorkloadContainer, len(p.Containers))}
		for j, c := range p.Containers {
			c = cleanContainer(c)
			cp.Containers[j] = c
			im := workloadImage{c.Name, c.Kind, c.Image, c.Digest}
			if !seen[im] {
				seen[im] = true
				sw.images = append(sw.images, im)
			}
		}
		pods[i] = cp
	}
	b, err := json.Marshal(exposure)
	if err != nil {
		return sw, fmt.Errorf("encoding exposure of %s %s/%s: %w", sw.key.kind, sw.key.namespace, sw.key.name, err)
	}
	sw.exposure = string(b)
	if b, err = json.Marshal(pods); err != nil {
		return sw, fmt.Errorf("encoding pods of %s %s/%s: %w", sw.key.kind, sw.key.namespace, sw.key.name, err)
	}
	sw.pods = string(b)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d%d%d\x00%s", sw.serviceAccount, sw.exposure, sw.hostNetwork, sw.hostPID, sw.hostIPC, sw.pods)
	sw.hash = hex.EncodeToString(h.Sum(nil))
	return sw, nil
}

// storedNamespace is a namespace cleaned and encoded as its row.
type storedNamespace struct{ name, labels string }

func storeNamespace(n ClusterNamespace) (storedNamespace, error) {
	labels := make(map[string]string, len(n.Labels))
	for k, v := range n.Labels {
		labels[clean(k, maxShortText)] = clean(v, maxShortText)
	}
	name := clean(n.Name, maxObjectName)
	b, err := json.Marshal(labels)
	if err != nil {
		return storedNamespace{}, fmt.Errorf("encoding labels of namespace %s: %w", name, err)
	}
	return storedNamespace{name, string(b)}, nil
}

// ReplaceInventory makes the stored inventory of a cluster equal inv in
// one transaction: namespaces and workloads are added or updated (a
// workload keeps its first-seen time; an unchanged one is not rewritten),
// those no longer present are deleted with their images, and the
// cluster's counts and synced-at time are set. Of several namespaces or
// workloads with the same name the first is kept.
func (s *DB) ReplaceInventory(ctx context.Context, clusterID int64, inv ClusterInventory, at time.Time) error {
	var namespaces []storedNamespace
	seenNS := map[string]bool{}
	for _, n := range inv.Namespaces {
		sn, err := storeNamespace(n)
		if err != nil {
			return err
		}
		if !seenNS[sn.name] {
			seenNS[sn.name] = true
			namespaces = append(namespaces, sn)
		}
	}
	var workloads []storedWorkload
	seenW := map[workloadKey]bool{}
	pods := 0
	for _, w := range inv.Workloads {
		sw, err := storeWorkload(w)
		if err != nil {
			return err
		}
		if !seenW[sw.key] {
			seenW[sw.key] = true
			workloads = append(workloads, sw)
			pods += len(w.Pods)
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		// First, so that in PostgreSQL the cluster's row lock orders
		// concurrent replacements of one inventory.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE clusters SET namespace_count = ?, workload_count = ?, pod_count = ?, synced_at = ? WHERE id = ?`),
			len(namespaces), len(workloads), pods, ms(at), clusterID)
		if err != nil {
			return fmt.Errorf("recording inventory of cluster %d: %w", clusterID, err)
		}
		if err := affectedOne(res, "cluster", clusterID); err != nil {
			return err
		}
		if err := s.replaceNamespaces(ctx, tx, clusterID, namespaces); err != nil {
			return err
		}
		return s.replaceWorkloads(ctx, tx, clusterID, workloads, at)
	})
}

func (s *DB) replaceNamespaces(ctx context.Context, tx *sql.Tx, clusterID int64, namespaces []storedNamespace) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT name, labels FROM cluster_namespaces WHERE cluster_id = ?`), clusterID)
	if err != nil {
		return fmt.Errorf("reading namespaces of cluster %d: %w", clusterID, err)
	}
	existing := map[string]string{}
	for rows.Next() {
		var name, labels string
		if err := rows.Scan(&name, &labels); err != nil {
			rows.Close()
			return fmt.Errorf("reading namespaces of cluster %d: %w", clusterID, err)
		}
		existing[name] = labels
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading namespaces of cluster %d: %w", clusterID, err)
	}
	var changed []storedNamespace
	for _, n := range namespaces {
		labels, ok := existing[n.name]
		delete(existing, n.name)
		if !ok || labels != n.labels {
			changed = append(changed, n)
		}
	}
	err = inBatches(changed, 3, func(batch []storedNamespace) error {
		args := make([]any, 0, 3*len(batch))
		for _, n := range batch {
			args = append(args, clusterID, n.name, n.labels)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO cluster_namespaces (cluster_id, name, labels) VALUES `+valueRows(len(batch), 3)+`
			ON CONFLICT (cluster_id, name) DO UPDATE SET labels = excluded.labels`), args...)
		if err != nil {
			return fmt.Errorf("storing namespaces of cluster %d: %w", clusterID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	gone := make([]any, 0, len(existing))
	for name := range existing {
		gone = append(gone, name)
	}
	return inBatches(gone, 1, func(batch []any) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM cluster_namespaces WHERE cluster_id = ? AND name IN (`+placeholders(len(batch))+`)`),
			append([]any{clusterID}, batch...)...)
		if err != nil {
			return fmt.Errorf("deleting namespaces of cluster %d: %w", clusterID, err)
		}
		return nil
	})
}

func (s *DB) replaceWorkloads(ctx context.Context, tx *sql.Tx, clusterID int64, workloads []storedWorkload, at time.Time) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, namespace, kind, name, content_hash FROM workloads WHERE cluster_id = ?`), clusterID)
	if err != nil {
		return fmt.Errorf("reading workloads of cluster %d: %w", clusterID, err)
	}
	type old struct {
		id   int64
		hash string
	}
	existing := map[workloadKey]old{}
	for rows.Next() {
		var k workloadKey
		var o old
		if err := rows.Scan(&o.id, &k.namespace, &k.kind, &k.name, &o.hash); err != nil {
			rows.Close()
			return fmt.Errorf("reading workloads of cluster %d: %w", clusterID, err)
		}
		existing[k] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading workloads of cluster %d: %w", clusterID, err)
	}

	var changed []storedWorkload
	// Workloads rewritten and removed: their images go, the changed ones'
	// to be stored again.
	var stale []int64
	for _, w := range workloads {
		o, ok := existing[w.key]
		delete(existing, w.key)
		if ok && o.hash == w.hash {
			continue
		}
		if ok {
			stale = append(stale, o.id)
		}
		changed = append(changed, w)
	}
	var gone []int64
	for _, o := range existing {
		gone = append(gone, o.id)
	}
	err = inBatches(gone, 1, func(batch []int64) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM workloads WHERE id IN (`+placeholders(len(batch))+`)`), int64Args(batch)...); err != nil {
			return fmt.Errorf("deleting workloads of cluster %d: %w", clusterID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = inBatches(stale, 1, func(batch []int64) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM workload_images WHERE workload_id IN (`+placeholders(len(batch))+`)`), int64Args(batch)...); err != nil {
			return fmt.Errorf("deleting images of workloads of cluster %d: %w", clusterID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}

	const width = 13
	var images []storedImage
	err = inBatches(changed, width, func(batch []storedWorkload) error {
		args := make([]any, 0, width*len(batch))
		for _, w := range batch {
			args = append(args, clusterID, w.key.namespace, w.key.kind, w.key.name, w.serviceAccount, w.exposure,
				w.hostNetwork, w.hostPID, w.hostIPC, w.pods, w.hash, ms(at), ms(at))
		}
		rows, err := tx.QueryContext(ctx, s.q(`INSERT INTO workloads (cluster_id, namespace, kind, name, service_account, exposure,
			host_network, host_pid, host_ipc, pods, content_hash, first_seen_at, last_seen_at) VALUES `+valueRows(len(batch), width)+`
			ON CONFLICT (cluster_id, namespace, kind, name) DO UPDATE SET service_account = excluded.service_account, exposure = excluded.exposure,
			host_network = excluded.host_network, host_pid = excluded.host_pid, host_ipc = excluded.host_ipc, pods = excluded.pods,
			content_hash = excluded.content_hash, last_seen_at = excluded.last_seen_at
			RETURNING id, namespace, kind, name`), args...)
		if err != nil {
			return fmt.Errorf("storing workloads of cluster %d: %w", clusterID, err)
		}
		ids := make(map[workloadKey]int64, len(batch))
		for rows.Next() {
			var id int64
			var k workloadKey
			if err := rows.Scan(&id, &k.namespace, &k.kind, &k.name); err != nil {
				rows.Close()
				return fmt.Errorf("storing workloads of cluster %d: %w", clusterID, err)
			}
			ids[k] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("storing workloads of cluster %d: %w", clusterID, err)
		}
		for _, w := range batch {
			id, ok := ids[w.key]
			if !ok {
				return fmt.Errorf("storing workloads of cluster %d: no id returned for %s %s/%s", clusterID, w.key.kind, w.key.namespace, w.key.name)
			}
			for _, im := range w.images {
				images = append(images, storedImage{id, im})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.insertWorkloadImages(ctx, tx, images); err != nil {
		return fmt.Errorf("storing images of workloads of cluster %d: %w", clusterID, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE workloads SET last_seen_at = ? WHERE cluster_id = ? AND last_seen_at <> ?`), ms(at), clusterID, ms(at)); err != nil {
		return fmt.Errorf("recording workloads of cluster %d as seen: %w", clusterID, err)
	}
	return nil
}

// storedImage is a row of workload_images.
type storedImage struct {
	workloadID int64
	workloadImage
}

func (s *DB) insertWorkloadImages(ctx context.Context, tx *sql.Tx, images []storedImage) error {
	const width = 5
	return inBatches(images, width, func(batch []storedImage) error {
		args := make([]any, 0, width*len(batch))
		for _, im := range batch {
			args = append(args, im.workloadID, im.container, im.kind, im.image, im.digest)
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO workload_images (workload_id, container, container_kind, image, digest) VALUES `+
			valueRows(len(batch), width)+` ON CONFLICT DO NOTHING`), args...)
		return err
	})
}

// ClusterNamespaces lists a cluster's namespaces by name.
func (s *DB) ClusterNamespaces(ctx context.Context, clusterID int64) ([]ClusterNamespace, error) {
	rows, err := s.query(ctx, `SELECT name, labels FROM cluster_namespaces WHERE cluster_id = ? ORDER BY name`, clusterID)
	if err != nil {
		return nil, fmt.Errorf("listing namespaces of cluster %d: %w", clusterID, err)
	}
	defer rows.Close()
	var out []ClusterNamespace
	for rows.Next() {
		var n ClusterNamespace
		var labels string
		if err := rows.Scan(&n.Name, &labels); err != nil {
			return nil, fmt.Errorf("listing namespaces of cluster %d: %w", clusterID, err)
		}
		if err := json.Unmarshal([]byte(labels), &n.Labels); err != nil {
			return nil, fmt.Errorf("reading labels of namespace %s of cluster %d: %w", n.Name, clusterID, err)
		}
		if len(n.Labels) == 0 {
			n.Labels = nil
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing namespaces of cluster %d: %w", clusterID, err)
	}
	return out, nil
}

// workloadColumns are read with workloads joined to their cluster as c;
// pods, the bulk of a row, are read only when asked for.
const workloadColumns = `w.id, w.cluster_id, c.name, w.namespace, w.kind, w.name, w.service_account, w.exposure,
	w.host_network, w.host_pid, w.host_ipc, w.first_seen_at, w.last_seen_at`

func scanWorkload(row interface{ Scan(...any) error }, withPods bool) (*Workload, error) {
	var (
		w                   Workload
		exposure, pods      string
		network, pid, ipc   int
		firstSeen, lastSeen int64
	)
	dest := []any{&w.ID, &w.ClusterID, &w.Cluster, &w.Namespace, &w.Kind, &w.Name, &w.ServiceAccount, &exposure,
		&network, &pid, &ipc, &firstSeen, &lastSeen}
	if withPods {
		dest = append(dest, &pods)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	w.HostNetwork, w.HostPID, w.HostIPC = network != 0, pid != 0, ipc != 0
	w.FirstSeenAt, w.LastSeenAt = fromMS(firstSeen), fromMS(lastSeen)
	if err := json.Unmarshal([]byte(exposure), &w.Exposure); err != nil {
		return nil, fmt.Errorf("reading exposure of workload %d: %w", w.ID, err)
	}
	if withPods {
		if err := json.Unmarshal([]byte(pods), &w.Pods); err != nil {
			return nil, fmt.Errorf("reading pods of workload %d: %w", w.ID, err)
		}
	}
	return &w, nil
}

// Workload returns one workload with its pods.
func (s *DB) Workload(ctx context.Context, id int64) (*Workload, error) {
	w, err := scanWorkload(s.queryRow(ctx, `SELECT `+workloadColumns+`, w.pods FROM workloads w JOIN clusters c ON c.id = w.cluster_id WHERE w.id = ?`, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("workload %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading workload %d: %w", id, err)
	}
	return w, nil
}

// WorkloadFilter selects workloads; zero fields select everything.
type WorkloadFilter struct {
	ClusterID int64
	Namespace string
	Kind      string
	Name      string
	// Digest keeps workloads running the image of this digest.
	Digest string
	// Exposed keeps workloads reachable from outside their cluster.
	Exposed bool
}

// Workloads lists workloads with their pods, newest first, one page at
// a time.
func (s *DB) Workloads(ctx context.Context, f WorkloadFilter, p Page) ([]Workload, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.ClusterID != 0, `w.cluster_id = ?`, f.ClusterID)
	w.addIf(f.Namespace != "", `w.namespace = ?`, f.Namespace)
	w.addIf(f.Kind != "", `w.kind = ?`, f.Kind)
	w.addIf(f.Name != "", `w.name = ?`, f.Name)
	w.addIf(f.Digest != "", `w.id IN (SELECT workload_id FROM workload_images WHERE digest = ?)`, f.Digest)
	w.addIf(f.Exposed, `w.exposure <> '[]'`)
	if c != nil {
		w.add(`w.id < ?`, c.ID)
	}
	limit := p.limit()
	query := `SELECT ` + workloadColumns + `, w.pods FROM workloads w JOIN clusters c ON c.id = w.cluster_id` + w.sql() + ` ORDER BY w.id DESC LIMIT ?`
	args := append(w.args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing workloads: %w", err)
	}
	defer rows.Close()
	var out []Workload
	for rows.Next() {
		w, err := scanWorkload(rows, true)
		if err != nil {
			return nil, "", fmt.Errorf("listing workloads: %w", err)
		}
		out = append(out, *w)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing workloads: %w", err)
	}
	out, next := pageByID(out, limit, func(x Workload) int64 { return x.ID })
	return out, next, nil
}

// UnscannedDigests returns those of digests no image was scanned for
// yet, in their order, each once; empty digests (unknown to the kubelet)
// are left out.
func (s *DB) UnscannedDigests(ctx context.Context, digests []string) ([]string, error) {
	var unique []any
	seen := map[string]bool{}
	for _, d := range digests {
		if d != "" && !seen[d] {
			seen[d] = true
			unique = append(unique, d)
		}
	}
	scanned := map[string]bool{}
	err := inBatches(unique, 1, func(batch []any) error {
		rows, err := s.query(ctx, `SELECT digest FROM images WHERE scanned_at IS NOT NULL AND digest IN (`+placeholders(len(batch))+`)`, batch...)
		if err != nil {
			return fmt.Errorf("finding scanned images: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				return fmt.Errorf("finding scanned images: %w", err)
			}
			scanned[d] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("finding scanned images: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range unique {
		if !scanned[d.(string)] {
			out = append(out, d.(string))
		}
	}
	return out, nil
}
