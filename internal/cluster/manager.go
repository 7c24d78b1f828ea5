// Package cluster runs the server's connections to the Kubernetes clusters
// registered with it. For each cluster one replica holds a lease and runs
// the agentless connector (internal/k8s); on every change it stores the
// inventory, evaluates the posture checks (internal/posture) and queues
// running images that were never scanned, with the image pull secrets the
// pods name. It also validates and flattens kubeconfigs.
//
// It does not scan (internal/scheduler does) and does not judge (the
// posture engine does).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bulwarkhq/bulwark/internal/k8s"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Options configure a Manager.
type Options struct {
	Store *store.DB
	// Box opens sealed kubeconfigs; required unless every cluster is
	// in-cluster.
	Box *secretbox.Box
	// Engine evaluates posture; nil skips posture.
	Engine *posture.Engine
	// Owner names this replica in cluster leases.
	Owner string
	// Lease is how long a cluster stays this replica's without renewal;
	// default 30s.
	Lease time.Duration
	// Tick is how often unclaimed clusters are looked for; default 5s.
	Tick time.Duration
	// Debounce is how long to wait after a change before a sync, so a
	// burst of changes costs one; default 1s.
	Debounce time.Duration
	// Resync is how often a cluster is synced without changes; default
	// 10m.
	Resync time.Duration
	// Requeue is how long a running image whose scan was queued is left
	// alone before it is queued again if still unscanned; default 1h.
	Requeue time.Duration
	// InClusterConfig returns the configuration for in-cluster clusters;
	// default rest.InClusterConfig.
	InClusterConfig func() (*rest.Config, error)
	// Notify is called after scans were queued (the scheduler's Notify).
	Notify func()
	Logger *slog.Logger
	// Registerer receives the manager's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Manager connects to registered clusters. Create it with New.
type Manager struct {
	o   Options
	log *slog.Logger
	m   metrics

	mu       sync.Mutex
	running  map[int64]context.CancelFunc
	clients  map[int64]kubernetes.Interface // for reading pull secrets
	conns    map[int64]*k8s.Connector       // the clusters this replica watches
	enqueued map[string]time.Time           // digest → when its scan was queued
	wg       sync.WaitGroup
}

// New returns a Manager.
func New(o Options) (*Manager, error) {
	if o.Store == nil {
		return nil, errors.New("cluster: no store")
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Tick <= 0 {
		o.Tick = 5 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.Resync <= 0 {
		o.Resync = 10 * time.Minute
	}
	if o.Requeue <= 0 {
		o.Requeue = time.Hour
	}
	if o.InClusterConfig == nil {
		o.InClusterConfig = rest.InClusterConfig
	}
	if o.Notify == nil {
		o.Notify = func() {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{o: o, log: o.Logger.With("component", "cluster"), running: map[int64]context.CancelFunc{},
		clients: map[int64]kubernetes.Interface{}, conns: map[int64]*k8s.Connector{}, enqueued: map[string]time.Time{}}
	if err := m.m.register(o.Registerer); err != nil {
		return nil, err
	}
	return m, nil
}

// Run connects to every registered cluster this replica can claim, and to
// clusters added later, until ctx is done; it returns when every
// connection has stopped.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Tick)
	defer t.Stop()
	for {
		m.claim(ctx)
		select {
		case <-ctx.Done():
			m.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// claim starts a connection for every cluster whose lease this replica
// gets.
func (m *Manager) claim(ctx context.Context) {
	clusters, err := m.o.Store.Clusters(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("listing clusters", "err", err)
		}
		return
	}
	for _, c := range clusters {
		m.mu.Lock()
		_, busy := m.running[c.ID]
		m.mu.Unlock()
		if busy {
			continue
		}
		ok, err := m.o.Store.ClaimCluster(ctx, c.ID, m.o.Owner, m.o.Lease)
		if err != nil {
			m.log.Warn("claiming cluster", "cluster", c.Name, "err", err)
			continue
		}
		if !ok {
			continue
		}
		runCtx, cancel := context.WithCancel(ctx)
		m.mu.Lock()
		m.running[c.ID] = cancel
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer func() {
				cancel()
				m.mu.Lock()
				delete(m.running, c.ID)
				delete(m.clients, c.ID)
				delete(m.conns, c.ID)
				m.mu.Unlock()
				_ = m.o.Store.ReleaseCluster(context.WithoutCancel(ctx), c.ID, m.o.Owner)
			}()
			m.run(runCtx, c)
		}()
	}
}

// ErrNotWatched is returned by NamespaceLabels for a cluster this replica
// does not watch.
var ErrNotWatched = errors.New("cluster not watched by this replica")

// NamespaceLabels returns a namespace's labels from the live view of a
// cluster this replica watches (a watch keeps it within moments of the
// API server); ErrNotWatched otherwise, and store.ErrNotFound for a
// namespace that does not exist.
func (m *Manager) NamespaceLabels(clusterID int64, namespace string) (map[string]string, error) {
	m.mu.Lock()
	conn := m.conns[clusterID]
	m.mu.Unlock()
	if conn == nil {
		return nil, ErrNotWatched
	}
	labels, ok := conn.NamespaceLabels(namespace)
	if !ok {
		return nil, fmt.Errorf("namespace %s: %w", namespace, store.ErrNotFound)
	}
	return labels, nil
}

// restConfig returns the client configuration of a registered cluster.
func (m *Manager) restConfig(ctx context.Context, c *store.Cluster) (*rest.Config, error) {
	if c.Source == store.ClusterSourceInCluster {
		cfg, err := m.o.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
		return cfg, nil
	}
	sealed, err := m.o.Store.ClusterConfig(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if m.o.Box == nil {
		return nil, errors.New("no secret key to open the cluster's kubeconfig")
	}
	data, err := m.o.Box.Open(sealed, SealContext(c.Name))
	if err != nil {
		return nil, fmt.Errorf("opening the kubeconfig of cluster %s: %w", c.Name, err)
	}
	// No client timeout: it would cut the informers' long-lived watches.
	return RESTConfig(data)
}

// SealContext is the associated data a cluster's kubeconfig is sealed
// with: a sealed kubeconfig moved to another cluster's row does not open.
func SealContext(clusterName string) []byte { return []byte("cluster:" + clusterName) }
