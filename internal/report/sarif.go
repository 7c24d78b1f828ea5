package report

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// SARIF constants. Code scanning services accept version 2.1.0 only.
const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	toolName     = "bulwark"
	toolURI      = "https://github.com/bulwarkhq/bulwark"
)

// The SARIF 2.1.0 subset Bulwark writes: one run, one rule per
// vulnerability, one result per finding.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		Version        string      `json:"version,omitempty"`
		InformationURI string      `json:"informationUri"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string             `json:"id"`
		ShortDescription     sarifMessage       `json:"shortDescription"`
		HelpURI              string             `json:"helpUri,omitempty"`
		DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
		Properties           sarifRuleProps     `json:"properties"`
	}
	sarifConfiguration struct {
		Level string `json:"level"`
	}
	sarifRuleProps struct {
		// SecuritySeverity is a CVSS score as a string; GitHub code
		// scanning ranks alerts by it.
		SecuritySeverity string   `json:"security-severity,omitempty"`
		Tags             []string `json:"tags"`
	}
	sarifResult struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             sarifMessage      `json:"message"`
		Locations           []sarifLocation   `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
	}
	sarifMessage struct {
		Text string `json:"text"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
	}
	sarifPhysicalLocation struct {
		ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
		// Region is required by GitHub code scanning; a package has no
		// line, so it is always the first one.
		Region sarifRegion `json:"region"`
	}
	sarifArtifactLocation struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine int `json:"startLine"`
	}
)

// writeSARIF writes r as a SARIF 2.1.0 log for code scanning dashboards.
func writeSARIF(w io.Writer, r *model.Report, opts Options) error {
	findings := sortedFindings(r.Findings)

	// One rule per vulnerability ID, described by its first finding in
	// report order; rules are listed by ID.
	rules := []sarifRule{}
	seen := map[string]bool{}
	for _, f := range findings {
		if seen[f.VulnerabilityID] {
			continue
		}
		seen[f.VulnerabilityID] = true
		rules = append(rules, sarifRuleFor(f))
	}
	slices.SortFunc(rules, func(a, b sarifRule) int { return cmp.Compare(a.ID, b.ID) })
	index := make(map[string]int, len(rules))
	for i, rule := range rules {
		index[rule.ID] = i
	}

	results := make([]sarifResult, 0, len(findings))
	for _, f := range findings {
		path := f.Package.Path
		if path == "" {
			path = r.Target.Name
		}
		results = append(results, sarifResult{
			RuleID:    f.VulnerabilityID,
			RuleIndex: index[f.VulnerabilityID],
			Level:     sarifLevel(f.Severity),
			Message:   sarifMessage{Text: sarifText(f)},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
				ArtifactLocation: sarifArtifactLocation{URI: relativeURI(path)},
				Region:           sarifRegion{StartLine: 1},
			}}},
			PartialFingerprints: map[string]string{"bulwarkFinding/v1": fingerprint(f)},
		})
	}

	return encodeJSON(w, sarifLog{
		Schema:  sarifSchema,
		Version: sarifVersion,
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           toolName,
				Version:        opts.ToolVersion,
				InformationURI: toolURI,
				Rules:          rules,
			}},
			Results: results,
		}},
	})
}

func sarifRuleFor(f model.Finding) sarifRule {
	rule := sarifRule{
		ID:                   f.VulnerabilityID,
		ShortDescription:     sarifMessage{Text: f.Summary},
		DefaultConfiguration: sarifConfiguration{Level: sarifLevel(f.Severity)},
		Properties:           sarifRuleProps{Tags: []string{"security", "vulnerability", string(severity(f.Severity))}},
	}
	if rule.ShortDescription.Text == "" {
		rule.ShortDescription.Text = f.VulnerabilityID
	}
	if len(f.References) > 0 {
		rule.HelpURI = f.References[0]
	}
	if f.CVSSScore > 0 {
		rule.Properties.SecuritySeverity = strconv.FormatFloat(f.CVSSScore, 'f', 1, 64)
	}
	return rule
}

// sarifLevel maps a severity to a SARIF level: only what needs fixing
// first is an error.
func sarifLevel(s model.Severity) string {
	switch severity(s) {
	case model.SeverityCritical, model.SeverityHigh:
		return "error"
	case model.SeverityMedium:
		return "warning"
	}
	return "note"
}

func sarifText(f model.Finding) string {
	text := fmt.Sprintf("Package %s version %s is vulnerable to %s", f.Package.Name, f.Package.Version, f.VulnerabilityID)
	if f.Fixable() {
		return text + "; fixed in " + f.FixedVersion
	}
	return text + "; no fix is known"
}

// relativeURI writes a slash-separated path as a relative URI reference.
// Escaping matters: "alpine:3.19" would otherwise read as a URI with the
// scheme "alpine", which code scanning rejects; url.URL writes it as
// "./alpine:3.19".
func relativeURI(path string) string {
	return (&url.URL{Path: path}).String()
}

// fingerprint identifies a finding across runs, so a dashboard keeps one
// alert for it while the package is upgraded to another vulnerable
// version.
func fingerprint(f model.Finding) string {
	return shortHash(f.VulnerabilityID, f.Package.Ecosystem, f.Package.Name, f.Package.Path)
}
