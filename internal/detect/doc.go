// Package detect is Bulwark's control-plane threat detection: it judges
// Kubernetes audit events (audit.k8s.io/v1) against rules written in CEL
// and turns the matches into alerts, each naming a MITRE ATT&CK for
// Containers technique, a severity and a remediation.
//
// The package owns the rule format (YAML, see RULES.md), the embedded
// default rules and the CEL view of an audit event. The fields, state
// specs and CEL limits that runtime rules (internal/nodedetect) share with
// audit rules are validated and compiled here too ([ValidateCommon],
// [NewState], [Program], [Eval]), so the two formats cannot drift apart;
// the bounded rule state and alert groups themselves live in
// internal/rulestate, used by both engines. It does not ingest audit events (webhook backend or
// log tailing), redact them or store alerts: events arrive already redacted
// and the caller delivers what [Engine.Process] and [Engine.Flush] return.
//
// # Stages
//
// kube-apiserver may log up to four events per request. A rule judges one
// of them, the one carrying the outcome:
//
//   - ResponseComplete (and Panic) for ordinary requests;
//   - ResponseStarted for the streaming subresources exec, attach,
//     portforward and proxy, because their ResponseComplete arrives only
//     when the session ends, possibly hours later. The ResponseComplete of
//     such a request is then skipped (remembered by audit ID); it is judged
//     only when no ResponseStarted was seen, which is the case for requests
//     that were refused or when the audit policy omits that stage.
//
// RequestReceived events, and ResponseStarted of watches, are ignored.
//
// # Alerts and grouping
//
// The first match of a group (rule and actor and object, or rule and state
// key for stateful rules) is returned by Process at once, with Count 1 (or
// the threshold for threshold rules). Further matches within GroupWindow of
// the group's first event only increase its Count. Flush reports every group
// whose Count grew since it was last reported, as an alert with Update set,
// and forgets groups whose window has passed; a later match then starts a new
// group and a new alert. Group windows and rule state use the events' own
// timestamps, so a replay behaves like the original stream.
//
// # Limits
//
// Every rule except the unmodified built-in ones runs with a CEL cost limit
// and a deadline per evaluation; a rule that fails is skipped for that event
// and logged, never disabled. Rule state and groups are bounded LRUs; when a bound is
// reached the least recently used key is forgotten, and an evicted group
// with unreported matches is reported by the call that evicts it.
package detect
