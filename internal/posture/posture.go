package posture

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Input is one cluster's objects as the API returned them (typed).
type Input struct {
	Namespaces          []*corev1.Namespace
	Nodes               []*corev1.Node
	Pods                []*corev1.Pod
	Deployments         []*appsv1.Deployment
	ReplicaSets         []*appsv1.ReplicaSet
	StatefulSets        []*appsv1.StatefulSet
	DaemonSets          []*appsv1.DaemonSet
	Jobs                []*batchv1.Job
	CronJobs            []*batchv1.CronJob
	Services            []*corev1.Service
	Ingresses           []*networkingv1.Ingress
	NetworkPolicies     []*networkingv1.NetworkPolicy
	ServiceAccounts     []*corev1.ServiceAccount
	Roles               []*rbacv1.Role
	ClusterRoles        []*rbacv1.ClusterRole
	RoleBindings        []*rbacv1.RoleBinding
	ClusterRoleBindings []*rbacv1.ClusterRoleBinding
	Secrets             []*metav1.PartialObjectMetadata // metadata only: values are never available
	ConfigMaps          []*metav1.PartialObjectMetadata // metadata only
	// NodeFacts are what a node sensor reports (kubelet configuration, file
	// permissions); empty until the sensor exists. Node checks (CIS sections
	// 2-4) target these.
	NodeFacts []NodeFacts
}

// NodeFacts is what a node sensor reports about one node.
type NodeFacts struct {
	Node string
	// Kubelet is the kubelet's effective configuration (KubeletConfiguration
	// fields, JSON names), flags merged in.
	Kubelet map[string]any
	Files   []FileFact
}

// FileFact is the permission and ownership of one file on a node.
type FileFact struct {
	Path  string
	Mode  uint32 // permission bits, e.g. 0o600
	Owner string
	Group string
}

// Resource names the object a finding is about. Namespace is "" for
// cluster-scoped objects; for RBAC subjects Kind is User, Group or
// ServiceAccount.
type Resource struct{ Kind, Namespace, Name string }

func (r Resource) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Finding is one failed check on one object.
type Finding struct {
	CheckID     string
	Title       string
	Severity    string   // CRITICAL, HIGH, MEDIUM, LOW
	Frameworks  []string // e.g. "cis-1.12", "pss-baseline", "pss-restricted", "rbac-risk"
	Resource    Resource
	Evidence    []string // short facts; never an env var value or any secret value
	Remediation string
}

// Check is one posture check as loaded from YAML.
type Check struct {
	ID          string
	Title       string
	Severity    string
	Target      string
	Description string
	Remediation string
	Frameworks  []string
	// Match is an optional CEL bool: does the check apply to this object.
	Match string
	// Violation is CEL returning bool (true = fails) or list(string)
	// (non-empty = fails; the strings are the evidence).
	Violation string
	// Evidence is an optional CEL string or list(string) evaluated when a
	// bool Violation fails.
	Evidence string
	// Source is the file the check came from ("builtin" for embedded ones).
	Source string
}

// EvalError reports that a check failed at runtime on one or more objects.
// Those objects were skipped for that check; every other check and object
// was still judged.
type EvalError struct {
	CheckID string
	// Resource is the first object the check failed on.
	Resource Resource
	// Failed counts the objects the check failed on (or, once abandoned,
	// was not evaluated on).
	Failed int
	// Abandoned is set when the check hit maxErrorsPerCheck failures and was
	// not evaluated on the remaining objects.
	Abandoned bool
	Err       error
}

func (e *EvalError) Error() string {
	msg := fmt.Sprintf("check %s failed on %s: %v", e.CheckID, e.Resource, e.Err)
	if e.Failed > 1 {
		msg += fmt.Sprintf(" (%d objects in all)", e.Failed)
	}
	if e.Abandoned {
		msg += " (abandoned after too many failures)"
	}
	return msg
}

func (e *EvalError) Unwrap() error { return e.Err }
