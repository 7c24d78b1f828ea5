package vulndb

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"
)

// ErrUnparsableVersion marks an installed version that cannot be compared:
// its ecosystem's rules cannot read it, or no rules cover the ecosystem.
// Such a package cannot be matched by range and is reported as unmatched.
var ErrUnparsableVersion = errors.New("version cannot be compared in its ecosystem")

// versionCache remembers parsed versions during one match: the same
// boundary versions ("0", common fixes) recur across records, and parsing
// allocates.
type versionCache map[versionKey]semantic.Version

type versionKey struct{ rangeType, ecosystem, version string }

// parse reads s as a version of ecosystem, or as a semantic version in a
// SEMVER range.
func (c versionCache) parse(ecosystem, rangeType, s string) (semantic.Version, error) {
	base, _, _ := strings.Cut(ecosystem, ":")
	key := versionKey{rangeType, base, s}
	if v, ok := c[key]; ok {
		return v, nil
	}
	var v semantic.Version
	var err error
	if rangeType == RangeSemver {
		v = semantic.ParseSemverVersion(strings.TrimPrefix(s, "v"))
	} else if v, err = semantic.Parse(s, base); err != nil {
		return nil, err
	}
	if c != nil {
		c[key] = v
	}
	return v, nil
}

// affects reports whether version of a package in ecosystem is inside the
// affected versions of e, and the version that fixes it there (empty when
// no fix is known). Ranges of type GIT say nothing about package versions
// and are not used. cache may be nil.
func (e *entry) affects(cache versionCache, ecosystem, version string) (bool, string, error) {
	if slices.Contains(e.Versions, version) {
		return true, e.fixAfter(cache, ecosystem, version), nil
	}
	for i := range e.Ranges {
		hit, fixed, err := inRange(cache, ecosystem, version, &e.Ranges[i])
		if err != nil {
			return false, "", err
		}
		if hit {
			return true, fixed, nil
		}
	}
	return false, "", nil
}

// fixAfter finds the fixed version for a version listed explicitly.
func (e *entry) fixAfter(cache versionCache, ecosystem, version string) string {
	for i := range e.Ranges {
		if _, fixed, err := inRange(cache, ecosystem, version, &e.Ranges[i]); err == nil && fixed != "" {
			return fixed
		}
	}
	return ""
}

type parsedEvent struct {
	Event
	v semantic.Version // nil for introduced "0"
}

// inRange evaluates one range the way the OSV schema defines it: events
// sorted by version; introduced opens, fixed closes at that version,
// last_affected closes after it.
func inRange(cache versionCache, ecosystem, version string, r *Range) (bool, string, error) {
	if r.Type != RangeEcosystem && r.Type != RangeSemver {
		return false, "", nil
	}
	v, err := cache.parse(ecosystem, r.Type, version)
	if err != nil {
		return false, "", fmt.Errorf("%w: %q in %s: %w", ErrUnparsableVersion, version, ecosystem, err)
	}
	events := make([]parsedEvent, 0, len(r.Events))
	for _, e := range r.Events {
		pe := parsedEvent{Event: e}
		s := e.Introduced + e.Fixed + e.LastAffected
		if e.Limit != "" || s == "" {
			continue // limit bounds GIT ranges only
		}
		if e.Introduced != "0" {
			if pe.v, err = cache.parse(ecosystem, r.Type, s); err != nil {
				continue // an event we cannot read cannot move the boundary
			}
		}
		events = append(events, pe)
	}
	slices.SortStableFunc(events, func(a, b parsedEvent) int {
		switch {
		case a.v == nil && b.v == nil:
			return 0
		case a.v == nil:
			return -1
		case b.v == nil:
			return 1
		}
		c, _ := a.v.Compare(b.v)
		return c
	})
	affected := false
	for _, e := range events {
		cmp := -1 // how v compares to the event's version; "0" is below all
		if e.v != nil {
			cmp, _ = e.v.Compare(v)
			cmp = -cmp
		} else {
			cmp = 1
		}
		switch {
		case e.Introduced != "":
			if cmp >= 0 {
				affected = true
			}
		case e.Fixed != "":
			if cmp >= 0 {
				affected = false
			} else if affected {
				return true, e.Fixed, nil
			}
		case e.LastAffected != "":
			if cmp > 0 {
				affected = false
			} else if affected {
				// No fixed version follows a last_affected in the
				// same interval: the fix is unknown.
				return true, "", nil
			}
		}
	}
	return affected, "", nil
}
