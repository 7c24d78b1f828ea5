package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// StatusError is an HTTP answer other than 2xx. It matches ErrUnauthorized
// under errors.Is when the code is 401 or 403.
type StatusError struct {
	Code int
	// Detail is the server's error code or message, shortened and with the
	// connector's secrets removed; it may be empty.
	Detail string
	// OAuthError is the "error" code of an OAuth 2.0 error answer.
	OAuthError string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("server answered %d %s", e.Code, http.StatusText(e.Code))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is makes 401 and 403 answers match ErrUnauthorized, and the OAuth 2.0
// errors a token endpoint answers with 400 for credentials it refuses
// (RFC 6749 section 5.2: Google says invalid_grant for an unknown key).
func (e *StatusError) Is(target error) bool {
	if target != ErrUnauthorized {
		return false
	}
	switch e.OAuthError {
	case "invalid_grant", "invalid_client", "unauthorized_client":
		return true
	}
	return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
}

// limits bound what one connector fetches. Tests lower them.
type limits struct {
	// maxBody is the largest response body read, in bytes.
	maxBody int64
	// maxPages and maxItems bound one listing.
	maxPages, maxItems int
	// pageSize is asked of servers that take one.
	pageSize int
	// attempts bounds the tries of one request, the first included.
	attempts int
	// backoff is the wait before the first retry, doubling per retry up
	// to maxWait, which also caps a server's Retry-After.
	backoff, maxWait time.Duration
}

var defaultLimits = limits{
	maxBody:  32 << 20,
	maxPages: 10_000,
	maxItems: 1_000_000,
	pageSize: 1000,
	attempts: 4,
	backoff:  500 * time.Millisecond,
	maxWait:  30 * time.Second,
}

// httpClient is the one way this package sends HTTP requests: bounded
// bodies, retried transient failures, typed status errors and no secrets in
// messages.
type httpClient struct {
	transport http.RoundTripper
	secrets   []string
	limits
}

func newHTTPClient(rt http.RoundTripper, secrets []string) *httpClient {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &httpClient{transport: rt, secrets: secrets, limits: defaultLimits}
}

// request is one HTTP call.
type request struct {
	method string // GET when empty
	url    string
	header http.Header
	// form is sent URL-encoded as the body of a POST.
	form url.Values
	// json is sent as a JSON body of a POST.
	json any
	// transport replaces the client's (go-containerregistry's
	// authenticating transport wraps it).
	transport http.RoundTripper
}

// response is a 2xx answer, its body read in full.
type response struct {
	url    *url.URL
	header http.Header
	body   []byte
}

// do sends req and returns its 2xx answer. Network errors, 408, 429 and 5xx
// are retried with backoff; other statuses fail at once with a StatusError.
func (c *httpClient) do(ctx context.Context, req request) (*response, error) {
	var body []byte
	if req.form != nil {
		body = []byte(req.form.Encode())
	} else if req.json != nil {
		var err error
		if body, err = json.Marshal(req.json); err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
	}
	attempts := max(c.attempts, 1)
	for attempt := 1; ; attempt++ {
		resp, retry, wait, err := c.try(ctx, req, body)
		if err == nil {
			return resp, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if !retry || attempt >= attempts {
			if attempt > 1 {
				return nil, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
			}
			return nil, err
		}
		t := time.NewTimer(c.wait(attempt, wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// try sends req once and reports whether a failure is worth retrying and
// how long the server asked to wait.
func (c *httpClient) try(ctx context.Context, req request, body []byte) (_ *response, retry bool, wait time.Duration, _ error) {
	method := req.method
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, req.url, rd)
	if err != nil {
		return nil, false, 0, fmt.Errorf("building request: %w", err)
	}
	for k, v := range req.header {
		hreq.Header[k] = v
	}
	if req.form != nil {
		hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else if req.json != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if hreq.Header.Get("Accept") == "" {
		hreq.Header.Set("Accept", "application/json")
	}
	rt := req.transport
	if rt == nil {
		rt = c.transport
	}
	client := &http.Client{Transport: rt, CheckRedirect: checkRedirect}
	resp, err := client.Do(hreq)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) {
			// go-containerregistry failed to get a token.
			return nil, retryable(terr.StatusCode), 0, &StatusError{Code: terr.StatusCode, Detail: c.scrub(transportDetail(terr))}
		}
		return nil, true, 0, c.scrubErr(err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, retryable(resp.StatusCode), retryAfter(resp.Header, time.Now()), &StatusError{Code: resp.StatusCode, Detail: c.scrub(errorDetail(data)), OAuthError: oauthError(data)}
	}
	if readErr != nil {
		return nil, true, 0, fmt.Errorf("reading response: %w", c.scrubErr(readErr))
	}
	if int64(len(data)) > c.maxBody {
		return nil, false, 0, fmt.Errorf("%w: response body larger than %d bytes", ErrLimit, c.maxBody)
	}
	return &response{url: resp.Request.URL, header: resp.Header, body: data}, false, 0, nil
}

// checkRedirect follows at most 5 redirects and never from HTTPS to HTTP.
// (net/http already drops Authorization when a redirect leaves the host.)
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from https to %s", req.URL.Scheme)
	}
	return nil
}

// retryable reports whether a status may succeed on a retry.
func retryable(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// retryAfter reads Retry-After, in seconds or as an HTTP date; zero if
// absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// wait is the pause before retry number attempt: the server's wish if it
// gave one, else backoff doubled per attempt less some jitter; both capped
// at maxWait.
func (c *httpClient) wait(attempt int, asked time.Duration) time.Duration {
	if asked > 0 {
		return min(asked, c.maxWait)
	}
	d := c.backoff << (attempt - 1)
	if d <= 0 || d > c.maxWait {
		d = c.maxWait
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// getJSON GETs u and decodes its JSON body into v.
func (c *httpClient) getJSON(ctx context.Context, req request, v any) (*response, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp, decodeJSON(resp, v)
}

// decodeJSON decodes a response body into v, as ErrBadResponse when it is
// not the JSON expected.
func decodeJSON(resp *response, v any) error {
	if err := json.Unmarshal(resp.body, v); err != nil {
		ct := resp.header.Get("Content-Type")
		if ct == "" {
			ct = "no content type"
		}
		return fmt.Errorf("%w: decoding JSON from %s (%s): %v", ErrBadResponse, resp.url.Redacted(), ct, err)
	}
	return nil
}

// errorDetail picks the error code and message out of the error bodies the
// registries send (distribution, OAuth, Docker Hub, Harbor, Artifactory),
// at most 200 bytes; it never echoes a body that is not one of those.
func errorDetail(body []byte) string {
	var e struct {
		Errors []struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		Error            any    `json:"error"`
		ErrorDescription string `json:"error_description"`
		Detail           string `json:"detail"`
		Message          string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	var parts []string
	for i, x := range e.Errors {
		if i == 3 {
			break
		}
		parts = append(parts, strings.TrimSpace(fmt.Sprint(x.Code)+" "+x.Message))
	}
	if s, ok := e.Error.(string); ok {
		parts = append(parts, s)
	}
	for _, s := range []string{e.ErrorDescription, e.Detail, e.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return truncate(strings.Join(parts, "; "), 200)
}

// oauthError is the "error" code of an OAuth 2.0 error body, if it is one.
func oauthError(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error
}

// transportDetail is the registry's own explanation in a
// go-containerregistry error, without the request URL it also carries.
func transportDetail(e *transport.Error) string {
	var parts []string
	for _, d := range e.Errors {
		parts = append(parts, strings.TrimSpace(string(d.Code)+" "+d.Message))
	}
	return truncate(strings.Join(parts, "; "), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// scrub removes the connector's secrets from s.
func (c *httpClient) scrub(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// scrubbedError is an error whose message had secrets removed; it still
// unwraps to the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func (c *httpClient) scrubErr(err error) error {
	msg := c.scrub(err.Error())
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
