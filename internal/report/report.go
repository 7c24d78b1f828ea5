// Package report writes a scan's model.Report in the formats Bulwark
// offers: a table for people, Bulwark's own JSON schema, SARIF for code
// scanning dashboards, and CycloneDX and SPDX documents for SBOM tooling.
//
// It owns presentation only. It does not decide what is found, matched or
// suppressed; every writer shows the report it is given, in one
// deterministic order, so the same report always gives the same bytes.
package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Format names, as the --format flag takes them.
const (
	Table     = "table"
	JSON      = "json"
	SARIF     = "sarif"
	CycloneDX = "cyclonedx"
	SPDX      = "spdx"
)

// ErrUnknownFormat is returned by Write for a format it does not offer.
var ErrUnknownFormat = errors.New("unknown report format")

// Options tune the writers; the zero value is fine for all of them.
type Options struct {
	// Color adds ANSI colors to severities. Only the table uses it.
	Color bool
	// ToolVersion is Bulwark's version, recorded as the producing tool in
	// SARIF, CycloneDX and SPDX documents.
	ToolVersion string
}

// writers lists every format: what Bulwark can write is read here.
var writers = []struct {
	name  string
	write func(io.Writer, *model.Report, Options) error
}{
	{Table, writeTable},
	{JSON, writeJSON},
	{SARIF, writeSARIF},
	{CycloneDX, writeCycloneDX},
	{SPDX, writeSPDX},
}

// Formats returns the format names Write accepts, the default first.
func Formats() []string {
	names := make([]string, len(writers))
	for i, w := range writers {
		names[i] = w.name
	}
	return names
}

// Write writes r to w in the named format. An empty format is Table.
func Write(w io.Writer, format string, r *model.Report, opts Options) error {
	if format == "" {
		format = Table
	}
	if r == nil {
		return fmt.Errorf("writing %s report: no report", format)
	}
	for _, wr := range writers {
		if wr.name != format {
			continue
		}
		if err := wr.write(w, r, opts); err != nil {
			return fmt.Errorf("writing %s report: %w", format, err)
		}
		return nil
	}
	return fmt.Errorf("%w %q: want one of %s", ErrUnknownFormat, format, strings.Join(Formats(), ", "))
}

// comparePackages orders packages by name, then version, ecosystem, path
// and layer, so that packages with equal names still sort the same way on
// every run.
func comparePackages(a, b model.Package) int {
	return cmp.Or(
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.Ecosystem, b.Ecosystem),
		cmp.Compare(a.Path, b.Path),
		cmp.Compare(a.Layer, b.Layer),
	)
}

// compareFindings orders findings by package, then most severe first, then
// by vulnerability ID.
func compareFindings(a, b model.Finding) int {
	return cmp.Or(
		comparePackages(a.Package, b.Package),
		cmp.Compare(severity(b.Severity).Rank(), severity(a.Severity).Rank()),
		cmp.Compare(a.VulnerabilityID, b.VulnerabilityID),
	)
}

// sortedFindings returns a sorted copy of findings; the report is never
// changed.
func sortedFindings(findings []model.Finding) []model.Finding {
	out := slices.Clone(findings)
	slices.SortStableFunc(out, compareFindings)
	return out
}

// sortedPackages returns a sorted copy of ps.
func sortedPackages(ps []model.Package) []model.Package {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, comparePackages)
	return out
}

// severity returns s as one of the model's severities: a finding with a
// missing or unrecognised severity is shown as UNKNOWN, which is what it
// means, never as whatever text it carries.
func severity(s model.Severity) model.Severity {
	parsed, _ := model.ParseSeverity(string(s))
	return parsed
}

// documentUUID identifies the document written for r. It is derived from
// the target and the scan time rather than drawn at random, so writing the
// same report twice gives the same document; two scans differ in time.
func documentUUID(r *model.Report) uuid.UUID {
	name := strings.Join([]string{
		r.Target.Kind, r.Target.Name, r.Target.Digest,
		r.CreatedAt.UTC().Format(time.RFC3339Nano),
	}, "\x00")
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(name))
}

// shortHash is a 64-bit hex digest of fields, for stable IDs and
// fingerprints; fields are separated so ("ab", "c") and ("a", "bc") differ.
func shortHash(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// timestamp formats t in UTC to the second, as SBOM formats want it, or
// returns "" for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
