package nodedetect

import (
	"container/list"
	"time"
)

// lru is a map bounded to max keys that forgets the least recently used
// key first. It backs per-container correlation state, first-seen keys,
// threshold counters and alert groups.
type lru[V any] struct {
	max   int
	items map[string]*list.Element // of *entry[V]
	order list.List                // front is the most recently used
}

type entry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, items: map[string]*list.Element{}}
}

func (l *lru[V]) len() int { return len(l.items) }

// get returns the entry of k and marks it used.
func (l *lru[V]) get(k string) (*entry[V], bool) {
	el, ok := l.items[k]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(el)
	return el.Value.(*entry[V]), true
}

// add inserts k, which must be absent, as the most recently used key, and
// returns the entry it evicted to stay within max, if any.
func (l *lru[V]) add(k string, v V) (e, evicted *entry[V]) {
	if len(l.items) >= l.max {
		evicted = l.removeOldest()
	}
	e = &entry[V]{key: k, val: v}
	l.items[k] = l.order.PushFront(e)
	return e, evicted
}

func (l *lru[V]) remove(k string) {
	if el, ok := l.items[k]; ok {
		l.order.Remove(el)
		delete(l.items, k)
	}
}

// oldest returns the least recently used entry, or nil.
func (l *lru[V]) oldest() *entry[V] {
	if el := l.order.Back(); el != nil {
		return el.Value.(*entry[V])
	}
	return nil
}

func (l *lru[V]) removeOldest() *entry[V] {
	e := l.oldest()
	if e != nil {
		l.remove(e.key)
	}
	return e
}

// each calls f on the entries from the least to the most recently used;
// f may remove the entry it is given.
func (l *lru[V]) each(f func(*entry[V])) {
	for el := l.order.Back(); el != nil; {
		prev := el.Prev()
		f(el.Value.(*entry[V]))
		el = prev
	}
}

// expire drops the least recently used entries for which stale holds,
// stopping at the first fresh one, but never key.
func (l *lru[V]) expire(key string, stale func(V) bool) {
	for o := l.oldest(); o != nil && o.key != key && stale(o.val); o = l.oldest() {
		l.remove(o.key)
	}
}

// firstSeen records that key was seen at t and reports whether it is new:
// never seen, or not seen for ttl.
func firstSeen(l *lru[time.Time], key string, t time.Time, ttl time.Duration) bool {
	l.expire(key, func(last time.Time) bool { return t.Sub(last) >= ttl })
	if e, ok := l.get(key); ok {
		fresh := t.Sub(e.val) >= ttl
		if t.After(e.val) {
			e.val = t
		}
		return fresh
	}
	l.add(key, t)
	return true
}

// counter holds the times of a threshold key's recent matches within the
// window, at most count of them, oldest first.
type counter struct {
	times []time.Time
	hot   bool // the previous match was above the threshold
}

// last is the time of the most recent match.
func (c *counter) last() time.Time { return c.times[len(c.times)-1] }

// threshold records a match of key at t and returns the weight with which
// it fires: count when the key reaches count matches within window, 1 for
// each further match while it stays there, 0 otherwise.
func threshold(l *lru[*counter], key string, t time.Time, count int, window time.Duration) int {
	l.expire(key, func(c *counter) bool { return t.Sub(c.last()) > window })
	e, ok := l.get(key)
	if !ok {
		e, _ = l.add(key, &counter{times: make([]time.Time, 0, min(count, 16))})
	}
	c := e.val
	// Drop what fell out of the window, and the oldest match when full, so
	// that at most count times are ever kept.
	drop := 0
	for drop < len(c.times) && t.Sub(c.times[drop]) > window {
		drop++
	}
	if len(c.times)-drop == count {
		drop++
	}
	c.times = append(c.times[:0], c.times[drop:]...)
	c.times = append(c.times, t)
	if len(c.times) < count {
		c.hot = false
		return 0
	}
	if c.hot {
		return 1
	}
	c.hot = true
	return count
}
