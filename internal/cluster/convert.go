package cluster

import (
	"github.com/bulwarkhq/bulwark/internal/k8s"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/store"
)

func storeInventory(inv k8s.Inventory) store.ClusterInventory {
	out := store.ClusterInventory{
		Namespaces: make([]store.ClusterNamespace, 0, len(inv.Namespaces)),
		Workloads:  make([]store.Workload, 0, len(inv.Workloads)),
	}
	for _, ns := range inv.Namespaces {
		out.Namespaces = append(out.Namespaces, store.ClusterNamespace{Name: ns.Name, Labels: ns.Labels})
	}
	for _, w := range inv.Workloads {
		sw := store.Workload{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name, ServiceAccount: w.ServiceAccount,
			Exposure: w.Exposure, HostNetwork: w.HostNetwork, HostPID: w.HostPID, HostIPC: w.HostIPC,
			Pods: make([]store.WorkloadPod, 0, len(w.Pods))}
		for _, p := range w.Pods {
			sp := store.WorkloadPod{Name: p.Name, Node: p.Node, Phase: string(p.Phase),
				Containers: make([]store.WorkloadContainer, 0, len(p.Containers))}
			for _, c := range p.Containers {
				sp.Containers = append(sp.Containers, store.WorkloadContainer{Name: c.Name, Kind: c.Kind, Image: c.Image,
					Digest: c.ImageDigest, Privileged: c.Privileged, RunAsNonRoot: c.RunAsNonRoot,
					Capabilities: c.Capabilities, HostPorts: c.HostPorts})
			}
			sw.Pods = append(sw.Pods, sp)
		}
		out.Workloads = append(out.Workloads, sw)
	}
	return out
}

func storeFindings(fs []posture.Finding) []store.PostureFinding {
	out := make([]store.PostureFinding, 0, len(fs))
	for _, f := range fs {
		out = append(out, store.PostureFinding{CheckID: f.CheckID, Title: f.Title, Severity: f.Severity,
			Frameworks: f.Frameworks, ResourceKind: f.Resource.Kind, ResourceNamespace: f.Resource.Namespace,
			ResourceName: f.Resource.Name, Evidence: f.Evidence})
	}
	return out
}
