// Package posture is Bulwark's Kubernetes posture engine: it judges the API
// objects of one cluster against checks written in CEL and reports findings
// (CIS Kubernetes Benchmark, Pod Security Standards, RBAC risk).
//
// The package owns the check format (YAML, see CHECKS.md), the embedded
// catalogue, the views each check target sees and the evaluation itself. It
// does not fetch objects — the caller builds an [Input] from its informer
// caches (and, later, from node sensors) — and it does not store, deduplicate
// or suppress findings.
//
// # Targets
//
// Every check names one target; the engine builds one CEL activation per
// object of that target and evaluates the check against each:
//
//   - workload: every pod-template owner at its top level (Deployment,
//     StatefulSet, DaemonSet, CronJob, a Job or ReplicaSet without a
//     controller in the Input, and Pods without one). Variables: workload,
//     template, spec, containers, ns, serviceAccount.
//   - namespace: each Namespace. Variables: ns, networkPolicies, pods,
//     workloads, serviceAccounts, services, secrets, configMaps.
//   - role: Roles and ClusterRoles. Variables: role, rules.
//   - binding: RoleBindings and ClusterRoleBindings. Variables: binding,
//     roleRef, subjects, roleExists, roleRules.
//   - subject: each User, Group and ServiceAccount named by a binding.
//     Variables: subject, rules, nonDefaultRules, bindings.
//   - serviceaccount: each ServiceAccount object. Variables: serviceAccount,
//     rules, nonDefaultRules, bindings, workloads.
//   - controlplane: kube-apiserver, kube-controller-manager, kube-scheduler
//     and etcd found as pods in kube-system. Variables: component, flags, pod.
//   - node: each [NodeFacts]. Variables: node, kubelet, files.
//
// ("namespace" is reserved in CEL, hence ns.) CHECKS.md documents every
// variable and the helper functions (allows, allowsIn, grants, grantsIn,
// modeExceeds, octal).
//
// RBAC rules granted through Kubernetes' own bootstrap bindings (named
// "system:*" or labelled kubernetes.io/bootstrapping=rbac-defaults) are
// marked default and left out of nonDefaultRules, which the built-in RBAC
// checks read, so that controllers and nodes do not flood the results.
//
// # Secrets
//
// Views never carry a secret value: Secrets and ConfigMaps arrive as metadata
// only, env var values are replaced by a hasValue flag, and the
// kubectl.kubernetes.io/last-applied-configuration annotation (which can
// hold a whole manifest) is dropped from every object.
//
// # Errors at evaluation time
//
// A check that fails at runtime for an object (a missing key, the cost limit)
// is skipped for that object; Evaluate still returns every finding and
// reports the failures as one [*EvalError] per check, joined with
// errors.Join. After maxErrorsPerCheck failures a check is abandoned for the
// rest of the run so that a hostile or broken check cannot dominate it.
// Every check except the unmodified built-in ones runs with a CEL cost limit
// and is interruptible through the context.
package posture
