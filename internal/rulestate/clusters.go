package rulestate

import (
	"context"
	"sync"
	"time"
)

// Clusters holds a pipeline's engines, one per cluster, each made on first
// use. Unlike the rest of the package it is safe for concurrent use; an
// engine itself is used under its Engine's lock.
type Clusters[E any] struct {
	mu sync.Mutex
	m  map[string]*Engine[E]
}

// Engine is one cluster's engine and the lock that serialises its use.
type Engine[E any] struct {
	sync.Mutex
	E E
}

// Get returns the engine of cluster, making it with make the first time.
// A failure is not remembered: the next Get tries again.
func (c *Clusters[E]) Get(cluster string, make func() (E, error)) (*Engine[E], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[cluster]; e != nil {
		return e, nil
	}
	v, err := make()
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*Engine[E]{}
	}
	e := &Engine[E]{E: v}
	c.m[cluster] = e
	return e, nil
}

// Each calls fn with every cluster's engine, locked, one at a time; a
// cluster whose engine is made meanwhile waits for the next call.
func (c *Clusters[E]) Each(fn func(cluster string, e E)) {
	c.mu.Lock()
	all := make(map[string]*Engine[E], len(c.m))
	for k, v := range c.m {
		all[k] = v
	}
	c.mu.Unlock()
	for cluster, e := range all {
		e.Lock()
		fn(cluster, e.E)
		e.Unlock()
	}
}

// FlushEvery calls flush every interval until ctx is done, then once more
// with a context that is not cancelled, so that the counts alert groups
// gained since the last flush are saved when a pipeline stops.
func FlushEvery(ctx context.Context, every time.Duration, flush func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			flush(ctx)
		}
	}
}
