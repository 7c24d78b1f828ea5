package detect

import (
	"time"

	"github.com/bulwarkhq/bulwark/internal/rulestate"
)

// Defaults and bounds of rule state.
const (
	defaultFirstSeenTTL = 24 * time.Hour
	defaultFirstSeenMax = 100_000
	defaultThresholdMax = 10_000
	maxStateKeys        = 1_000_000
	maxThresholdCount   = 10_000
)

// NewState fills in the defaults of s (TTL and Max, see StateSpec) and
// returns empty state for a rule with spec s. s must have passed
// ValidateCommon. Both engines use it, so that a first-seen or threshold
// rule means the same for audit and runtime events.
func NewState(s *StateSpec) *rulestate.State {
	if s.Kind == StateFirstSeen {
		if s.TTL == 0 {
			s.TTL = defaultFirstSeenTTL
		}
		if s.Max == 0 {
			s.Max = defaultFirstSeenMax
		}
		return rulestate.FirstSeen(s.Max, s.TTL)
	}
	if s.Max == 0 {
		s.Max = defaultThresholdMax
	}
	return rulestate.Threshold(s.Max, s.Count, s.Window)
}
