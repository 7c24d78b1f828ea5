package vulndb

import (
	"encoding/json"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Score is a record's severity: a rating, and where it came from a CVSS
// vector, the vector and its base score.
type Score struct {
	Rating model.Severity `json:"rating"`
	Score  float64        `json:"score,omitempty"`
	Vector string         `json:"vector,omitempty"`
	// Source says what the rating was taken from: "CVSS_V3", "CVSS_V4",
	// "CVSS_V2", or the record's own field ("database_specific", "Ubuntu").
	Source string `json:"source,omitempty"`
}

// cvssOrder is the preference among vectors a record carries: v3 first, as
// most scanners and advisories report it, then v4, then v2.
var cvssOrder = []string{"CVSS_V3", "CVSS_V4", "CVSS_V2"}

// severityOf works out a record's severity for one affected entry:
// a CVSS vector (record-level, then the entry's own) scored with the
// standard formula, else a rating the record states, else Unknown.
func severityOf(r *Record, a *Affected) Score {
	all := append(append([]Severity(nil), r.Severity...), a.Severity...)
	for _, typ := range cvssOrder {
		for _, s := range all {
			if s.Type != typ {
				continue
			}
			if score, ok := scoreCVSS(typ, s.Score); ok {
				return score
			}
		}
	}
	for _, s := range all {
		if rating, ok := model.ParseSeverity(s.Score); ok && s.Type != "" {
			return Score{Rating: rating, Source: s.Type}
		}
	}
	for _, raw := range []json.RawMessage{a.DatabaseSpec, a.EcosystemSpc, r.DatabaseSpec} {
		var spec struct {
			Severity string `json:"severity"`
		}
		if len(raw) > 0 && json.Unmarshal(raw, &spec) == nil {
			if rating, ok := model.ParseSeverity(spec.Severity); ok {
				return Score{Rating: rating, Source: "database_specific"}
			}
		}
	}
	return Score{Rating: model.SeverityUnknown}
}

// scoreCVSS computes the base score of a CVSS vector of the given type.
func scoreCVSS(typ, vector string) (Score, bool) {
	var score float64
	switch {
	case typ == "CVSS_V2":
		c, err := gocvss20.ParseVector(vector)
		if err != nil {
			return Score{}, false
		}
		score = c.BaseScore()
	case typ == "CVSS_V3" && strings.HasPrefix(vector, "CVSS:3.0/"):
		c, err := gocvss30.ParseVector(vector)
		if err != nil {
			return Score{}, false
		}
		score = c.BaseScore()
	case typ == "CVSS_V3":
		c, err := gocvss31.ParseVector(vector)
		if err != nil {
			return Score{}, false
		}
		score = c.BaseScore()
	case typ == "CVSS_V4":
		c, err := gocvss40.ParseVector(vector)
		if err != nil {
			return Score{}, false
		}
		score = c.Score()
	default:
		return Score{}, false
	}
	return Score{Rating: ratingOfScore(typ, score), Score: score, Vector: vector, Source: typ}, true
}

// ratingOfScore maps a base score to the qualitative scale of its CVSS
// version (v2 has no None or Critical).
func ratingOfScore(typ string, score float64) model.Severity {
	if typ == "CVSS_V2" {
		switch {
		case score >= 7:
			return model.SeverityHigh
		case score >= 4:
			return model.SeverityMedium
		}
		return model.SeverityLow
	}
	switch {
	case score >= 9:
		return model.SeverityCritical
	case score >= 7:
		return model.SeverityHigh
	case score >= 4:
		return model.SeverityMedium
	case score > 0:
		return model.SeverityLow
	}
	return model.SeverityNone
}
