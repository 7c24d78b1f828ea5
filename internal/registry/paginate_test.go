package registry

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLink(t *testing.T) {
	tests := []struct {
		value, want string
		ok          bool
	}{
		{`</v2/_catalog?last=b&n=2>; rel="next"`, "/v2/_catalog?last=b&n=2", true},
		{`<https://r.example/v2/_catalog?last=b>; rel=next`, "https://r.example/v2/_catalog?last=b", true},
		{`</prev>; rel="prev", </next>; rel="next"`, "/next", true},
		{`</a>; title="x;y"; rel="last next"`, "/a", true},
		{`</a>; REL="Next"`, "/a", true},
		{`</a>; rel="prev"`, "", false},
		{`garbage`, "", false},
		{`<unterminated; rel="next"`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		got, ok := parseLink(tt.value)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseLink(%q) = %q, %v, want %q, %v", tt.value, got, ok, tt.want, tt.ok)
		}
	}
}

func TestResolveNext(t *testing.T) {
	cur, _ := url.Parse("https://reg.example:5000/v2/_catalog?n=2")
	tests := []struct {
		next, want string
		wantErr    bool
	}{
		{"/v2/_catalog?last=b&n=2", "https://reg.example:5000/v2/_catalog?last=b&n=2", false},
		{"?last=b", "https://reg.example:5000/v2/_catalog?last=b", false},
		{"https://reg.example:5000/v2/_catalog?last=c", "https://reg.example:5000/v2/_catalog?last=c", false},
		{"https://evil.example/v2/_catalog", "", true},
		{"//evil.example/v2/_catalog", "", true},
		{"http://reg.example:5000/v2/_catalog", "", true},
		{"https://reg.example:5001/v2/_catalog", "", true},
		{"https://user:pw@reg.example:5000/v2/_catalog", "", true},
		{"%zz", "", true},
	}
	for _, tt := range tests {
		got, err := resolveNext(cur, tt.next)
		if tt.wantErr {
			if !errors.Is(err, ErrBadResponse) {
				t.Errorf("resolveNext(%q) = %v, %v, want ErrBadResponse", tt.next, got, err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("resolveNext(%q) = %v, %v, want %s", tt.next, got, err, tt.want)
		}
	}
}

// catalogServer answers /v2/_catalog with handler and counts requests.
func catalogServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, n int)) (Connector, *atomic.Int64) {
	t.Helper()
	var count atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return // no auth
		}
		handler(w, r, int(count.Add(1)))
	}))
	t.Cleanup(srv.Close)
	c := mustNew(t, Config{Type: TypeOCI, URL: strings.TrimPrefix(srv.URL, "https://"), Transport: srv.Client().Transport})
	fastLimits(t, c)
	return c, &count
}

func TestListingHostileServers(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request, n int)
		limits  func(*httpClient)
		want    error
		// maxRequests bounds what the client may send.
		maxRequests int64
	}{
		{
			name: "same Link forever",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Link", `</v2/_catalog?last=a&n=1000>; rel="next"`)
				fmt.Fprint(w, `{"repositories":["a"]}`)
			},
			want: ErrBadResponse, maxRequests: 3,
		},
		{
			name: "two Links in a loop",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				next := "b"
				if r.URL.Query().Get("last") == "b" {
					next = "a"
				}
				w.Header().Set("Link", `</v2/_catalog?last=`+next+`&n=1000>; rel="next"`)
				fmt.Fprint(w, `{"repositories":["x"]}`)
			},
			want: ErrBadResponse, maxRequests: 4,
		},
		{
			name: "endless new pages",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Link", `</v2/_catalog?last=`+strconv.Itoa(n)+`>; rel="next"`)
				fmt.Fprint(w, `{"repositories":["r`+strconv.Itoa(n)+`"]}`)
			},
			limits: func(c *httpClient) { c.maxPages = 50 },
			want:   ErrLimit, maxRequests: 50,
		},
		{
			name: "too many items",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Link", `</v2/_catalog?last=`+strconv.Itoa(n)+`>; rel="next"`)
				fmt.Fprint(w, `{"repositories":["a","b","c","d"]}`)
			},
			limits: func(c *httpClient) { c.maxItems = 10 },
			want:   ErrLimit, maxRequests: 3,
		},
		{
			name: "Link to another host",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Link", `<https://attacker.example/v2/_catalog?last=a>; rel="next"`)
				fmt.Fprint(w, `{"repositories":["a"]}`)
			},
			want: ErrBadResponse, maxRequests: 1,
		},
		{
			name: "HTML instead of JSON",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/html")
				fmt.Fprint(w, `<html>login here</html>`)
			},
			want: ErrBadResponse, maxRequests: 1,
		},
		{
			name: "garbled JSON",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				fmt.Fprint(w, `{"repositories":["a",`)
			},
			want: ErrBadResponse, maxRequests: 1,
		},
		{
			name: "wrong JSON shape",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				fmt.Fprint(w, `{"repositories":{"a":1}}`)
			},
			want: ErrBadResponse, maxRequests: 1,
		},
		{
			name: "huge body",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				fmt.Fprint(w, `{"repositories":["`)
				chunk := []byte(strings.Repeat("a", 64<<10))
				for range 64 { // 4 MiB, over the test's 1 MiB limit
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			},
			limits: func(c *httpClient) { c.maxBody = 1 << 20 },
			want:   ErrLimit, maxRequests: 1,
		},
		{
			name: "429 storm",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			want: &StatusError{Code: http.StatusTooManyRequests}, maxRequests: 4,
		},
		{
			name: "503 storm",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			want: &StatusError{Code: http.StatusServiceUnavailable}, maxRequests: 4,
		},
		{
			name: "403",
			handler: func(w http.ResponseWriter, r *http.Request, n int) {
				w.WriteHeader(http.StatusForbidden)
			},
			want: ErrUnauthorized, maxRequests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, count := catalogServer(t, tt.handler)
			if tt.limits != nil {
				tt.limits(c.(interface{ client() *httpClient }).client())
			}
			start := time.Now()
			_, err := c.Repositories(withTimeout(t, 30*time.Second))
			var statusWant *StatusError
			if errors.As(tt.want, &statusWant) {
				var got *StatusError
				if !errors.As(err, &got) || got.Code != statusWant.Code {
					t.Errorf("Repositories: %v, want status %d", err, statusWant.Code)
				}
			} else if !errors.Is(err, tt.want) {
				t.Errorf("Repositories: %v, want %v", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "listing repositories of 127.0.0.1:") {
				t.Errorf("error %q does not say what failed", err)
			}
			if n := count.Load(); n > tt.maxRequests {
				t.Errorf("sent %d requests, want at most %d", n, tt.maxRequests)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestListingRetriesThenSucceeds(t *testing.T) {
	c, count := catalogServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n < 3 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, `{"repositories":["b","a"]}`)
	})
	got, err := c.Repositories(withTimeout(t, 30*time.Second))
	if err != nil {
		t.Fatalf("Repositories: %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	if n := count.Load(); n != 3 {
		t.Errorf("sent %d requests, want 3", n)
	}
}

func TestListingHonoursContext(t *testing.T) {
	c, _ := catalogServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c.(interface{ client() *httpClient }).client().maxWait = time.Hour
	c.(interface{ client() *httpClient }).client().backoff = time.Hour
	ctx := withTimeout(t, 200*time.Millisecond)
	start := time.Now()
	_, err := c.Repositories(ctx)
	if !errors.Is(err, ctx.Err()) || ctx.Err() == nil {
		t.Errorf("Repositories: %v, want the context's error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s after the context ended", d)
	}
}

// FuzzParseLink checks that any Link header parses without panicking and
// that a target it finds never leaves the host.
func FuzzParseLink(f *testing.F) {
	for _, s := range []string{
		`</v2/_catalog?last=b&n=2>; rel="next"`,
		`<https://evil.example/x>; rel=next`,
		`</a>; rel="prev", </b>; rel="next"`,
		`<//evil.example/x>; rel="next"`,
		`<`, `>;rel=next`, `</a>;;;rel="next"`,
	} {
		f.Add(s)
	}
	cur, _ := url.Parse("https://reg.example/v2/_catalog")
	f.Fuzz(func(t *testing.T, value string) {
		target, ok := parseLink(value)
		if !ok {
			return
		}
		u, err := resolveNext(cur, target)
		if err == nil && (u.Host != cur.Host || u.Scheme != cur.Scheme) {
			t.Fatalf("Link %q resolved to %s, off the host", value, u)
		}
	})
}

// FuzzCatalogPage feeds arbitrary catalog bodies and Link headers through
// a listing: it must return items or an error, never panic or hang.
func FuzzCatalogPage(f *testing.F) {
	f.Add(`{"repositories":["a","b"]}`, `</v2/_catalog?last=b>; rel="next"`)
	f.Add(`{"repositories":null}`, ``)
	f.Add(`[1,2,3]`, `<http://x>; rel=next`)
	f.Add(`{"repositories":["a"]}garbage`, ``)
	f.Fuzz(func(t *testing.T, body, link string) {
		c := newHTTPClient(nil, nil)
		c.transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{"Content-Type": {"application/json"}}
			if r.URL.Query().Get("last") == "" {
				h.Set("Link", link)
			}
			return &http.Response{StatusCode: 200, Header: h, Body: readCloser(body), Request: r}, nil
		})
		c.maxPages = 5
		d := &distribution{http: c, base: "https://reg.example"}
		items, err := d.catalog(t.Context())
		if err == nil && len(items) > c.maxItems {
			t.Fatalf("%d items, over the limit", len(items))
		}
	})
}
