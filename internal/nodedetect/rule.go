package nodedetect

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/rulefiles"
	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Rule is one runtime detection rule. See RULES.md for the YAML form.
type Rule struct {
	ID, Title   string
	Severity    string // CRITICAL, HIGH, MEDIUM or LOW
	Description string
	Remediation string
	Technique   detect.Technique
	// Kinds index the rule: it is evaluated only for events of these
	// kinds (wire.KindExec, KindDNS, KindConnect); empty means all.
	Kinds []string
	// Match is a CEL bool over the event; it fires the rule.
	Match string
	// Output is an optional CEL string, a one-line summary of the event.
	Output string
	// State, when set, makes the rule stateful, with the semantics of
	// detect.StateSpec.
	State *detect.StateSpec
	Tags  []string
	// Source is where the rule came from: "builtin" or a file name.
	Source string
}

// ErrInvalidRule is wrapped by every error about a malformed rule.
var ErrInvalidRule = errors.New("invalid runtime detection rule")

// kinds are the event kinds a rule can index.
var kinds = []string{wire.KindExec, wire.KindDNS, wire.KindConnect}

type ruleFile struct {
	Rules []yaml.Node `yaml:"rules"`
}

type ruleYAML struct {
	ID          string               `yaml:"id"`
	Title       string               `yaml:"title"`
	Severity    string               `yaml:"severity"`
	Technique   detect.TechniqueYAML `yaml:"technique"`
	Description string               `yaml:"description"`
	Remediation string               `yaml:"remediation"`
	Kinds       []string             `yaml:"kinds"`
	Match       string               `yaml:"match"`
	Output      string               `yaml:"output"`
	State       *detect.StateYAML    `yaml:"state"`
	Tags        []string             `yaml:"tags"`
}

// ruleKeys are the keys of a rule mapping, for detect.CheckRuleKeys.
var ruleKeys = []string{"id", "title", "severity", "technique", "description", "remediation", "kinds", "match", "output", "state", "tags"}

// ParseRules parses one YAML document holding a list of rules under
// "rules". Unknown keys, missing fields, a bad severity, technique, kind or
// state spec are errors naming source, rule and field, all reported at
// once. CEL is not compiled here; see New.
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
	fail := func(err error) (Rule, error) {
		return Rule{}, fmt.Errorf("%s: %s: %w: %w", source, rulefiles.ItemName(node, "rule", index), ErrInvalidRule, err)
	}
	if err := detect.CheckRuleKeys(node, ruleKeys); err != nil {
		return fail(err)
	}
	var y ruleYAML
	if err := node.Decode(&y); err != nil {
		return fail(err)
	}
	r := Rule{
		ID:          strings.TrimSpace(y.ID),
		Title:       strings.TrimSpace(y.Title),
		Severity:    strings.ToUpper(strings.TrimSpace(y.Severity)),
		Description: strings.TrimSpace(y.Description),
		Remediation: strings.TrimSpace(y.Remediation),
		Technique:   y.Technique.Technique(),
		Kinds:       detect.TrimAll(y.Kinds),
		Match:       strings.TrimSpace(y.Match),
		Output:      strings.TrimSpace(y.Output),
		Tags:        detect.TrimAll(y.Tags),
		Source:      source,
	}
	state, err := y.State.Spec()
	if err != nil {
		return fail(err)
	}
	r.State = state
	if err := validate(r); err != nil {
		return fail(err)
	}
	return r, nil
}

// validate checks everything about r but its CEL. The error names the
// field; callers add the rule.
func validate(r Rule) error {
	for _, k := range r.Kinds {
		if !slices.Contains(kinds, k) {
			return fmt.Errorf("field kinds: %q is not one of %s", k, strings.Join(kinds, ", "))
		}
	}
	return detect.ValidateCommon(detect.CommonFields{
		ID: r.ID, Title: r.Title, Severity: r.Severity, Technique: r.Technique,
		Match: r.Match, Tags: r.Tags, State: r.State,
	})
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

// Builtin returns the embedded default rules, sorted by id.
func Builtin() ([]Rule, error) {
	rs, err := builtinRules()
	if err != nil {
		return nil, fmt.Errorf("embedded runtime rules: %w", err)
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = cloneRule(r)
	}
	return out, nil
}

// cloneRule copies the slices and state of r, so that the caller's rule
// and the engine's do not alias.
func cloneRule(r Rule) Rule {
	r.Kinds = slices.Clone(r.Kinds)
	r.Tags = slices.Clone(r.Tags)
	if r.State != nil {
		s := *r.State
		r.State = &s
	}
	return r
}
