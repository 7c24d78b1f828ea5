package detect

import "time"

// lru is a map bounded to max keys that forgets the least recently used
// key first. It backs first-seen keys, threshold counters, alert groups and
// the streaming-request audit IDs.
type lru[V any] struct {
	max        int
	m          map[string]*lruNode[V]
	head, tail *lruNode[V] // head is the most recently used
}

type lruNode[V any] struct {
	key        string
	val        V
	prev, next *lruNode[V]
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, m: map[string]*lruNode[V]{}}
}

func (l *lru[V]) len() int { return len(l.m) }

// get returns the node of k and marks it used.
func (l *lru[V]) get(k string) (*lruNode[V], bool) {
	n, ok := l.m[k]
	if ok {
		l.unlink(n)
		l.pushFront(n)
	}
	return n, ok
}

// add inserts k, which must be absent, as the most recently used key, and
// returns the node it evicted to stay within max, if any.
func (l *lru[V]) add(k string, v V) (n, evicted *lruNode[V]) {
	if len(l.m) >= l.max && l.tail != nil {
		evicted = l.tail
		l.remove(evicted)
	}
	n = &lruNode[V]{key: k, val: v}
	l.m[k] = n
	l.pushFront(n)
	return n, evicted
}

func (l *lru[V]) remove(n *lruNode[V]) {
	l.unlink(n)
	delete(l.m, n.key)
}

// oldest returns the least recently used node, or nil.
func (l *lru[V]) oldest() *lruNode[V] { return l.tail }

func (l *lru[V]) pushFront(n *lruNode[V]) {
	n.prev, n.next = nil, l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}

func (l *lru[V]) unlink(n *lruNode[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

// firstSeen records that key was seen at t and reports whether it is new:
// never seen, or not seen for ttl. Keys idle for longer than ttl are dropped
// as the stream moves on.
func firstSeen(l *lru[time.Time], key string, t time.Time, ttl time.Duration) bool {
	for o := l.oldest(); o != nil && t.Sub(o.val) >= ttl && o.key != key; o = l.oldest() {
		l.remove(o)
	}
	if n, ok := l.get(key); ok {
		fresh := t.Sub(n.val) >= ttl
		if t.After(n.val) {
			n.val = t
		}
		return fresh
	}
	l.add(key, t)
	return true
}

// counter holds the times of a threshold key's most recent matches, at
// most Count of them, in a ring.
type counter struct {
	times []int64 // unix nanoseconds
	next  int     // where the next time goes once the ring is full
	last  time.Time
	hot   bool // the previous match was above the threshold
}

// threshold records a match of key at t and returns the weight with which
// it fires: count when the key reaches count matches within window, 1 for
// each further match while it stays there, 0 otherwise.
func threshold(l *lru[*counter], key string, t time.Time, count int, window time.Duration) int {
	for o := l.oldest(); o != nil && t.Sub(o.val.last) > window && o.key != key; o = l.oldest() {
		l.remove(o)
	}
	n, ok := l.get(key)
	if !ok {
		n, _ = l.add(key, &counter{times: make([]int64, 0, min(count, 16))})
	}
	c := n.val
	if t.After(c.last) {
		c.last = t
	}
	ns := t.UnixNano()
	if len(c.times) < count {
		c.times = append(c.times, ns)
		if len(c.times) < count {
			return 0
		}
	} else {
		c.times[c.next] = ns
		c.next = (c.next + 1) % count
	}
	// The ring holds the last count matches; the oldest is at next.
	oldest := c.times[c.next]
	if ns-oldest > int64(window) {
		c.hot = false
		return 0
	}
	if c.hot {
		return 1
	}
	c.hot = true
	return count
}
