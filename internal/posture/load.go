package posture

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/rulefiles"
)

// Severities, most severe first.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}

// ErrInvalidCheck is wrapped by every error about a malformed check.
var ErrInvalidCheck = errors.New("invalid check")

var checkIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// checkFile is the YAML document: a list of checks under "checks".
type checkFile struct {
	Checks []yaml.Node `yaml:"checks"`
}

type checkYAML struct {
	ID          string   `yaml:"id"`
	Title       string   `yaml:"title"`
	Severity    string   `yaml:"severity"`
	Target      string   `yaml:"target"`
	Description string   `yaml:"description"`
	Remediation string   `yaml:"remediation"`
	Frameworks  []string `yaml:"frameworks"`
	Match       string   `yaml:"match"`
	Violation   string   `yaml:"violation"`
	Evidence    string   `yaml:"evidence"`
}

var checkKeys = []string{"id", "title", "severity", "target", "description", "remediation", "frameworks", "match", "violation", "evidence"}

// ParseChecks parses one YAML document of checks. Unknown keys, missing
// required fields, an unknown severity or target are errors naming source,
// check id and field. CEL expressions are not compiled here; see Compile.
func ParseChecks(data []byte, source string) ([]Check, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var file checkFile
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", source, ErrInvalidCheck, err)
	}
	return rulefiles.ParseItems(file.Checks, source, parseCheck)
}

func parseCheck(node *yaml.Node, source string, index int) (Check, error) {
	name := rulefiles.ItemName(node, "check", index)
	fail := func(format string, args ...any) (Check, error) {
		return Check{}, fmt.Errorf("%s: %s: %w: %s", source, name, ErrInvalidCheck, fmt.Sprintf(format, args...))
	}
	if node.Kind != yaml.MappingNode {
		return fail("want a mapping of check fields")
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i].Value
		if !slices.Contains(checkKeys, k) {
			return fail("line %d: unknown field %q (known: %s)", node.Content[i].Line, k, strings.Join(checkKeys, ", "))
		}
	}
	var y checkYAML
	if err := node.Decode(&y); err != nil {
		return fail("%v", err)
	}
	c := Check{
		ID:          strings.TrimSpace(y.ID),
		Title:       strings.TrimSpace(y.Title),
		Severity:    strings.ToUpper(strings.TrimSpace(y.Severity)),
		Target:      strings.TrimSpace(y.Target),
		Description: strings.TrimSpace(y.Description),
		Remediation: strings.TrimSpace(y.Remediation),
		Frameworks:  y.Frameworks,
		Match:       strings.TrimSpace(y.Match),
		Violation:   strings.TrimSpace(y.Violation),
		Evidence:    strings.TrimSpace(y.Evidence),
		Source:      source,
	}
	switch {
	case c.ID == "":
		return fail("field id: required")
	case !checkIDPattern.MatchString(c.ID):
		return fail("field id: %q must be 1-100 letters, digits, '.', '_', ':' or '-'", c.ID)
	case c.Title == "":
		return fail("field title: required")
	case !slices.Contains(severities, c.Severity):
		return fail("field severity: %q is not one of %s", y.Severity, strings.Join(severities, ", "))
	case c.Target == "":
		return fail("field target: required (one of %s)", strings.Join(targetNames(), ", "))
	case targets[c.Target] == nil:
		return fail("field target: unknown target %q (one of %s)", c.Target, strings.Join(targetNames(), ", "))
	case c.Violation == "":
		return fail("field violation: required")
	}
	for _, f := range c.Frameworks {
		if strings.TrimSpace(f) == "" {
			return fail("field frameworks: empty framework name")
		}
	}
	return c, nil
}

// LoadDir parses every *.yaml and *.yml file in dir (not recursively), in
// name order.
func LoadDir(dir string) ([]Check, error) {
	return rulefiles.ReadDir(dir, "checks", ParseChecks)
}

//go:embed checks/*.yaml
var builtinFS embed.FS

// BuiltinSource is the Source of every embedded check.
const BuiltinSource = "builtin"

var builtinChecks = sync.OnceValues(func() ([]Check, error) {
	return rulefiles.ReadEmbedded(builtinFS, "checks/*.yaml", BuiltinSource, ParseChecks,
		func(x *Check, source string) { x.Source = source }, func(x Check) string { return x.ID })
})

// Builtin returns the embedded catalogue, sorted by id. The embedded YAML is
// covered by tests, so a parse failure is a build defect and panics.
func Builtin() []Check {
	cs, err := builtinChecks()
	if err != nil {
		panic(fmt.Sprintf("posture: embedded checks are invalid: %v", err))
	}
	return slices.Clone(cs)
}
