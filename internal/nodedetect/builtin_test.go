package nodedetect

import (
	"strings"
	"testing"
)

func TestBuiltinRules(t *testing.T) {
	_, cases, events := loadCases(t)
	for i := range cases {
		c := &cases[i]
		t.Run(c.Rule+"/"+c.Name, func(t *testing.T) {
			e := newBuiltinEngine(t, Options{})
			var fired []string
			for j := range events[c] {
				for _, a := range e.Process(&events[c][j], Meta{Node: "node-1", Cluster: "prod", EvidenceID: "ev"}) {
					fired = append(fired, a.RuleID+": "+a.Summary)
					if a.RuleID == c.Rule && !c.Fires {
						t.Errorf("%s fired: %s", c.Rule, a.Summary)
					}
				}
			}
			if c.Fires && !strings.Contains(strings.Join(fired, "\n")+"\n", c.Rule+": ") {
				t.Errorf("%s did not fire; alerts: %q", c.Rule, fired)
			}
		})
	}
}

// TestBuiltinCoverage makes every built-in rule carry a firing and a quiet
// case.
func TestBuiltinCoverage(t *testing.T) {
	_, cases, _ := loadCases(t)
	pos, neg := map[string]bool{}, map[string]bool{}
	for _, c := range cases {
		if c.Fires {
			pos[c.Rule] = true
		} else {
			neg[c.Rule] = true
		}
	}
	rules, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range rules {
		ids[r.ID] = true
		if !pos[r.ID] || !neg[r.ID] {
			t.Errorf("rule %s: positive case %v, negative case %v; want both", r.ID, pos[r.ID], neg[r.ID])
		}
		if r.Description == "" || r.Remediation == "" || len(r.Kinds) == 0 || r.Output == "" {
			t.Errorf("rule %s: want description, remediation, kinds and output", r.ID)
		}
	}
	for id := range pos {
		if !ids[id] {
			t.Errorf("cases name unknown rule %s", id)
		}
	}
}
