package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/version"
)

// ErrTooLarge marks a response larger than the caller allows.
var ErrTooLarge = errors.New("response too large")

// StatusError is an HTTP response other than 200 OK.
type StatusError struct {
	URL    string
	Code   int
	Status string
}

// Error leaves the URL out: Client.Get's errors name it.
func (e *StatusError) Error() string { return "server answered " + e.Status }

// Client fetches OSV exports over HTTP. It is one http.Client with dial,
// TLS and response-header timeouts; a transfer that stalls is abandoned;
// transient failures (5xx, 408, 429, network errors, stalls) are retried a
// bounded number of times with exponential backoff; bodies are bounded by
// the caller. A Client is safe for concurrent use.
type Client struct {
	// HTTP sends the requests.
	HTTP *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Attempts bounds the tries of one request, the first included.
	Attempts int
	// Backoff is the wait before the first retry; it doubles on each
	// retry, up to MaxBackoff, with some jitter.
	Backoff, MaxBackoff time.Duration
	// StallTimeout abandons a request that receives nothing for this long.
	// There is no overall timeout: a large all.zip may take many minutes
	// on a slow link, so only a stall is a failure.
	StallTimeout time.Duration
	// Logger reports retries; nil discards them.
	Logger *slog.Logger
}

// NewClient returns a Client with Bulwark's defaults: User-Agent
// bulwark/<version>, 4 attempts, backoff from 1s to 30s, and a one-minute
// stall timeout.
func NewClient(logger *slog.Logger) *Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   recordWorkers,
	}
	return &Client{
		HTTP:         &http.Client{Transport: transport},
		UserAgent:    "bulwark/" + version.Get().Version,
		Attempts:     4,
		Backoff:      time.Second,
		MaxBackoff:   30 * time.Second,
		StallTimeout: time.Minute,
		Logger:       logger,
	}
}

// errStalled is the cause of a request abandoned for receiving nothing.
var errStalled = errors.New("transfer stalled")

// Get fetches url and hands the body, at most limit bytes of it, and the
// response headers to read. A transient failure, including one while read
// consumes the body, starts the request over, so read must be repeatable.
// An error read returns of its own is not retried.
func (c *Client) Get(ctx context.Context, url string, limit int64, read func(body io.Reader, header http.Header) error) error {
	attempts := max(c.Attempts, 1)
	var last error
	attempt := 1
	for ; ; attempt++ {
		retry, wait, err := c.try(ctx, url, limit, read)
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("fetching %s: %w", url, ctxErr)
		}
		last = err
		if !retry || attempt >= attempts {
			break
		}
		delay := c.backoff(attempt, wait)
		if c.Logger != nil {
			c.Logger.Warn("retrying download", "url", url, "attempt", attempt, "wait", delay, "error", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fetching %s: %w", url, ctx.Err())
		case <-t.C:
		}
	}
	if attempt > 1 {
		return fmt.Errorf("fetching %s (gave up after %d attempts): %w", url, attempt, last)
	}
	return fmt.Errorf("fetching %s: %w", url, last)
}

// Bytes fetches url into memory, at most limit bytes.
func (c *Client) Bytes(ctx context.Context, url string, limit int64) ([]byte, error) {
	var data []byte
	err := c.Get(ctx, url, limit, func(body io.Reader, _ http.Header) error {
		var err error
		data, err = io.ReadAll(body)
		return err
	})
	return data, err
}

// try sends one request. It reports whether a failure is worth retrying,
// and how long the server asked us to wait (zero if it did not say).
func (c *Client) try(ctx context.Context, url string, limit int64, read func(io.Reader, http.Header) error) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := c.StallTimeout
	if stall <= 0 {
		stall = time.Minute
	}
	timer := time.AfterFunc(stall, func() { cancel(fmt.Errorf("%w: nothing received for %s", errStalled, stall)) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, 0, fmt.Errorf("building request: %w", err)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			return true, 0, cause
		}
		return true, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		err := &StatusError{URL: url, Code: resp.StatusCode, Status: resp.Status}
		return transientStatus(resp.StatusCode), retryAfter(resp.Header), err
	}
	if resp.ContentLength > limit {
		return false, 0, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, resp.ContentLength, limit)
	}
	body := &boundedBody{r: resp.Body, limit: limit, timer: timer, stall: stall}
	if err := read(body, resp.Header); err != nil {
		if body.err == nil || errors.Is(body.err, ErrTooLarge) {
			return false, 0, err
		}
		// The transfer broke, not the data.
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			return true, 0, cause
		}
		return true, 0, err
	}
	return false, 0, nil
}

// transientStatus reports whether a status may succeed on a retry.
func transientStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// backoff is the wait before retry number attempt: the server's wish if it
// stated one within MaxBackoff, else Backoff doubled per attempt, capped
// at MaxBackoff, less up to a fifth at random so clients spread out.
func (c *Client) backoff(attempt int, wait time.Duration) time.Duration {
	limit := c.MaxBackoff
	if limit <= 0 {
		limit = 30 * time.Second
	}
	if wait > 0 && wait <= limit {
		return wait
	}
	d := c.Backoff << min(attempt-1, 20)
	if d <= 0 || d > limit {
		d = limit
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// boundedBody reads a response body, failing with ErrTooLarge past limit
// and keeping the stall timer from firing while data arrives. It records
// its own failure, so Get can tell a broken transfer from bad data.
type boundedBody struct {
	r     io.Reader
	limit int64
	n     int64
	timer *time.Timer
	stall time.Duration
	err   error
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.n >= b.limit {
		// One byte past the limit tells a body of exactly limit bytes from
		// a longer one.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			b.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, b.limit)
			return 0, b.err
		}
		if err != nil && err != io.EOF {
			b.err = err
		}
		return 0, err
	}
	if int64(len(p)) > b.limit-b.n {
		p = p[:b.limit-b.n]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
