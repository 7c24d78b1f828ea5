// Package nodedetect is Bulwark's runtime threat detection on nodes: it
// judges the events a node sensor reports ([wire.Event]: program
// executions, DNS queries, outbound connections, each attributed to its
// container) against rules written in CEL, and turns the matches into
// alerts naming a MITRE ATT&CK technique, a severity and a remediation.
//
// The rule format is the one of the control-plane audit rules
// (internal/detect) — id, title, severity, technique, description,
// remediation, match, output, state, tags — with one difference: rules are
// indexed by event kind (kinds: [exec, dns, connect]) instead of verb and
// resource. See RULES.md for the format, the CEL view of an event, the
// helper functions and the domain lists.
//
// The package owns the rule format and the embedded default rules, the
// embedded domain lists (crypto-miner pools, abused TLDs, out-of-band
// testing and tunnel services, cloud names exempt from entropy checks), the
// correlation that CEL rules cannot do since they see one event at a time
// (which process downloaded which file into which container, so that
// executing it is recognised), the bounded state of stateful rules and the
// grouping of duplicate alerts. It does not receive, validate or store
// events or alerts: the server validates a batch ([wire.Batch.Validate])
// before handing its events to [Engine.Process] and delivers what Process
// and [Engine.Flush] return.
//
// # Alerts and grouping
//
// Grouping is internal/detect's, through internal/rulestate: the first match of a group (rule and
// container and program, or rule and state key for stateful rules) is
// returned at once; further matches within GroupWindow of the group's first
// event only increase its Count; Flush re-reports every group whose Count
// grew and forgets closed groups. Time is the events' own, so a replay
// behaves like the original stream.
//
// # Limits
//
// Rules other than the unmodified built-in ones run with a CEL cost limit
// and a deadline per evaluation. A rule that fails is skipped for that
// event and logged, never disabled. Per-container correlation state, rule
// state and alert groups are bounded LRUs.
package nodedetect
