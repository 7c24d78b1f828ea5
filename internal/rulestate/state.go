package rulestate

import "time"

// State is the memory of one stateful rule: the keys it has seen
// (first-seen) or the recent matches of each key (threshold). See
// detect.StateSpec for the rule semantics.
type State struct {
	seen     *LRU[time.Time] // first-seen: when each key was last seen
	ttl      time.Duration
	counters *LRU[*counter] // threshold
	count    int
	window   time.Duration
}

// FirstSeen returns the state of a rule that fires the first time a key
// is seen, or when it is seen again after ttl without. It remembers at
// most max keys.
func FirstSeen(max int, ttl time.Duration) *State {
	return &State{seen: NewLRU[time.Time](max), ttl: ttl}
}

// Threshold returns the state of a rule that fires when a key matches at
// least count times within window. It remembers at most max keys, each
// with at most count times.
func Threshold(max, count int, window time.Duration) *State {
	return &State{counters: NewLRU[*counter](max), count: count, window: window}
}

// Len is the number of keys remembered.
func (s *State) Len() int {
	if s.seen != nil {
		return s.seen.Len()
	}
	return s.counters.Len()
}

// Observe records a match of key at t and returns the weight with which
// the rule fires, 0 meaning it does not. A first-seen rule fires with
// weight 1. A threshold rule fires with count when the key reaches count
// matches within window, then with 1 for each further match while it
// stays there.
func (s *State) Observe(key string, t time.Time) int {
	if s.seen != nil {
		if s.firstSeen(key, t) {
			return 1
		}
		return 0
	}
	return s.threshold(key, t)
}

// firstSeen records that key was seen at t and reports whether it is new:
// never seen, or not seen for ttl. Keys idle for longer than ttl are
// dropped as the stream moves on.
func (s *State) firstSeen(key string, t time.Time) bool {
	s.seen.Expire(key, func(last time.Time) bool { return t.Sub(last) >= s.ttl })
	if e, ok := s.seen.Get(key); ok {
		fresh := t.Sub(e.Val) >= s.ttl
		if t.After(e.Val) {
			e.Val = t
		}
		return fresh
	}
	s.seen.Add(key, t)
	return true
}

// counter holds the times of a threshold key's most recent matches, at
// most count of them, in a ring: no allocation once it is full.
type counter struct {
	times []int64 // unix nanoseconds
	next  int     // where the next time goes once the ring is full
	last  time.Time
	hot   bool // the previous match was above the threshold
}

func (s *State) threshold(key string, t time.Time) int {
	s.counters.Expire(key, func(c *counter) bool { return t.Sub(c.last) > s.window })
	e, ok := s.counters.Get(key)
	if !ok {
		e, _ = s.counters.Add(key, &counter{times: make([]int64, 0, min(s.count, 16))})
	}
	c := e.Val
	if t.After(c.last) {
		c.last = t
	}
	ns := t.UnixNano()
	if len(c.times) < s.count {
		c.times = append(c.times, ns)
		if len(c.times) < s.count {
			return 0
		}
	} else {
		c.times[c.next] = ns
		c.next = (c.next + 1) % s.count
	}
	// The ring holds the last count matches; the oldest is at next.
	if ns-c.times[c.next] > int64(s.window) {
		c.hot = false
		return 0
	}
	if c.hot {
		return 1
	}
	c.hot = true
	return s.count
}
