// Package k8s is Bulwark's agentless Kubernetes connector. It discovers a
// cluster's workloads with client-go shared informers, read-only (see
// deploy/rbac/connector-clusterrole.yaml), and turns the informers' caches
// into an in-memory inventory snapshot.
//
// Secrets and ConfigMaps are watched through metadata-only informers, so
// their values are never read into memory; every cached object has its
// managedFields stripped to save memory.
package k8s

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// SyncTimeout bounds how long Start waits for the informers' caches to sync.
const SyncTimeout = 2 * time.Minute

// lastAppliedAnnotation holds a full copy of an object applied with
// "kubectl apply" — for a Secret, its data — so it is never cached.
const lastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

var (
	secretsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// Connector watches one cluster. It is safe for concurrent use.
type Connector struct {
	factory     informers.SharedInformerFactory
	metaFactory metadatainformer.SharedInformerFactory
	cancel      context.CancelFunc
	stopOnce    sync.Once

	namespaces   corelisters.NamespaceLister
	pods         corelisters.PodLister
	services     corelisters.ServiceLister
	deployments  appslisters.DeploymentLister
	replicaSets  appslisters.ReplicaSetLister
	statefulSets appslisters.StatefulSetLister
	daemonSets   appslisters.DaemonSetLister
	jobs         batchlisters.JobLister
	cronJobs     batchlisters.CronJobLister
	ingresses    networkinglisters.IngressLister
	secrets      cache.GenericLister // metadata only
	configMaps   cache.GenericLister // metadata only

	nodes               corelisters.NodeLister
	serviceAccounts     corelisters.ServiceAccountLister
	networkPolicies     networkinglisters.NetworkPolicyLister
	roles               rbaclisters.RoleLister
	roleBindings        rbaclisters.RoleBindingLister
	clusterRoles        rbaclisters.ClusterRoleLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister

	// changes holds one pending signal when any watched object changed
	// since it was last drained.
	changes chan struct{}
}

// Start connects to the cluster cfg describes, starts informers for every
// resource the connector reads and waits, at most SyncTimeout, for their
// caches to sync. The informers run until Stop is called or ctx is done.
func Start(ctx context.Context, cfg *rest.Config) (*Connector, error) {
	return start(ctx, cfg, SyncTimeout)
}

func start(ctx context.Context, cfg *rest.Config, syncTimeout time.Duration) (*Connector, error) {
	if cfg == nil {
		return nil, errors.New("k8s: nil rest.Config")
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "bulwark-connector"
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: creating clientset: %w", err)
	}
	metaClient, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("k8s: creating metadata client: %w", err)
	}

	c := &Connector{
		changes:     make(chan struct{}, 1),
		factory:     informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripObject)),
		metaFactory: metadatainformer.NewSharedInformerFactoryWithOptions(metaClient, 0, metadatainformer.WithTransform(stripObject)),
	}
	f := c.factory
	core, apps, batch := f.Core().V1(), f.Apps().V1(), f.Batch().V1()
	c.namespaces = core.Namespaces().Lister()
	c.pods = core.Pods().Lister()
	c.services = core.Services().Lister()
	c.deployments = apps.Deployments().Lister()
	c.replicaSets = apps.ReplicaSets().Lister()
	c.statefulSets = apps.StatefulSets().Lister()
	c.daemonSets = apps.DaemonSets().Lister()
	c.jobs = batch.Jobs().Lister()
	c.cronJobs = batch.CronJobs().Lister()
	c.ingresses = f.Networking().V1().Ingresses().Lister()
	c.nodes = core.Nodes().Lister()
	c.serviceAccounts = core.ServiceAccounts().Lister()
	c.networkPolicies = f.Networking().V1().NetworkPolicies().Lister()
	rbac := f.Rbac().V1()
	c.roles = rbac.Roles().Lister()
	c.roleBindings = rbac.RoleBindings().Lister()
	c.clusterRoles = rbac.ClusterRoles().Lister()
	c.clusterRoleBindings = rbac.ClusterRoleBindings().Lister()

	c.secrets = c.metaFactory.ForResource(secretsGVR).Lister()
	c.configMaps = c.metaFactory.ForResource(configMapsGVR).Lister()

	// Every informer signals a change; the signal is coalesced, so a burst
	// of events costs one snapshot.
	signal := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.signal() },
		UpdateFunc: func(any, any) { c.signal() },
		DeleteFunc: func(any) { c.signal() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		core.Namespaces().Informer(), core.Pods().Informer(), core.Services().Informer(),
		apps.Deployments().Informer(), apps.ReplicaSets().Informer(), apps.StatefulSets().Informer(),
		apps.DaemonSets().Informer(), batch.Jobs().Informer(), batch.CronJobs().Informer(),
		f.Networking().V1().Ingresses().Informer(), core.Nodes().Informer(), core.ServiceAccounts().Informer(),
		f.Networking().V1().NetworkPolicies().Informer(), rbac.Roles().Informer(), rbac.RoleBindings().Informer(),
		rbac.ClusterRoles().Informer(), rbac.ClusterRoleBindings().Informer(),
		c.metaFactory.ForResource(secretsGVR).Informer(), c.metaFactory.ForResource(configMapsGVR).Informer(),
	} {
		if _, err := inf.AddEventHandler(signal); err != nil {
			return nil, fmt.Errorf("k8s: adding an event handler: %w", err)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	c.factory.Start(runCtx.Done())
	c.metaFactory.Start(runCtx.Done())

	syncCtx, syncCancel := context.WithTimeout(runCtx, syncTimeout)
	defer syncCancel()
	var unsynced []string
	for typ, ok := range c.factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			unsynced = append(unsynced, typ.String())
		}
	}
	for gvr, ok := range c.metaFactory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			unsynced = append(unsynced, gvr.String())
		}
	}
	if len(unsynced) > 0 {
		slices.Sort(unsynced)
		c.Stop()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("k8s: waiting for informer caches: %w", err)
		}
		return nil, fmt.Errorf("k8s: informer caches not synced within %v (missing RBAC?): %v", syncTimeout, unsynced)
	}
	return c, nil
}

// NamespaceLabels returns the labels of a namespace from the cache, and
// whether the namespace exists.
func (c *Connector) NamespaceLabels(name string) (map[string]string, bool) {
	ns, err := c.namespaces.Get(name)
	if err != nil {
		return nil, false
	}
	return maps.Clone(ns.Labels), true
}

// Changes returns a channel that receives a value after any watched object
// was added, changed or deleted. Signals are coalesced: one receive may
// stand for many events, and the initial listing counts as a change.
func (c *Connector) Changes() <-chan struct{} { return c.changes }

func (c *Connector) signal() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// Stop stops the informers and waits for them to finish. It may be called
// more than once.
func (c *Connector) Stop() {
	c.stopOnce.Do(func() {
		c.cancel()
		c.factory.Shutdown()
		c.metaFactory.Shutdown()
	})
}

// stripObject is the informers' transform: it drops what Bulwark never needs
// from every object before it is cached — managedFields, and the
// last-applied-configuration annotation, which would hold a Secret's data.
func stripObject(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		// Tombstones and other non-objects pass through unchanged.
		return obj, nil
	}
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		if _, ok := a[lastAppliedAnnotation]; ok {
			delete(a, lastAppliedAnnotation)
			m.SetAnnotations(a)
		}
	}
	return obj, nil
}
