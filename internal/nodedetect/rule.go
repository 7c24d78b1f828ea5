package nodedetect

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

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
	ID          string         `yaml:"id"`
	Title       string         `yaml:"title"`
	Severity    string         `yaml:"severity"`
	Technique   techniqueYAML  `yaml:"technique"`
	Description string         `yaml:"description"`
	Remediation string         `yaml:"remediation"`
	Kinds       []string       `yaml:"kinds"`
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

// knownKeys are the keys of a rule mapping and of its nested mappings,
// which yaml's Node.Decode cannot check by itself.
var knownKeys = map[string][]string{
	"":           {"id", "title", "severity", "technique", "description", "remediation", "kinds", "match", "output", "state", "tags"},
	"technique.": {"id", "name"},
	"state.":     {"kind", "key", "count", "window", "ttl", "max"},
}

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
	if err := checkKeys(node, ""); err != nil {
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
		Technique:   detect.Technique{ID: strings.TrimSpace(y.Technique.ID), Name: strings.TrimSpace(y.Technique.Name)},
		Kinds:       trimAll(y.Kinds),
		Match:       strings.TrimSpace(y.Match),
		Output:      strings.TrimSpace(y.Output),
		Tags:        trimAll(y.Tags),
		Source:      source,
	}
	if s := y.State; s != nil {
		r.State = &detect.StateSpec{Kind: strings.TrimSpace(s.Kind), Key: strings.TrimSpace(s.Key), Count: s.Count, Max: s.Max}
		for _, d := range []struct {
			field, value string
			to           *time.Duration
		}{{"state.window", s.Window, &r.State.Window}, {"state.ttl", s.TTL, &r.State.TTL}} {
			if v := strings.TrimSpace(d.value); v != "" {
				dur, err := time.ParseDuration(v)
				if err != nil {
					return fail(fmt.Errorf("field %s: %q is not a duration such as 10m", d.field, v))
				}
				*d.to = dur
			}
		}
	}
	if err := validate(r); err != nil {
		return fail(err)
	}
	return r, nil
}

// checkKeys rejects unknown keys of a rule mapping and its technique and
// state mappings, naming the line.
func checkKeys(n *yaml.Node, prefix string) error {
	known := knownKeys[prefix]
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: field %s: want a mapping with keys %s", n.Line, cmpOr(strings.TrimSuffix(prefix, "."), "rule"), strings.Join(known, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(known, k.Value) {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", k.Line, prefix+k.Value, strings.Join(known, ", "))
		}
		if _, nested := knownKeys[prefix+k.Value+"."]; nested && prefix == "" {
			if err := checkKeys(n.Content[i+1], k.Value+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
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

// validate checks everything about r but its CEL. The error names the
// field; callers add the rule.
func validate(r Rule) error {
	for _, k := range r.Kinds {
		if !slices.Contains(kinds, k) {
			return fmt.Errorf("field kinds: %q is not one of %s", k, strings.Join(kinds, ", "))
		}
	}
	return validateShared(r)
}

// validateShared checks the fields runtime rules share with audit rules —
// id, title, severity, technique, match, tags and state — with
// internal/detect's own checks, so that the two formats cannot drift
// apart. detect offers those checks only through Compile, so a stand-in
// audit rule with the same fields and trivial CEL is compiled, and the
// field's message is taken from the end of the error chain.
func validateShared(r Rule) error {
	stand := detect.Rule{
		ID: r.ID, Title: r.Title, Severity: r.Severity, Technique: r.Technique,
		Tags: r.Tags, Source: r.Source,
	}
	if r.Match != "" {
		stand.Match = "true"
	}
	if r.State != nil {
		s := *r.State
		if s.Key != "" {
			s.Key = `""`
		}
		stand.State = &s
	}
	if _, err := detect.Compile([]detect.Rule{stand}, detect.Options{}); err != nil {
		return innermost(err)
	}
	return nil
}

// innermost follows the last branch of an error tree to its end:
// detect.Compile joins per-rule errors that wrap its sentinel and then the
// field's message.
func innermost(err error) error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			errs := u.Unwrap()
			if len(errs) == 0 {
				return err
			}
			err = errs[len(errs)-1]
		case interface{ Unwrap() error }:
			if u.Unwrap() == nil {
				return err
			}
			err = u.Unwrap()
		default:
			return err
		}
	}
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
