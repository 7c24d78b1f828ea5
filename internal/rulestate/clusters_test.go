package rulestate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestClustersMakeOnceAndRetryFailures(t *testing.T) {
	var c Clusters[*int]
	made := 0
	mk := func() (*int, error) { made++; v := made; return &v, nil }
	broken := errors.New("no rules")
	if _, err := c.Get("prod", func() (*int, error) { return nil, broken }); !errors.Is(err, broken) {
		t.Fatalf("Get = %v, want %v", err, broken)
	}
	var wg sync.WaitGroup
	got := make([]*Engine[*int], 8)
	for i := range got {
		wg.Go(func() {
			e, err := c.Get("prod", mk)
			if err != nil {
				t.Error(err)
			}
			got[i] = e
		})
	}
	wg.Wait()
	for _, e := range got {
		if e != got[0] {
			t.Fatal("Get made more than one engine for one cluster")
		}
	}
	if _, err := c.Get("lab", mk); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	c.Each(func(cluster string, e *int) { seen[cluster] = *e })
	if diff := cmp.Diff(map[string]int{"prod": 1, "lab": 2}, seen); diff != "" {
		t.Errorf("Each (-want +got):\n%s", diff)
	}
}

func TestFlushEveryFlushesOnceMoreWhenStopping(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var flushes atomic.Int32
	var lastCancelled atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		FlushEvery(ctx, time.Millisecond, func(fctx context.Context) {
			flushes.Add(1)
			lastCancelled.Store(fctx.Err() != nil)
		})
	}()
	for flushes.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if lastCancelled.Load() {
		t.Error("the final flush got a cancelled context: it could not save")
	}
}
