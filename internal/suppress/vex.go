package suppress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// VEX statuses (https://github.com/openvex/spec). Statements with
// not_affected or fixed suppress findings; affected and
// under_investigation change nothing.
const (
	StatusNotAffected        = "not_affected"
	StatusFixed              = "fixed"
	StatusAffected           = "affected"
	StatusUnderInvestigation = "under_investigation"
)

// VEX is an OpenVEX document, the parts that decide suppression.
type VEX struct {
	Context    string      `json:"@context"`
	ID         string      `json:"@id"`
	Statements []Statement `json:"statements"`
}

// Statement is one VEX statement.
type Statement struct {
	Vulnerability   vexVulnerability `json:"vulnerability"`
	Products        []Product        `json:"products"`
	Status          string           `json:"status"`
	Justification   string           `json:"justification,omitempty"`
	ImpactStatement string           `json:"impact_statement,omitempty"`
	ActionStatement string           `json:"action_statement,omitempty"`
}

// vexVulnerability accepts both the current form ({"name": "CVE-…",
// "aliases": [...]}) and the early string form ("CVE-…").
type vexVulnerability struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
}

func (v *vexVulnerability) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v.Name = s
		return nil
	}
	type plain vexVulnerability
	return json.Unmarshal(b, (*plain)(v))
}

// Product is what a statement is about: an image or a package, by
// identifier (a purl, an image reference), with optional subcomponents.
type Product struct {
	ID            string         `json:"@id"`
	Subcomponents []Subcomponent `json:"subcomponents,omitempty"`
}

// Subcomponent narrows a product to packages inside it.
type Subcomponent struct {
	ID string `json:"@id"`
}

// ReadVEX reads and checks an OpenVEX document.
func ReadVEX(path string) (*VEX, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	v, err := ParseVEX(data)
	if err != nil {
		return nil, fmt.Errorf("VEX document %s: %w", path, err)
	}
	return v, nil
}

// ParseVEX parses an OpenVEX document.
func ParseVEX(data []byte) (*VEX, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxFileSize)
	}
	var v VEX
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !strings.Contains(v.Context, "openvex") {
		return nil, fmt.Errorf("%w: @context %q is not OpenVEX", ErrInvalid, v.Context)
	}
	for i, s := range v.Statements {
		if s.Vulnerability.Name == "" {
			return nil, fmt.Errorf("%w: statement %d names no vulnerability", ErrInvalid, i+1)
		}
		switch s.Status {
		case StatusNotAffected, StatusFixed, StatusAffected, StatusUnderInvestigation:
		default:
			return nil, fmt.Errorf("%w: statement %d (%s): unknown status %q", ErrInvalid, i+1, s.Vulnerability.Name, s.Status)
		}
		if s.Status == StatusNotAffected && s.Justification == "" && s.ImpactStatement == "" {
			return nil, fmt.Errorf("%w: statement %d (%s): not_affected needs a justification or an impact statement", ErrInvalid, i+1, s.Vulnerability.Name)
		}
		if len(s.Products) == 0 {
			return nil, fmt.Errorf("%w: statement %d (%s) names no product", ErrInvalid, i+1, s.Vulnerability.Name)
		}
	}
	return &v, nil
}

// Apply moves the findings that a not_affected or fixed statement covers
// into r.Suppressed. When several statements cover a finding, the last
// one in the document decides, as OpenVEX orders statements by time.
func (v *VEX) Apply(r *model.Report) {
	move(r, "vex", func(f *model.Finding) (string, bool) {
		decided, reason := false, ""
		for _, s := range v.Statements {
			if !s.covers(r, f) {
				continue
			}
			decided = s.Status == StatusNotAffected || s.Status == StatusFixed
			reason = s.reason()
		}
		return reason, decided
	})
}

func (s *Statement) reason() string {
	parts := []string{s.Status}
	for _, p := range []string{s.Justification, s.ImpactStatement} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

func (s *Statement) covers(r *model.Report, f *model.Finding) bool {
	if !findingHasID(f, s.Vulnerability.Name) && !anyID(f, s.Vulnerability.Aliases) {
		return false
	}
	for _, p := range s.Products {
		if purlMatches(p.ID, f.Package.PURL) {
			return true
		}
		if !productIsTarget(p.ID, r.Target) {
			continue
		}
		if len(p.Subcomponents) == 0 {
			return true
		}
		for _, sc := range p.Subcomponents {
			if purlMatches(sc.ID, f.Package.PURL) {
				return true
			}
		}
	}
	return false
}

func anyID(f *model.Finding, ids []string) bool {
	for _, id := range ids {
		if findingHasID(f, id) {
			return true
		}
	}
	return false
}

// productIsTarget reports whether a product identifier names the scanned
// image: its reference as given, or an identifier (such as a pkg:oci purl)
// that carries its digest.
func productIsTarget(id string, t model.Target) bool {
	if id == "" {
		return false
	}
	if id == t.Name {
		return true
	}
	if t.Digest != "" && strings.Contains(id, t.Digest) {
		return true
	}
	// pkg:oci purls escape the ":" of the digest.
	return t.Digest != "" && strings.Contains(id, strings.Replace(t.Digest, ":", "%3A", 1))
}

// purlMatches reports whether the purl pattern names pkg: same type,
// namespace and name, and the same version when the pattern gives one.
// Qualifiers and subpaths are not compared.
func purlMatches(pattern, pkg string) bool {
	if pattern == "" || pkg == "" || !strings.HasPrefix(pattern, "pkg:") {
		return false
	}
	want, err := packageurl.FromString(pattern)
	if err != nil {
		return false
	}
	got, err := packageurl.FromString(pkg)
	if err != nil {
		return false
	}
	if want.Type != got.Type || !strings.EqualFold(want.Namespace, got.Namespace) || want.Name != got.Name {
		return false
	}
	return want.Version == "" || want.Version == got.Version
}
