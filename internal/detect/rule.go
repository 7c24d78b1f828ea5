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
	ID          string        `yaml:"id"`
	Title       string        `yaml:"title"`
	Severity    string        `yaml:"severity"`
	Technique   TechniqueYAML `yaml:"technique"`
	Description string        `yaml:"description"`
	Remediation string        `yaml:"remediation"`
	Verbs       []string      `yaml:"verbs"`
	Resources   []string      `yaml:"resources"`
	Match       string        `yaml:"match"`
	Output      string        `yaml:"output"`
	State       *StateYAML    `yaml:"state"`
	Tags        []string      `yaml:"tags"`
}

// TechniqueYAML is the YAML form of a Technique, shared by every rule
// format.
type TechniqueYAML struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

// Technique is t with surrounding space trimmed.
func (t TechniqueYAML) Technique() Technique {
	return Technique{ID: strings.TrimSpace(t.ID), Name: strings.TrimSpace(t.Name)}
}

// StateYAML is the YAML form of a StateSpec, shared by every rule format.
type StateYAML struct {
	Kind   string `yaml:"kind"`
	Key    string `yaml:"key"`
	Count  int    `yaml:"count"`
	Window string `yaml:"window"`
	TTL    string `yaml:"ttl"`
	Max    int    `yaml:"max"`
}

// Spec trims s and parses its durations; a nil s is a stateless rule. The
// error names the field. The spec is not validated here; see
// ValidateCommon.
func (s *StateYAML) Spec() (*StateSpec, error) {
	if s == nil {
		return nil, nil
	}
	spec := &StateSpec{Kind: strings.TrimSpace(s.Kind), Key: strings.TrimSpace(s.Key), Count: s.Count, Max: s.Max}
	for _, d := range []struct {
		field, value string
		to           *time.Duration
	}{{"state.window", s.Window, &spec.Window}, {"state.ttl", s.TTL, &spec.TTL}} {
		if v := strings.TrimSpace(d.value); v != "" {
			dur, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("field %s: %q is not a duration such as 10m", d.field, v)
			}
			*d.to = dur
		}
	}
	return spec, nil
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
	if err := CheckRuleKeys(node, ruleKeys); err != nil {
		return fail("%v", err)
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
		Technique:   y.Technique.Technique(),
		Verbs:       TrimAll(y.Verbs),
		Resources:   TrimAll(y.Resources),
		Match:       strings.TrimSpace(y.Match),
		Output:      strings.TrimSpace(y.Output),
		Tags:        TrimAll(y.Tags),
		Source:      source,
	}
	state, err := y.State.Spec()
	if err != nil {
		return fail("%v", err)
	}
	r.State = state
	if err := validate(r); err != nil {
		return fail("%v", err)
	}
	return r, nil
}

// TrimAll trims the space around every string of in; nil stays nil.
func TrimAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// CheckRuleKeys rejects a rule node that is not a mapping, or that has a
// key outside ruleKeys or a technique or state mapping with an unknown key,
// naming the line and the field ("state.every"). yaml's Node.Decode cannot
// check this by itself. Every rule format shares the technique and state
// mappings; ruleKeys are its own top-level keys.
func CheckRuleKeys(n *yaml.Node, ruleKeys []string) error {
	if err := checkKeys(n, "", ruleKeys); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		var err error
		switch n.Content[i].Value {
		case "technique":
			err = checkKeys(n.Content[i+1], "technique.", techniqueKeys)
		case "state":
			err = checkKeys(n.Content[i+1], "state.", stateKeys)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkKeys(n *yaml.Node, prefix string, known []string) error {
	if n.Kind != yaml.MappingNode {
		field := strings.TrimSuffix(prefix, ".")
		if field == "" {
			field = "rule"
		}
		return fmt.Errorf("line %d: field %s: want a mapping with keys %s", n.Line, field, strings.Join(known, ", "))
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
	if err := ValidateCommon(CommonFields{
		ID: r.ID, Title: r.Title, Severity: r.Severity, Technique: r.Technique,
		Match: r.Match, Tags: r.Tags, State: r.State,
	}); err != nil {
		return err
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
	return nil
}

// CommonFields are the fields every kind of detection rule shares: the
// audit rules of this package and the runtime rules of
// internal/nodedetect. Both validate them with ValidateCommon, so that the
// two rule formats cannot drift apart.
type CommonFields struct {
	ID, Title, Severity string
	Technique           Technique
	Match               string
	Tags                []string
	State               *StateSpec
}

// ValidateCommon checks the shared fields of a rule, all but their CEL,
// which only the engine that evaluates it can type-check. The error names
// the first bad field, e.g. "field severity: ..."; callers add the rule
// and their sentinel error.
func ValidateCommon(c CommonFields) error {
	switch {
	case c.ID == "":
		return errors.New("field id: required")
	case !ruleIDPattern.MatchString(c.ID):
		return fmt.Errorf("field id: %q must be 1-100 letters, digits, '.', '_', ':' or '-'", c.ID)
	case c.Title == "":
		return errors.New("field title: required")
	case !slices.Contains(severities, c.Severity):
		return fmt.Errorf("field severity: %q is not one of %s", c.Severity, strings.Join(severities, ", "))
	case c.Technique.ID == "":
		return errors.New("field technique.id: required (a MITRE ATT&CK technique such as T1609)")
	case !techniquePattern.MatchString(c.Technique.ID):
		return fmt.Errorf("field technique.id: %q is not a MITRE ATT&CK technique id such as T1609 or T1098.006", c.Technique.ID)
	case c.Technique.Name == "":
		return errors.New("field technique.name: required")
	case c.Match == "":
		return errors.New("field match: required")
	}
	for _, t := range c.Tags {
		if t == "" {
			return errors.New("field tags: empty tag")
		}
	}
	if c.State != nil {
		return validateState(c.State)
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
