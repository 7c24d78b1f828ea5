package k8s

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulwarkhq/bulwark/internal/posture"
)

// PostureInput returns the cached objects for the posture engine. The
// objects are the informers' own: the engine must not modify them.
func (c *Connector) PostureInput() *posture.Input {
	all := labels.Everything()
	in := &posture.Input{}
	in.Namespaces, _ = c.namespaces.List(all)
	in.Nodes, _ = c.nodes.List(all)
	in.Pods, _ = c.pods.List(all)
	in.Deployments, _ = c.deployments.List(all)
	in.ReplicaSets, _ = c.replicaSets.List(all)
	in.StatefulSets, _ = c.statefulSets.List(all)
	in.DaemonSets, _ = c.daemonSets.List(all)
	in.Jobs, _ = c.jobs.List(all)
	in.CronJobs, _ = c.cronJobs.List(all)
	in.Services, _ = c.services.List(all)
	in.Ingresses, _ = c.ingresses.List(all)
	in.NetworkPolicies, _ = c.networkPolicies.List(all)
	in.ServiceAccounts, _ = c.serviceAccounts.List(all)
	in.Roles, _ = c.roles.List(all)
	in.ClusterRoles, _ = c.clusterRoles.List(all)
	in.RoleBindings, _ = c.roleBindings.List(all)
	in.ClusterRoleBindings, _ = c.clusterRoleBindings.List(all)
	in.Secrets = metadataOnly(c.secrets)
	in.ConfigMaps = metadataOnly(c.configMaps)
	return in
}

// metadataOnly lists a metadata informer's objects.
func metadataOnly(l interface {
	List(labels.Selector) ([]runtime.Object, error)
}) []*metav1.PartialObjectMetadata {
	objs, _ := l.List(labels.Everything())
	out := make([]*metav1.PartialObjectMetadata, 0, len(objs))
	for _, o := range objs {
		if m, ok := o.(*metav1.PartialObjectMetadata); ok {
			out = append(out, m)
		}
	}
	return out
}
