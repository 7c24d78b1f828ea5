// Package rulestate holds the bounded memory that detection engines keep
// between events: an LRU map, the per-key state of first-seen and
// threshold rules, and the open alert groups that fold repeated matches
// into one alert.
//
// It is shared by internal/detect (audit events) and internal/nodedetect
// (sensor events), so that both engines fire and group identically. It
// knows nothing of events, CEL or rule files; keys are strings the
// engines derive, and every structure is bounded by a maximum the caller
// gives, because keys come from events an attacker can shape. Nothing here
// is safe for concurrent use, each engine serialises its calls, except
// Clusters: the pipelines' set of engines, one per cluster, which with
// FlushEvery is how both pipelines keep and flush them.
package rulestate
