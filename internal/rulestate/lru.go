package rulestate

// LRU is a map bounded to a maximum number of keys that forgets the least
// recently used key first.
type LRU[V any] struct {
	max        int
	m          map[string]*Entry[V]
	head, tail *Entry[V] // head is the most recently used
}

// Entry is one key of an LRU. Val may be changed in place.
type Entry[V any] struct {
	Key        string
	Val        V
	prev, next *Entry[V]
}

// NewLRU returns an empty LRU holding at most max keys (at least one).
func NewLRU[V any](max int) *LRU[V] {
	return &LRU[V]{max: max, m: map[string]*Entry[V]{}}
}

// Len is the number of keys held.
func (l *LRU[V]) Len() int { return len(l.m) }

// Get returns the entry of k and marks it used.
func (l *LRU[V]) Get(k string) (*Entry[V], bool) {
	e, ok := l.m[k]
	if ok {
		l.unlink(e)
		l.pushFront(e)
	}
	return e, ok
}

// Add inserts k, which must be absent, as the most recently used key, and
// returns its entry and the entry it evicted to stay within max, if any.
func (l *LRU[V]) Add(k string, v V) (e, evicted *Entry[V]) {
	if len(l.m) >= l.max && l.tail != nil {
		evicted = l.tail
		l.Remove(evicted)
	}
	e = &Entry[V]{Key: k, Val: v}
	l.m[k] = e
	l.pushFront(e)
	return e, evicted
}

// Remove drops e; an entry no longer held is ignored.
func (l *LRU[V]) Remove(e *Entry[V]) {
	if l.m[e.Key] != e {
		return
	}
	l.unlink(e)
	delete(l.m, e.Key)
}

// Oldest returns the least recently used entry, or nil.
func (l *LRU[V]) Oldest() *Entry[V] { return l.tail }

// Each calls f on the entries from the least to the most recently used;
// f may remove the entry it is given.
func (l *LRU[V]) Each(f func(*Entry[V])) {
	for e := l.tail; e != nil; {
		prev := e.prev
		f(e)
		e = prev
	}
}

// Expire drops least recently used entries for which stale holds,
// stopping at the first that is not, and never dropping keep: the key
// about to be used.
func (l *LRU[V]) Expire(keep string, stale func(V) bool) {
	for o := l.tail; o != nil && o.Key != keep && stale(o.Val); o = l.tail {
		l.Remove(o)
	}
}

func (l *LRU[V]) pushFront(e *Entry[V]) {
	e.prev, e.next = nil, l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

func (l *LRU[V]) unlink(e *Entry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}
