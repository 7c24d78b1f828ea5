package vulndb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MaxRecordSize bounds one OSV record. The largest published records are a
// few hundred kilobytes (long version lists); anything past this is not a
// record.
const MaxRecordSize = 8 << 20

// ErrInvalidRecord marks an OSV record that cannot be used.
var ErrInvalidRecord = errors.New("invalid OSV record")

// Record is an OSV vulnerability record (https://ossf.github.io/osv-schema/),
// the parts of it Bulwark uses.
type Record struct {
	SchemaVersion string          `json:"schema_version,omitempty"`
	ID            string          `json:"id"`
	Modified      time.Time       `json:"modified"`
	Published     *time.Time      `json:"published,omitempty"`
	Withdrawn     *time.Time      `json:"withdrawn,omitempty"`
	Aliases       []string        `json:"aliases,omitempty"`
	Upstream      []string        `json:"upstream,omitempty"`
	Related       []string        `json:"related,omitempty"`
	Summary       string          `json:"summary,omitempty"`
	Details       string          `json:"details,omitempty"`
	Severity      []Severity      `json:"severity,omitempty"`
	Affected      []Affected      `json:"affected,omitempty"`
	References    []Reference     `json:"references,omitempty"`
	DatabaseSpec  json.RawMessage `json:"database_specific,omitempty"`
}

// Severity is a scored severity: a CVSS vector or an ecosystem's own score.
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected lists the affected versions of one package.
type Affected struct {
	Package      Package         `json:"package"`
	Severity     []Severity      `json:"severity,omitempty"`
	Ranges       []Range         `json:"ranges,omitempty"`
	Versions     []string        `json:"versions,omitempty"`
	EcosystemSpc json.RawMessage `json:"ecosystem_specific,omitempty"`
	DatabaseSpec json.RawMessage `json:"database_specific,omitempty"`
}

// Package names a package in an ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range types.
const (
	RangeEcosystem = "ECOSYSTEM"
	RangeSemver    = "SEMVER"
	RangeGit       = "GIT"
)

// Range is a sequence of events that bound affected versions.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
}

// Event is one boundary of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link about the vulnerability.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// ParseRecord decodes and checks one OSV record.
func ParseRecord(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidRecord, len(data), MaxRecordSize)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the record", ErrInvalidRecord)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// check rejects records that would match wrongly or not at all.
func (r *Record) check() error {
	if r.ID == "" || len(r.ID) > 256 || strings.ContainsAny(r.ID, "\x00/\\") {
		return fmt.Errorf("%w: bad id %q", ErrInvalidRecord, truncate(r.ID, 64))
	}
	for i, a := range r.Affected {
		if a.Package.Ecosystem == "" || a.Package.Name == "" {
			return fmt.Errorf("%w: %s: affected[%d] has no package ecosystem or name", ErrInvalidRecord, r.ID, i)
		}
		if strings.ContainsRune(a.Package.Ecosystem+a.Package.Name, 0) {
			return fmt.Errorf("%w: %s: affected[%d] package contains NUL", ErrInvalidRecord, r.ID, i)
		}
		for j, rg := range a.Ranges {
			for k, e := range rg.Events {
				if n := e.count(); n != 1 {
					return fmt.Errorf("%w: %s: affected[%d].ranges[%d].events[%d] sets %d fields, want 1", ErrInvalidRecord, r.ID, i, j, k, n)
				}
			}
		}
	}
	return nil
}

func (e Event) count() int {
	n := 0
	for _, s := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
		if s != "" {
			n++
		}
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// idFromJSON pulls the id out of data that failed to parse as a record, so
// a rejected record can still be reported by id.
func idFromJSON(data []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &v) == nil {
		return truncate(v.ID, 64)
	}
	// Broken JSON: look for the id field in the raw text.
	if m := rawID.FindSubmatch(data[:min(len(data), 4096)]); m != nil {
		return string(m[1])
	}
	return ""
}

var rawID = regexp.MustCompile(`"id"\s*:\s*"([A-Za-z0-9._:-]{1,64})"`)
