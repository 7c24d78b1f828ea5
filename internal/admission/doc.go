// Package admission is the decision core of Bulwark's validating admission
// webhook ("gated deployment"). It reviews admission.k8s.io/v1
// AdmissionReview requests for Pods and every workload with a pod template
// (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob), looks up
// what Bulwark knows about each image and applies a CEL policy: allow,
// deny, warn or audit, with a message that names the rule, the image and
// its vulnerabilities.
//
// The package owns the policy format (YAML, see POLICY.md), the embedded
// default policy, the per-image verdict cache and the HTTP handler for
// review bodies. It does not own image facts — the server provides them
// through [Facts], backed by its store, a tag-resolution cache and the
// scanner — nor TLS, webhook registration (internal/admission/webhook) or
// storing decisions (the caller's Options.Record).
//
// # Never lock the cluster
//
// A review that cannot be completed (a malformed object, a failing lookup,
// a broken rule, a panic) allows the object with a warning, and its
// Decision carries Action "error". Only a body that is not an
// AdmissionReview at all gets HTTP 400; kube-apiserver then applies the
// webhook's failurePolicy. Denials are not enforced for images an UPDATE
// leaves unchanged, nor for pods kube-system controllers or kubelets
// create: the gate is the workload, and scaling or rescheduling must work
// during an incident.
//
// # Speed
//
// A rule's Violation sees only the image's scan, so its result is cached
// per (repository, digest, scan time, exempted vulnerabilities) within the
// compiled policy; the server can fill the cache with [Reviewer.Precompute]
// when a scan finishes. A review is then a Facts lookup, a few Match
// evaluations and a map lookup per container.
package admission
