package model

import "strings"

// Severity is a qualitative severity, on the CVSS scale plus Unknown for
// vulnerabilities whose records give none: unknown is never guessed.
type Severity string

// Severities, lowest to highest.
const (
	SeverityUnknown  Severity = "UNKNOWN"
	SeverityNone     Severity = "NONE"
	SeverityLow      Severity = "LOW"
	SeverityMedium   Severity = "MEDIUM"
	SeverityHigh     Severity = "HIGH"
	SeverityCritical Severity = "CRITICAL"
)

// Rank orders severities: Unknown 0 up to Critical 5.
func (s Severity) Rank() int {
	switch s {
	case SeverityNone:
		return 1
	case SeverityLow:
		return 2
	case SeverityMedium:
		return 3
	case SeverityHigh:
		return 4
	case SeverityCritical:
		return 5
	}
	return 0
}

// ParseSeverity reads a severity name case-insensitively; GitHub's
// "moderate" is medium, Red Hat's "important" is high, Ubuntu's
// "negligible" is low.
func ParseSeverity(s string) (Severity, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return SeverityCritical, true
	case "HIGH", "IMPORTANT":
		return SeverityHigh, true
	case "MEDIUM", "MODERATE":
		return SeverityMedium, true
	case "LOW", "NEGLIGIBLE":
		return SeverityLow, true
	case "NONE":
		return SeverityNone, true
	case "UNKNOWN":
		return SeverityUnknown, true
	}
	return SeverityUnknown, false
}

// Finding is one vulnerability in one installed package.
type Finding struct {
	Package Package `json:"package"`
	// VulnerabilityID is the id the finding is shown under; Aliases are
	// the other ids of the same flaw (CVE, GHSA, GO-…), merged so one flaw
	// shows once per package.
	VulnerabilityID string   `json:"vulnerabilityID"`
	Aliases         []string `json:"aliases,omitempty"`
	Summary         string   `json:"summary,omitempty"`
	Severity        Severity `json:"severity"`
	// CVSSScore and CVSSVector are set when the severity comes from a CVSS
	// vector; SeveritySource says where it came from.
	CVSSScore      float64 `json:"cvssScore,omitempty"`
	CVSSVector     string  `json:"cvssVector,omitempty"`
	SeveritySource string  `json:"severitySource,omitempty"`
	// FixedVersion is the first version without the flaw; empty when no
	// fix is known.
	FixedVersion string   `json:"fixedVersion,omitempty"`
	References   []string `json:"references,omitempty"`
}

// Fixable reports whether a fixed version is known.
func (f Finding) Fixable() bool { return f.FixedVersion != "" }
