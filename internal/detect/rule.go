package detect

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/rulefiles"
)

// Rule is one detection rule. See RULES.md for the YAML form.
type Rule struct {
	ID, Title   string
	Severity    string // CRITICAL, HIGH, MEDIUM or LOW
	Description string
	Remediation string
	Technique   Technique
	// Verbs and Resources, when set, index the rule: it is evaluated only
	// for events whose verb, and whose resource ("pods") or
	// resource/subresource ("pods/exec"), is listed. "*" matches any.
	Verbs     []string
	Resources []string
	// Match is a CEL bool over the event; it fires the rule.
	Match string
	// Output is an optional CEL string, a one-line summary of the event.
	Output string
	// State, when set, makes the rule stateful.
	State *StateSpec
	Tags  []string
	// Source is where the rule came from: "builtin" or a file name.
	Source string
}

// Technique is a MITRE ATT&CK technique, e.g. {"T1609", "Container
// Administration Command"}.
type Technique struct {
	ID, Name string
}

// State kinds.
const (
	StateFirstSeen = "first-seen"
	StateThreshold = "threshold"
)

// StateSpec makes a rule stateful. A matching event is first turned into a
// key by the CEL string Key, then:
//
//   - first-seen fires the first time a key is seen. Keys are forgotten TTL
//     (default 24h) after they were last seen, so a key seen again after a
//     quiet TTL fires again. At most Max keys (default 100,000) are kept.
//   - threshold fires when a key has matched at least Count times within
//     Window: once with the count, then for every further match while the
//     rate stays above the threshold. At most Max keys (default 10,000) are
//     kept, each with at most Count timestamps.
type StateSpec struct {
	Kind   string
	Key    string
	Count  int
	Window time.Duration
	TTL    time.Duration
	Max    int
}

// Defaults and bounds of rules.
const (
	defaultFirstSeenTTL = 24 * time.Hour
	defaultFirstSeenMax = 100_000
	defaultThresholdMax = 10_000
	maxStateKeys        = 1_000_000
	maxThresholdCount   = 10_000
)

// Severities, most severe first.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}

// ErrInvalidRule is wrapped by every error about a malformed rule.
var ErrInvalidRule = errors.New("invalid detection rule")

var (
	ruleIDPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)
	techniquePattern = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)
)

type ruleFile struct {
	Rules []yaml.Node `yaml:"rules"`
}

type ruleYAML struct {
	ID          string         `yaml:"id"`
	Title       string         `yaml:"title"`
	Severity    string         `yaml:"severity"`
	Technique   techniqueYAML  `yaml:"technique"`
	Description string         `yaml:"description"`
	Remediation string         `yaml:"remediation"`
	Verbs       []string       `yaml:"verbs"`
	Resources   []string       `yaml:"resources"`
	Match       string         `yaml:"match"`
	Output      string         `yaml:"output"`
	State       *stateSpecYAML `yaml:"state"`
	Tags        []string       `yaml:"tags"`
}

type techniqueYAML struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

type stateSpecYAML struct {
	Kind   string `yaml:"kind"`
	Key    string `yaml:"key"`
	Count  int    `yaml:"count"`
	Window string `yaml:"window"`
	TTL    string `yaml:"ttl"`
	Max    int    `yaml:"max"`
}

var (
	ruleKeys      = []string{"id", "title", "severity", "technique", "description", "remediation", "verbs", "resources", "match", "output", "state", "tags"}
	techniqueKeys = []string{"id", "name"}
	stateKeys     = []string{"kind", "key", "count", "window", "ttl", "max"}
)

// ParseRules parses one YAML document holding a list of rules under
// "rules". Unknown keys, missing fields, a bad severity, technique or state
// spec are errors naming source, rule and field, all reported at once. CEL
// is not compiled here; see Compile.
func ParseRules(data []byte, source string) ([]Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file ruleFile
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", source, ErrInvalidRule, err)
	}
	return rulefiles.ParseItems(file.Rules, source, parseRule)
}

func parseRule(node *yaml.Node, source string, index int) (Rule, error) {
	name := rulefiles.ItemName(node, "rule", index)
	fail := func(format string, args ...any) (Rule, error) {
		return Rule{}, fmt.Errorf("%s: %s: %w: %s", source, name, ErrInvalidRule, fmt.Sprintf(format, args...))
	}
	if node.Kind != yaml.MappingNode {
		return fail("want a mapping of rule fields")
	}
	if err := checkKeys(node, "", ruleKeys); err != nil {
		return fail("%v", err)
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		switch node.Content[i].Value {
		case "technique":
			if err := checkKeys(node.Content[i+1], "technique.", techniqueKeys); err != nil {
				return fail("%v", err)
			}
		case "state":
			if err := checkKeys(node.Content[i+1], "state.", stateKeys); err != nil {
				return fail("%v", err)
			}
		}
	}
	var y ruleYAML
	if err := node.Decode(&y); err != nil {
		return fail("%v", err)
	}
	r := Rule{
		ID:          strings.TrimSpace(y.ID),
		Title:       strings.TrimSpace(y.Title),
		Severity:    strings.ToUpper(strings.TrimSpace(y.Severity)),
		Description: strings.TrimSpace(y.Description),
		Remediation: strings.TrimSpace(y.Remediation),
		Technique:   Technique{ID: strings.TrimSpace(y.Technique.ID), Name: strings.TrimSpace(y.Technique.Name)},
		Verbs:       trimAll(y.Verbs),
		Resources:   trimAll(y.Resources),
		Match:       strings.TrimSpace(y.Match),
		Output:      strings.TrimSpace(y.Output),
		Tags:        trimAll(y.Tags),
		Source:      source,
	}
	if s := y.State; s != nil {
		r.State = &StateSpec{Kind: strings.TrimSpace(s.Kind), Key: strings.TrimSpace(s.Key), Count: s.Count, Max: s.Max}
		for _, d := range []struct {
			field, value string
			to           *time.Duration
		}{{"state.window", s.Window, &r.State.Window}, {"state.ttl", s.TTL, &r.State.TTL}} {
			if v := strings.TrimSpace(d.value); v != "" {
				dur, err := time.ParseDuration(v)
				if err != nil {
					return fail("field %s: %q is not a duration such as 10m", d.field, v)
				}
				*d.to = dur
			}
		}
	}
	if err := validate(r); err != nil {
		return fail("%v", err)
	}
	return r, nil
}

func trimAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

func checkKeys(n *yaml.Node, prefix string, known []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: field %s: want a mapping with keys %s", n.Line, strings.TrimSuffix(prefix, "."), strings.Join(known, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(known, k.Value) {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", k.Line, prefix+k.Value, strings.Join(known, ", "))
		}
	}
	return nil
}

// validate checks everything about r but its CEL. The error names the
// field; callers add the rule.
func validate(r Rule) error {
	switch {
	case r.ID == "":
		return errors.New("field id: required")
	case !ruleIDPattern.MatchString(r.ID):
		return fmt.Errorf("field id: %q must be 1-100 letters, digits, '.', '_', ':' or '-'", r.ID)
	case r.Title == "":
		return errors.New("field title: required")
	case !slices.Contains(severities, r.Severity):
		return fmt.Errorf("field severity: %q is not one of %s", r.Severity, strings.Join(severities, ", "))
	case r.Technique.ID == "":
		return errors.New("field technique.id: required (a MITRE ATT&CK technique such as T1609)")
	case !techniquePattern.MatchString(r.Technique.ID):
		return fmt.Errorf("field technique.id: %q is not a MITRE ATT&CK technique id such as T1609 or T1098.006", r.Technique.ID)
	case r.Technique.Name == "":
		return errors.New("field technique.name: required")
	case r.Match == "":
		return errors.New("field match: required")
	}
	for _, v := range r.Verbs {
		if v == "" {
			return errors.New("field verbs: empty verb")
		}
	}
	for _, res := range r.Resources {
		if res == "" || strings.Count(res, "/") > 1 || strings.HasPrefix(res, "/") || strings.HasSuffix(res, "/") {
			return fmt.Errorf("field resources: %q is not a resource (pods) or resource/subresource (pods/exec)", res)
		}
	}
	for _, t := range r.Tags {
		if t == "" {
			return errors.New("field tags: empty tag")
		}
	}
	if r.State != nil {
		return validateState(r.State)
	}
	return nil
}

func validateState(s *StateSpec) error {
	if s.Key == "" {
		return errors.New("field state.key: required (a CEL string)")
	}
	if s.Max < 0 || s.Max > maxStateKeys {
		return fmt.Errorf("field state.max: %d must be between 0 (default) and %d", s.Max, maxStateKeys)
	}
	if s.TTL < 0 {
		return fmt.Errorf("field state.ttl: %s must not be negative", s.TTL)
	}
	switch s.Kind {
	case StateFirstSeen:
		if s.Count != 0 || s.Window != 0 {
			return errors.New("field state: count and window apply to threshold, not first-seen")
		}
	case StateThreshold:
		if s.Count < 2 || s.Count > maxThresholdCount {
			return fmt.Errorf("field state.count: %d must be between 2 and %d", s.Count, maxThresholdCount)
		}
		if s.Window <= 0 {
			return errors.New("field state.window: required for threshold (a duration such as 1m)")
		}
		if s.TTL != 0 {
			return errors.New("field state.ttl: applies to first-seen; threshold keys expire after window")
		}
	case "":
		return fmt.Errorf("field state.kind: required (%s or %s)", StateFirstSeen, StateThreshold)
	default:
		return fmt.Errorf("field state.kind: %q is not %s or %s", s.Kind, StateFirstSeen, StateThreshold)
	}
	return nil
}

// LoadDir parses every *.yaml and *.yml file in dir (not recursively), in
// name order.
func LoadDir(dir string) ([]Rule, error) {
	return rulefiles.ReadDir(dir, "rules", ParseRules)
}

//go:embed rules/*.yaml
var builtinFS embed.FS

// BuiltinSource is the Source of every embedded rule.
const BuiltinSource = "builtin"

var builtinRules = sync.OnceValues(func() ([]Rule, error) {
	return rulefiles.ReadEmbedded(builtinFS, "rules/*.yaml", BuiltinSource, ParseRules,
		func(x *Rule, source string) { x.Source = source }, func(x Rule) string { return x.ID })
})

// Builtin returns the embedded default rules, sorted by id. The embedded
// YAML is covered by tests, so a parse failure is a build defect and panics.
func Builtin() []Rule {
	rs, err := builtinRules()
	if err != nil {
		panic(fmt.Sprintf("detect: embedded rules are invalid: %v", err))
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = cloneRule(r)
	}
	return out
}
