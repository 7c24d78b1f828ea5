// Package suppress applies the user's decisions about findings: entries in
// an ignore file (a vulnerability, optionally narrowed to a package or
// path, with a reason and an expiry) and OpenVEX statements (not_affected
// and fixed). A suppressed finding leaves the report's findings for its
// suppressed list, with the reason, so the report says what was hidden
// and why.
package suppress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// MaxFileSize bounds an ignore file or a VEX document.
const MaxFileSize = 16 << 20

// ErrInvalid marks an ignore file or VEX document that cannot be used.
var ErrInvalid = errors.New("invalid suppression file")

// IgnoreFile is a list of findings the user has decided to accept:
//
//	ignore:
//	  - id: CVE-2024-2398          # a vulnerability id or any of its aliases
//	    package: curl              # optional: only in this package (name or purl)
//	    path: var/lib/dpkg/status  # optional: only in packages read from this file
//	    reason: not reachable, we do not use HTTP/2
//	    expires: 2026-12-31        # optional: stops applying after this day (UTC)
type IgnoreFile struct {
	Ignore []IgnoreEntry `yaml:"ignore"`
}

// IgnoreEntry is one accepted vulnerability.
type IgnoreEntry struct {
	ID      string `yaml:"id"`
	Package string `yaml:"package"`
	Path    string `yaml:"path"`
	Reason  string `yaml:"reason"`
	Expires string `yaml:"expires"`

	expires time.Time
}

// ReadIgnoreFile reads and checks an ignore file.
func ReadIgnoreFile(path string) (*IgnoreFile, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	f, err := ParseIgnoreFile(data)
	if err != nil {
		return nil, fmt.Errorf("ignore file %s: %w", path, err)
	}
	return f, nil
}

// ParseIgnoreFile parses an ignore file. Every entry needs an id and a
// reason; unknown keys are errors, so a typo does not widen or narrow an
// entry silently.
func ParseIgnoreFile(data []byte) (*IgnoreFile, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxFileSize)
	}
	var f IgnoreFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for i := range f.Ignore {
		e := &f.Ignore[i]
		if strings.TrimSpace(e.ID) == "" {
			return nil, fmt.Errorf("%w: entry %d has no id", ErrInvalid, i+1)
		}
		if strings.TrimSpace(e.Reason) == "" {
			return nil, fmt.Errorf("%w: entry %d (%s) has no reason: say why it is accepted", ErrInvalid, i+1, e.ID)
		}
		if e.Expires != "" {
			t, err := time.Parse(time.DateOnly, e.Expires)
			if err != nil {
				return nil, fmt.Errorf("%w: entry %d (%s): expires %q is not a date (YYYY-MM-DD)", ErrInvalid, i+1, e.ID, e.Expires)
			}
			e.expires = t
		}
	}
	return &f, nil
}

// expired reports whether the entry's last day has passed at now.
func (e *IgnoreEntry) expired(now time.Time) bool {
	return !e.expires.IsZero() && now.UTC().After(e.expires.Add(24*time.Hour))
}

func (e *IgnoreEntry) matches(f *model.Finding) bool {
	if !findingHasID(f, e.ID) {
		return false
	}
	if e.Package != "" && e.Package != f.Package.Name && !purlMatches(e.Package, f.Package.PURL) {
		return false
	}
	return e.Path == "" || e.Path == f.Package.Path
}

// Apply moves the findings the file accepts into r.Suppressed. Expired
// entries do not apply; each one adds a warning to the report.
func (f *IgnoreFile) Apply(r *model.Report, now time.Time) {
	var live []*IgnoreEntry
	for i := range f.Ignore {
		e := &f.Ignore[i]
		if e.expired(now) {
			r.Warnings = append(r.Warnings, fmt.Sprintf("ignore entry for %s expired on %s; it no longer applies", e.ID, e.Expires))
			continue
		}
		live = append(live, e)
	}
	move(r, "ignore-file", func(x *model.Finding) (string, bool) {
		for _, e := range live {
			if e.matches(x) {
				reason := e.Reason
				if e.Expires != "" {
					reason += " (until " + e.Expires + ")"
				}
				return reason, true
			}
		}
		return "", false
	})
}

// move takes the findings match selects out of r.Findings into
// r.Suppressed with the reason it gives.
func move(r *model.Report, source string, match func(*model.Finding) (string, bool)) {
	kept := r.Findings[:0]
	for i := range r.Findings {
		f := r.Findings[i]
		if reason, ok := match(&f); ok {
			r.Suppressed = append(r.Suppressed, model.Suppressed{Finding: f, Source: source, Reason: reason})
			continue
		}
		kept = append(kept, f)
	}
	r.Findings = kept
}

func findingHasID(f *model.Finding, id string) bool {
	return strings.EqualFold(f.VulnerabilityID, id) || slices.ContainsFunc(f.Aliases, func(a string) bool { return strings.EqualFold(a, id) })
}

func readBounded(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrInvalid, MaxFileSize)
	}
	return data, nil
}
