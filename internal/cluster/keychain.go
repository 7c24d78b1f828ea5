package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/client-go/kubernetes"

	"github.com/bulwarkhq/bulwark/internal/k8s"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Keychain returns the credentials for pulling a running image a cluster
// sync queued: the image pull secrets its pod named, read from the
// cluster now and kept only in memory. Any replica can call it: a replica
// not connected to the cluster reads the secrets with a client of its own.
// Secrets that cannot be read are logged and skipped, so the pull is tried
// with what remains (or anonymously).
func (m *Manager) Keychain(ctx context.Context, j *store.Scan) (authn.Keychain, error) {
	if j.ClusterID == 0 || len(j.PullSecrets) == 0 {
		return authn.NewMultiKeychain(), nil
	}
	client, err := m.client(ctx, j.ClusterID)
	if err != nil {
		return nil, err
	}
	byNamespace := map[string][]string{}
	var order []string
	for _, ref := range j.PullSecrets {
		ns, n, ok := strings.Cut(ref, "/")
		if !ok || ns == "" || n == "" {
			continue
		}
		if _, seen := byNamespace[ns]; !seen {
			order = append(order, ns)
		}
		byNamespace[ns] = append(byNamespace[ns], n)
	}
	var chain k8s.PullKeychain
	for _, ns := range order {
		creds, err := k8s.ReadPullSecrets(ctx, client, ns, byNamespace[ns])
		if err != nil {
			m.log.Warn("some image pull secrets could not be used", "cluster_id", j.ClusterID, "scan", j.ID, "err", err)
		}
		chain = append(chain, creds...)
	}
	return chain, nil
}

// client returns a clientset for a cluster: the connected one's, or a new
// one from the stored configuration.
func (m *Manager) client(ctx context.Context, id int64) (kubernetes.Interface, error) {
	m.mu.Lock()
	c := m.clients[id]
	m.mu.Unlock()
	if c != nil {
		return c, nil
	}
	cl, err := m.o.Store.Cluster(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("cluster %d was removed", id)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := m.restConfig(ctx, cl)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a client for cluster %s: %w", cl.Name, err)
	}
	m.mu.Lock()
	m.clients[id] = client
	m.mu.Unlock()
	return client, nil
}
