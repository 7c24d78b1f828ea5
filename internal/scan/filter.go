package scan

import (
	"slices"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Filter narrows a report to what the user asked to see.
type Filter struct {
	// Severities keeps only findings of these severities; empty keeps all.
	Severities []model.Severity
	// IgnoreUnfixed drops findings with no known fix.
	IgnoreUnfixed bool
}

// Apply removes the findings the filter excludes from r.
func (f Filter) Apply(r *model.Report) {
	r.Findings = slices.DeleteFunc(r.Findings, func(x model.Finding) bool {
		if f.IgnoreUnfixed && !x.Fixable() {
			return true
		}
		return len(f.Severities) > 0 && !slices.Contains(f.Severities, x.Severity)
	})
}
