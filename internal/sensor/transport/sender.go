package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

const (
	// firstBackoff is the wait after a first failure; it doubles up to
	// Options.MaxBackoff.
	firstBackoff = 250 * time.Millisecond
	// maxRetryAfter bounds how long a server's Retry-After can hold the
	// sender.
	maxRetryAfter = 10 * time.Minute
)

// retryError is a failure worth retrying, after the server's Retry-After
// if it gave one.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// sender is the state of the goroutine that empties the spool.
type sender struct {
	c       *Client
	cred    *credential
	backoff backoff
	// reenrolled says the credential was replaced after a 401 and has
	// not been accepted yet: a second 401 means the token is no good.
	reenrolled bool
	failures   int
	failedAt   time.Time
	lastErr    string
}

// runSender sends the spool, oldest batch first, until ctx ends.
func (c *Client) runSender(ctx context.Context, cred *credential) {
	defer close(c.senderDone)
	s := &sender{c: c, cred: cred, backoff: backoff{max: c.opts.MaxBackoff}}
	// Enrol at once rather than with the first batch: a sensor on a quiet
	// node shows up as enrolled, and a bad token is reported, at start.
	for s.cred == nil && ctx.Err() == nil {
		if err := s.enroll(ctx); err != nil {
			sleep(ctx, s.failed(ctx, err))
		}
	}
	for ctx.Err() == nil {
		e, ok := c.spool.oldest()
		if !ok {
			select {
			case <-c.spooled:
			case <-ctx.Done():
			}
			continue
		}
		if wait := s.step(ctx, e); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
}

// enroll trades the token for a credential.
func (s *sender) enroll(ctx context.Context) error {
	cred, err := s.c.enroll(ctx)
	if err != nil {
		return err
	}
	s.cred = cred
	s.backoff.reset()
	s.c.stats.enrolments.Add(1)
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// step tries to deliver the oldest batch once and returns how long to wait
// before the next try.
func (s *sender) step(ctx context.Context, e spoolEntry) time.Duration {
	c := s.c
	if s.cred == nil {
		if err := s.enroll(ctx); err != nil {
			return s.failed(ctx, err)
		}
	}
	data, events, err := c.spool.load(e)
	if err != nil {
		c.stats.corrupt.Add(1)
		c.log.Error("setting aside a spool file that cannot be sent", "file", spoolName(e.seq), "bytes", e.size, "error", err)
		if err := c.spool.setAside(e); err != nil {
			c.log.Error("setting aside a corrupt spool file", "error", err)
		}
		c.leftSpool()
		return 0
	}
	status, answer, err := c.post(ctx, s.cred, data)
	if err != nil {
		return s.failed(ctx, err)
	}
	switch {
	case status >= 200 && status <= 299:
		var a struct {
			Duplicate bool `json:"duplicate"`
		}
		if json.Unmarshal(answer, &a) == nil && a.Duplicate {
			c.stats.duplicates.Add(1)
		}
		c.stats.sentBatches.Add(1)
		c.stats.sentEvents.Add(uint64(events))
		s.delivered(e)
		return 0
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		if s.salvage(e, data, status == http.StatusBadRequest) {
			return 0
		}
		// Sending it again would fail forever and block the spool.
		c.stats.rejected.Add(uint64(events))
		c.log.Error("the server refused a batch for good; discarding it",
			"file", spoolName(e.seq), "events", events, "status", status, "answer", serverMessage(answer))
		s.delivered(e)
		return 0
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		if !s.reenrolled && c.opts.hasToken() {
			s.reenrolled = true
			s.cred = nil
			c.log.Warn("the server refused the sensor's credential; enrolling again", "status", status)
			return 0
		}
		return s.failed(ctx, fmt.Errorf("sending batch: %w: HTTP %d%s", errRefused, status, serverMessage(answer)))
	}
	return s.failed(ctx, &retryError{err: fmt.Errorf("sending batch: HTTP %d%s", status, serverMessage(answer))})
}

// salvage handles a batch the server refused for good. When invalid is
// set (HTTP 400) it drops the events that fail wire's validation (one bad
// event must not cost the other 999), counts them as rejected, and
// rewrites the batch for an immediate retry. It reports false when no
// event was at fault, and the batch is to be discarded whole.
func (s *sender) salvage(e spoolEntry, data []byte, invalid bool) bool {
	c := s.c
	b, err := decodeUnchecked(data)
	if err != nil {
		return false
	}
	valid := b.Events
	var firstErr error
	if invalid {
		valid = b.Events[:0]
		for i := range b.Events {
			if err := b.Events[i].Validate(); err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("event %d: %w", i, err)
				}
				continue
			}
			valid = append(valid, b.Events[i])
		}
	}
	bad := len(b.Events) - len(valid)
	if bad == 0 {
		// The batch is refused for another reason. Its Dropped count
		// would be lost with it; the next batch carries it instead.
		if b.Dropped > 0 {
			c.droppedSince.Add(b.Dropped)
			c.armTimer()
		}
		return false
	}
	b.Events = valid
	c.stats.rejected.Add(uint64(bad))
	c.log.Error("discarding sensor events the server found invalid", "events", bad, "file", spoolName(e.seq), "first", firstErr)
	var buf bytes.Buffer
	if err := wire.Encode(&buf, b); err != nil {
		c.log.Error("re-encoding a salvaged batch", "error", err)
		c.stats.rejected.Add(uint64(len(valid)))
		s.delivered(e)
		return true
	}
	if err := c.spool.replace(e, buf.Bytes(), len(valid)); err != nil {
		c.log.Error("rewriting a salvaged batch", "error", err)
		c.stats.rejected.Add(uint64(len(valid)))
		s.delivered(e)
	}
	return true
}

// decodeUnchecked decodes a spool file like wire.DecodeBatch, within the
// same bounds, but without validating it: salvage needs the events that
// validation would refuse.
func decodeUnchecked(data []byte) (*wire.Batch, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompressing batch: %w", err)
	}
	defer zr.Close()
	zr.Multistream(false)
	var b wire.Batch
	if err := json.NewDecoder(io.LimitReader(zr, wire.MaxBatchBytes)).Decode(&b); err != nil {
		return nil, fmt.Errorf("decoding batch: %w", err)
	}
	return &b, nil
}

// delivered removes a batch the server is done with.
func (s *sender) delivered(e spoolEntry) {
	c := s.c
	if err := c.spool.remove(e); err != nil {
		c.log.Error("removing a delivered batch from the spool", "error", err)
	}
	c.spoolFull.Store(false)
	c.leftSpool()
	s.reenrolled = false
	s.backoff.reset()
	c.stats.unauthorized.Store(false)
	if s.failures > 0 {
		c.log.Info("delivering to the server again", "failedAttempts", s.failures, "after", time.Since(s.failedAt).Round(time.Second))
		s.failures, s.lastErr = 0, ""
	}
}

// leftSpool wakes a Close waiting for the spool to empty.
func (c *Client) leftSpool() {
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// failed records a failed attempt and returns how long to wait.
func (s *sender) failed(ctx context.Context, err error) time.Duration {
	c := s.c
	if ctx.Err() != nil {
		return 0 // closing: not a failure worth reporting
	}
	c.stats.sendErrors.Add(1)
	c.stats.mu.Lock()
	c.stats.lastError, c.stats.lastAt = err.Error(), time.Now()
	c.stats.mu.Unlock()
	if s.failures == 0 {
		s.failedAt = time.Now()
	}
	s.failures++

	if errors.Is(err, errRefused) || errors.Is(err, errNoToken) {
		// Nothing to gain from retrying soon; events keep spooling
		// meanwhile. With a token, the next try enrols afresh.
		c.stats.unauthorized.Store(true)
		if c.opts.hasToken() {
			s.cred = nil
		}
		c.log.Error("the server refuses this sensor; spooling events and trying again later",
			"error", err, "retryIn", c.opts.ReenrollInterval)
		return c.opts.ReenrollInterval
	}
	wait := s.backoff.next()
	var re *retryError
	if errors.As(err, &re) && re.after > 0 {
		wait = re.after
	}
	// A long outage would otherwise log every retry: the first failure
	// and each change of error are warnings, repeats are debug.
	if msg := err.Error(); msg != s.lastErr {
		s.lastErr = msg
		c.log.Warn("cannot deliver to the server; retrying", "error", err, "retryIn", wait.Round(time.Millisecond))
	} else {
		c.log.Debug("cannot deliver to the server; retrying", "error", err, "retryIn", wait.Round(time.Millisecond))
	}
	return wait
}

// post sends one encoded batch and returns the status and the (bounded)
// answer.
func (c *Client) post(ctx context.Context, cred *credential, data []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+IngestPath, bytes.NewReader(data))
	if err != nil {
		return 0, nil, fmt.Errorf("building ingest request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+cred.Credential)
	req.Header.Set("Content-Type", wire.ContentType)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("sending batch: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallFile))
	if err != nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// The server may or may not have stored the batch; sending it
		// again is safe, its ID deduplicates it.
		return 0, nil, fmt.Errorf("reading ingest answer: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return 0, nil, &retryError{err: fmt.Errorf("sending batch: HTTP %d%s", resp.StatusCode, serverMessage(answer)), after: retryAfter(resp)}
	}
	return resp.StatusCode, answer, nil
}

// retryAfter reads a Retry-After header, in seconds or as a date, bounded.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(min(max(n, 0), int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return max(0, min(d, maxRetryAfter))
}

// backoff is exponential with jitter: the wait doubles up to max, and a
// random half of it spreads out the sensors of a fleet that lost the
// server at the same moment.
type backoff struct {
	max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = min(firstBackoff, b.max)
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	if b.cur <= 1 {
		return b.cur
	}
	return b.cur/2 + rand.N(b.cur/2)
}

func (b *backoff) reset() { b.cur = 0 }
