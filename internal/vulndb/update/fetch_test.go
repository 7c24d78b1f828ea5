package update

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server answers with h and counts requests.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestClientGet(t *testing.T) {
	tests := []struct {
		name         string
		handler      http.HandlerFunc
		limit        int64
		want         string
		wantErr      string
		wantRequests int32
	}{
		{
			name: "sends its user agent",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(r.Header.Get("User-Agent")))
			},
			limit:        100,
			want:         "bulwark/dev",
			wantRequests: 1,
		},
		{
			name:         "body of exactly the limit",
			handler:      func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("12345")) },
			limit:        5,
			want:         "12345",
			wantRequests: 1,
		},
		{
			name:         "declared length over the limit",
			handler:      func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("123456")) },
			limit:        5,
			wantErr:      "response too large: 6 bytes, more than 5",
			wantRequests: 1,
		},
		{
			name: "streamed body over the limit",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Write([]byte("123"))
				w.(http.Flusher).Flush()
				w.Write([]byte("456"))
			},
			limit:        5,
			wantErr:      "response too large: more than 5 bytes",
			wantRequests: 1,
		},
		{
			name:         "not found is not retried",
			handler:      http.NotFound,
			limit:        100,
			wantErr:      ": server answered 404 Not Found",
			wantRequests: 1,
		},
		{
			name: "too many requests is retried",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "slow down", http.StatusTooManyRequests)
			},
			limit:        100,
			wantErr:      "(gave up after 4 attempts): server answered 429 Too Many Requests",
			wantRequests: 4,
		},
		{
			name: "stalled transfer is retried",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("partial"))
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			limit:        100,
			wantErr:      "transfer stalled: nothing received for 200ms",
			wantRequests: 4,
		},
		{
			name: "broken connection is retried",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "100")
				w.Write([]byte("short"))
			},
			limit:        100,
			wantErr:      "unexpected EOF",
			wantRequests: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := server(t, tc.handler)
			c := testClient()
			c.StallTimeout = 200 * time.Millisecond
			got, err := c.Bytes(t.Context(), srv.URL+"/x", tc.limit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), srv.URL+"/x") {
					t.Errorf("Get = %q, %v; want an error naming the URL and containing %q", got, err, tc.wantErr)
				}
			} else if err != nil || string(got) != tc.want {
				t.Errorf("Get = %q, %v; want %q", got, err, tc.want)
			}
			if n.Load() != tc.wantRequests {
				t.Errorf("%d requests, want %d", n.Load(), tc.wantRequests)
			}
		})
	}
}

func TestClientStopsWaitingWhenCanceled(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	})
	c := testClient()
	c.Backoff, c.MaxBackoff = time.Hour, time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Bytes(ctx, srv.URL, 100)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("Get while backing off = %v after %s, want the context's error at once", err, time.Since(start))
	}
}

func TestBackoff(t *testing.T) {
	c := &Client{Backoff: time.Second, MaxBackoff: 8 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 40: 8 * time.Second} {
		if got := c.backoff(attempt, 0); got > want || got < want*4/5 {
			t.Errorf("backoff(%d) = %s, want %s less up to a fifth", attempt, got, want)
		}
	}
	if got := c.backoff(1, 3*time.Second); got != 3*time.Second {
		t.Errorf("backoff with Retry-After 3s = %s", got)
	}
	if got := c.backoff(1, time.Hour); got > time.Second {
		t.Errorf("backoff with Retry-After of an hour = %s, want the usual wait", got)
	}
}
