package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/bulwarkhq/bulwark/internal/k8s"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// errLeaseLost stops a connection whose cluster another replica took, or
// that was removed.
var errLeaseLost = errors.New("cluster lease lost or cluster removed")

// run keeps one cluster connected and synced until ctx is done or the
// lease is lost. Connection failures are recorded on the cluster and
// retried with backoff.
func (m *Manager) run(ctx context.Context, c store.Cluster) {
	log := m.log.With("cluster", c.Name)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go m.renew(ctx, cancel, c.ID)

	backoff := time.Second
	for ctx.Err() == nil {
		err := m.connect(ctx, &c)
		if ctx.Err() != nil {
			if errors.Is(context.Cause(ctx), errLeaseLost) {
				log.Info("cluster connection stopped", "reason", context.Cause(ctx))
			}
			return
		}
		log.Warn("cluster connection failed", "err", err, "retry_in", backoff)
		m.m.syncs.WithLabelValues("failed").Inc()
		m.status(ctx, c.ID, store.ClusterStatus{Status: store.ClusterError, Error: err.Error()})
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Minute)
	}
}

// renew extends the cluster's lease every third of its length; when the
// lease is lost (or the cluster removed) it cancels the connection.
func (m *Manager) renew(ctx context.Context, cancel context.CancelCauseFunc, id int64) {
	t := time.NewTicker(max(m.o.Lease/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := m.o.Store.ClaimCluster(ctx, id, m.o.Owner, m.o.Lease)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("renewing cluster lease", "cluster_id", id, "err", err)
			}
			continue
		}
		if !ok {
			cancel(errLeaseLost)
			return
		}
	}
}

// connect starts the connector and syncs on every change until ctx is
// done or the connector fails to start.
func (m *Manager) connect(ctx context.Context, c *store.Cluster) error {
	cfg, err := m.restConfig(ctx, c)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	// Asking for the version fails fast on an unreachable server or a
	// rejected token, where the informers would retry until SyncTimeout.
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("reaching the API server: %w", err)
	}
	version := v.GitVersion
	conn, err := k8s.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Stop()
	m.mu.Lock()
	m.clients[c.ID] = client
	m.conns[c.ID] = conn
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c.ID)
		m.mu.Unlock()
	}()
	m.log.Info("cluster connected", "cluster", c.Name, "version", version)

	resync := time.NewTicker(m.o.Resync)
	defer resync.Stop()
	for {
		// The informers' initial listing signals a change, so the first
		// sync follows the connection at once.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-conn.Changes():
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(m.o.Debounce):
			}
		case <-resync.C:
		}
		if err := m.sync(ctx, c, conn, version); err != nil && ctx.Err() == nil {
			m.m.syncs.WithLabelValues("failed").Inc()
			m.log.Warn("cluster sync failed", "cluster", c.Name, "err", err)
			m.status(ctx, c.ID, store.ClusterStatus{Status: store.ClusterError, Error: err.Error(), Version: version})
		}
	}
}

func (m *Manager) status(ctx context.Context, id int64, st store.ClusterStatus) {
	if err := m.o.Store.RecordClusterStatus(context.WithoutCancel(ctx), id, st); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("recording cluster status", "cluster_id", id, "err", err)
	}
}
