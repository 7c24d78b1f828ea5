package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulwarkhq/bulwark/internal/k8s"
	"github.com/bulwarkhq/bulwark/internal/registry"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// ScanReason marks scans queued because an image runs in a cluster.
const ScanReason = "running in cluster"

// sync stores the connector's current view of the cluster: inventory,
// posture findings, and scans for running images never scanned.
func (m *Manager) sync(ctx context.Context, c *store.Cluster, conn *k8s.Connector, version string) error {
	start := time.Now()
	inv := conn.Snapshot()
	if err := m.o.Store.ReplaceInventory(ctx, c.ID, storeInventory(inv), start); err != nil {
		return fmt.Errorf("storing the inventory: %w", err)
	}
	if m.o.Engine != nil {
		evalStart := time.Now()
		findings, err := m.o.Engine.Evaluate(ctx, conn.PostureInput())
		if err != nil {
			// One broken check (a user's, most likely) must not hide the
			// others' findings: they are stored and the error logged.
			m.log.Warn("posture checks failed on some objects", "cluster", c.Name, "err", err)
		}
		m.m.postureDuration.Observe(time.Since(evalStart).Seconds())
		opened, resolved, err := m.o.Store.ReplacePostureFindings(ctx, c.ID, storeFindings(findings), start)
		if err != nil {
			return fmt.Errorf("storing posture findings: %w", err)
		}
		if opened+resolved > 0 {
			m.log.Info("posture changed", "cluster", c.Name, "opened", opened, "resolved", resolved)
		}
	}
	queued, err := m.queueUnscanned(ctx, c, inv)
	if err != nil {
		return err
	}
	if queued > 0 {
		m.o.Notify()
	}
	m.m.syncs.WithLabelValues("succeeded").Inc()
	m.m.syncDuration.Observe(time.Since(start).Seconds())
	m.status(ctx, c.ID, store.ClusterStatus{Status: store.ClusterConnected, Version: version, SyncedAt: start})
	return nil
}

// running is one image digest running in a cluster, with what is needed to
// pull it.
type running struct {
	ref         string
	host, repo  string
	tag         string
	namespace   string
	pullSecrets []string
}

// queueUnscanned records every running image as seen and queues a pull
// scan for each digest never scanned, at most once per Requeue per digest.
func (m *Manager) queueUnscanned(ctx context.Context, c *store.Cluster, inv k8s.Inventory) (int, error) {
	byDigest := map[string]running{}
	var digests []string
	for _, w := range inv.Workloads {
		for _, p := range w.Pods {
			for _, ctr := range p.Containers {
				if ctr.PullReference == "" || ctr.ImageDigest == "" {
					continue
				}
				if _, ok := byDigest[ctr.ImageDigest]; ok {
					continue
				}
				ref, err := name.NewDigest(ctr.PullReference)
				if err != nil {
					continue
				}
				r := running{ref: ctr.PullReference, host: ref.RegistryStr(), repo: ref.RepositoryStr(), namespace: w.Namespace}
				if t, err := name.NewTag(ctr.Image); err == nil && t.Context().Name() == ref.Context().Name() {
					r.tag = t.TagStr()
				}
				for _, s := range p.PullSecrets {
					r.pullSecrets = append(r.pullSecrets, w.Namespace+"/"+s)
				}
				byDigest[ctr.ImageDigest] = r
				digests = append(digests, ctr.ImageDigest)
			}
		}
	}
	slices.Sort(digests)

	now := time.Now()
	var due []string
	m.mu.Lock()
	for _, d := range digests {
		if at, ok := m.enqueued[d]; !ok || now.Sub(at) >= m.o.Requeue {
			due = append(due, d)
		}
	}
	for d, at := range m.enqueued {
		if now.Sub(at) >= m.o.Requeue {
			delete(m.enqueued, d)
		}
	}
	m.mu.Unlock()
	if len(due) == 0 {
		return 0, nil
	}
	registries, err := m.registryHosts(ctx)
	if err != nil {
		return 0, err
	}
	// Seeing a running image keeps it (and its findings) from being pruned
	// as an image no registry lists any more.
	for _, d := range due {
		r := byDigest[d]
		if _, err := m.o.Store.SeeImage(ctx, d, store.ImageRef{RegistryID: registries[r.host], Host: r.host, Repository: r.repo, Tag: r.tag}, now); err != nil {
			return 0, fmt.Errorf("recording running image %s: %w", r.ref, err)
		}
	}
	unscanned, err := m.o.Store.UnscannedDigests(ctx, due)
	if err != nil {
		return 0, fmt.Errorf("finding unscanned images: %w", err)
	}
	queued := 0
	for _, d := range unscanned {
		r := byDigest[d]
		ok, err := m.o.Store.Enqueue(ctx, &store.Scan{Kind: store.ScanPull, Reason: ScanReason, RegistryID: registries[r.host],
			Reference: r.ref, ClusterID: c.ID, PullSecrets: r.pullSecrets})
		if err != nil {
			return queued, fmt.Errorf("queueing a scan of %s: %w", r.ref, err)
		}
		if ok {
			queued++
			m.log.Info("queued a scan of a running image", "cluster", c.Name, "reference", r.ref)
		}
	}
	m.mu.Lock()
	for _, d := range due {
		m.enqueued[d] = now
	}
	m.mu.Unlock()
	m.m.queued.Add(float64(queued))
	return queued, nil
}

// registryHosts maps the host of every registered registry to its id, so
// a running image from a registered registry is pulled with its
// credentials.
func (m *Manager) registryHosts(ctx context.Context) (map[string]int64, error) {
	regs, err := m.o.Store.Registries(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing registries: %w", err)
	}
	out := map[string]int64{}
	for _, r := range regs {
		if host, err := registry.HostOf(registry.Type(r.Type), r.URL); err == nil {
			out[host] = r.ID
		}
	}
	return out, nil
}
