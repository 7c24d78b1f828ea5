package admission

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Rule actions, and the actions a Decision can carry, strongest first.
const (
	ActionDeny  = "deny"
	ActionError = "error" // the review could not be completed; the object was allowed
	ActionWarn  = "warn"
	ActionAudit = "audit"
	ActionAllow = "allow"
)

// Unscanned policies.
const (
	UnscannedAllowWarn = "allow-warn"
	UnscannedDeny      = "deny"
	UnscannedScan      = "scan"
)

// Defaults and bounds of a policy.
const (
	DefaultScanBudget           = 3 * time.Second
	DefaultBreakGlassAnnotation = "bulwark.io/break-glass"
	// maxScanBudget keeps an inline scan below the webhook's own timeout,
	// which kube-apiserver caps at 30s.
	maxScanBudget = 25 * time.Second
)

// ErrInvalidPolicy is wrapped by every error about a malformed policy.
var ErrInvalidPolicy = errors.New("invalid admission policy")

// Policy is what the reviewer enforces. See POLICY.md.
type Policy struct {
	Rules      []Rule
	Exemptions []Exemption
	// Unscanned is "allow-warn" (default), "deny" or "scan".
	Unscanned string
	// ScanBudget bounds the inline scan of "scan"; default 3s. It must stay
	// below the webhook timeout.
	ScanBudget time.Duration
	// DryRun reports what would have been denied and allows everything.
	DryRun bool
	// BreakGlassAnnotation, default "bulwark.io/break-glass": a non-empty
	// value (the reason) on the object allows it, recorded loudly.
	BreakGlassAnnotation string
}

// Rule is one CEL rule of a policy.
type Rule struct {
	ID, Description string
	Action          string // "deny", "warn" or "audit"
	// Match is an optional CEL bool over the request-level variables ns,
	// workload, operation, user and image.
	Match string
	// Violation is CEL over the image-level variables image, summary and
	// vulnerabilities: a bool, or a list(string) whose items the message
	// names.
	Violation string
}

// Exemption takes an image, or one vulnerability of it, out of what the
// rules see.
type Exemption struct {
	Namespace     string // exact, or "" for any
	Image         string // glob over the reference, "" for any
	Vulnerability string // id or alias, "" for the whole image
	Reason        string // required
	Expires       time.Time
}

// active reports whether e is in force at now.
func (e Exemption) active(now time.Time) bool { return now.Before(e.Expires) }

// appliesTo reports whether e covers an image reference in namespace.
func (e Exemption) appliesTo(namespace, reference string) bool {
	return (e.Namespace == "" || e.Namespace == namespace) && (e.Image == "" || globMatch(e.Image, reference))
}

//go:embed policy/default.yaml
var defaultPolicyYAML []byte

// DefaultPolicy returns the embedded policy (policy/default.yaml). It is
// covered by tests, so a parse failure is a build defect and panics.
func DefaultPolicy() Policy {
	p, err := ParsePolicy(defaultPolicyYAML, "builtin:policy/default.yaml")
	if err != nil {
		panic(fmt.Sprintf("admission: embedded default policy is invalid: %v", err))
	}
	return p
}

type policyYAML struct {
	Unscanned            string    `yaml:"unscanned"`
	ScanBudget           string    `yaml:"scanBudget"`
	DryRun               bool      `yaml:"dryRun"`
	BreakGlassAnnotation string    `yaml:"breakGlassAnnotation"`
	Rules                yaml.Node `yaml:"rules"`
	Exemptions           yaml.Node `yaml:"exemptions"`
}

type ruleYAML struct {
	ID          string `yaml:"id"`
	Description string `yaml:"description"`
	Action      string `yaml:"action"`
	Match       string `yaml:"match"`
	Violation   string `yaml:"violation"`
}

type exemptionYAML struct {
	Namespace     string `yaml:"namespace"`
	Image         string `yaml:"image"`
	Vulnerability string `yaml:"vulnerability"`
	Reason        string `yaml:"reason"`
	Expires       string `yaml:"expires"`
}

var (
	policyKeys    = []string{"unscanned", "scanBudget", "dryRun", "breakGlassAnnotation", "rules", "exemptions"}
	ruleKeys      = []string{"id", "description", "action", "match", "violation"}
	exemptionKeys = []string{"namespace", "image", "vulnerability", "reason", "expires"}
)

var ruleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// ParsePolicy parses a policy document strictly: unknown keys, bad values
// and CEL that does not compile are errors naming source, line and field,
// all reported at once. Defaults are filled in. Expired exemptions are not
// an error (they do nothing); [Lint] reports them.
func ParsePolicy(data []byte, source string) (Policy, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", source, ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return Policy{}, fail("%v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return Policy{}, fail("want a mapping with keys %s", strings.Join(policyKeys, ", "))
	}
	root := doc.Content[0]
	if err := checkKeys(root, policyKeys); err != nil {
		return Policy{}, fail("%v", err)
	}
	var y policyYAML
	if err := root.Decode(&y); err != nil {
		return Policy{}, fail("%v", err)
	}
	p := Policy{
		Unscanned:            strings.TrimSpace(y.Unscanned),
		DryRun:               y.DryRun,
		BreakGlassAnnotation: strings.TrimSpace(y.BreakGlassAnnotation),
	}
	var errs []error
	if s := strings.TrimSpace(y.ScanBudget); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fail("field scanBudget: %q is not a duration such as 3s", s))
		}
		p.ScanBudget = d
	}
	for i, n := range seqItems(&y.Rules) {
		r, err := parseRule(n)
		if err != nil {
			errs = append(errs, fail("rules[%d] (line %d): %v", i, n.Line, err))
			continue
		}
		p.Rules = append(p.Rules, r)
	}
	for i, n := range seqItems(&y.Exemptions) {
		e, err := parseExemption(n)
		if err != nil {
			errs = append(errs, fail("exemptions[%d] (line %d): %v", i, n.Line, err))
			continue
		}
		p.Exemptions = append(p.Exemptions, e)
	}
	if y.Rules.Kind != 0 && y.Rules.Kind != yaml.SequenceNode {
		errs = append(errs, fail("field rules (line %d): want a list", y.Rules.Line))
	}
	if y.Exemptions.Kind != 0 && y.Exemptions.Kind != yaml.SequenceNode {
		errs = append(errs, fail("field exemptions (line %d): want a list", y.Exemptions.Line))
	}
	if len(errs) > 0 {
		return Policy{}, errors.Join(errs...)
	}
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("%s: %w", source, err)
	}
	return p, nil
}

func seqItems(n *yaml.Node) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func checkKeys(n *yaml.Node, known []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping with keys %s", n.Line, strings.Join(known, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(known, k.Value) {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", k.Line, k.Value, strings.Join(known, ", "))
		}
	}
	return nil
}

func parseRule(n *yaml.Node) (Rule, error) {
	if err := checkKeys(n, ruleKeys); err != nil {
		return Rule{}, err
	}
	var y ruleYAML
	if err := n.Decode(&y); err != nil {
		return Rule{}, err
	}
	return Rule{
		ID:          strings.TrimSpace(y.ID),
		Description: strings.TrimSpace(y.Description),
		Action:      strings.TrimSpace(y.Action),
		Match:       strings.TrimSpace(y.Match),
		Violation:   strings.TrimSpace(y.Violation),
	}, nil
}

func parseExemption(n *yaml.Node) (Exemption, error) {
	if err := checkKeys(n, exemptionKeys); err != nil {
		return Exemption{}, err
	}
	var y exemptionYAML
	if err := n.Decode(&y); err != nil {
		return Exemption{}, err
	}
	e := Exemption{
		Namespace:     strings.TrimSpace(y.Namespace),
		Image:         strings.TrimSpace(y.Image),
		Vulnerability: strings.TrimSpace(y.Vulnerability),
		Reason:        strings.TrimSpace(y.Reason),
	}
	if s := strings.TrimSpace(y.Expires); s != "" {
		t, err := parseExpiry(s)
		if err != nil {
			return Exemption{}, err
		}
		e.Expires = t
	}
	return e, nil
}

// parseExpiry accepts RFC 3339 or a date; a date means the end of that day
// in UTC, so "expires: 2026-12-31" covers the whole of December 31.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Add(24 * time.Hour), nil
	}
	return time.Time{}, fmt.Errorf("field expires: %q is neither a date (2006-01-02) nor RFC 3339", s)
}

func (p Policy) withDefaults() Policy {
	if p.Unscanned == "" {
		p.Unscanned = UnscannedAllowWarn
	}
	if p.ScanBudget == 0 {
		p.ScanBudget = DefaultScanBudget
	}
	if p.BreakGlassAnnotation == "" {
		p.BreakGlassAnnotation = DefaultBreakGlassAnnotation
	}
	return p
}

// Validate checks p as [NewReviewer] would use it (after defaults): rule
// ids, actions, CEL, exemptions and the unscanned settings. All problems
// are reported at once.
func (p Policy) Validate() error {
	p = p.withDefaults()
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...)))
	}
	switch p.Unscanned {
	case UnscannedAllowWarn, UnscannedDeny, UnscannedScan:
	default:
		fail("field unscanned: %q is not one of allow-warn, deny, scan", p.Unscanned)
	}
	if p.ScanBudget < 0 || p.ScanBudget > maxScanBudget {
		fail("field scanBudget: %s must be between 0 and %s (below the webhook timeout)", p.ScanBudget, maxScanBudget)
	}
	seen := map[string]bool{}
	for i, r := range p.Rules {
		name := fmt.Sprintf("rule %q", r.ID)
		switch {
		case r.ID == "":
			fail("rules[%d]: field id: required", i)
			continue
		case !ruleIDPattern.MatchString(r.ID):
			fail("rules[%d]: field id: %q must be 1-100 letters, digits, '.', '_', ':' or '-'", i, r.ID)
			continue
		case seen[r.ID]:
			fail("%s: duplicate id", name)
		}
		seen[r.ID] = true
		switch r.Action {
		case ActionDeny, ActionWarn, ActionAudit:
		case "":
			fail("%s: field action: required (deny, warn or audit)", name)
		default:
			fail("%s: field action: %q is not one of deny, warn, audit", name, r.Action)
		}
		if _, err := compileRule(r); err != nil {
			errs = append(errs, err)
		}
	}
	for i, e := range p.Exemptions {
		name := fmt.Sprintf("exemptions[%d]", i)
		if e.Reason == "" {
			fail("%s: field reason: required", name)
		}
		if e.Expires.IsZero() {
			fail("%s: field expires: required (a date such as 2026-12-31)", name)
		}
		if e.Namespace == "" && e.Image == "" && e.Vulnerability == "" {
			fail("%s: exempts everything; set namespace, image or vulnerability", name)
		}
	}
	return errors.Join(errs...)
}

// Lint reports what is valid but probably wrong in p at now: exemptions
// that have expired (they do nothing) or expire within a week.
func Lint(p Policy, now time.Time) []string {
	var out []string
	for i, e := range p.Exemptions {
		what := describeExemption(e)
		switch {
		case !e.active(now):
			out = append(out, fmt.Sprintf("exemptions[%d] (%s) expired on %s and is ignored", i, what, e.Expires.UTC().Format(time.DateOnly)))
		case e.Expires.Sub(now) < 7*24*time.Hour:
			out = append(out, fmt.Sprintf("exemptions[%d] (%s) expires on %s", i, what, e.Expires.UTC().Format(time.DateOnly)))
		}
	}
	return out
}

func describeExemption(e Exemption) string {
	var parts []string
	if e.Namespace != "" {
		parts = append(parts, "namespace "+e.Namespace)
	}
	if e.Image != "" {
		parts = append(parts, "image "+e.Image)
	}
	if e.Vulnerability != "" {
		parts = append(parts, "vulnerability "+e.Vulnerability)
	}
	return strings.Join(parts, ", ")
}

// globMatch matches s against pattern where '*' matches any run of
// characters, '/' included (an image path is not a file path: "team/*"
// should cover "team/sub/app:1"), and '?' one character.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextPx >= 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}
