package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// pageFunc fetches the page at u and returns its items and the URL of the
// next page ("" at the end), absolute or relative to u.
type pageFunc func(ctx context.Context, u *url.URL) (items []string, next string, err error)

// paginate collects the items of every page from start on. It stops with
// ErrLimit after maxPages pages or maxItems items, and with ErrBadResponse
// when a next page is on another scheme or host, or was seen before.
func (c *httpClient) paginate(ctx context.Context, start string, page pageFunc) ([]string, error) {
	u, err := url.Parse(start)
	if err != nil {
		return nil, fmt.Errorf("parsing URL: %w", err)
	}
	seen := map[string]bool{}
	var all []string
	for pages := 0; ; pages++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if pages == c.maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrLimit, c.maxPages)
		}
		seen[u.String()] = true
		items, next, err := page(ctx, u)
		if err != nil {
			return nil, err
		}
		if len(all)+len(items) > c.maxItems {
			return nil, fmt.Errorf("%w: more than %d items", ErrLimit, c.maxItems)
		}
		all = append(all, items...)
		if next == "" {
			return all, nil
		}
		nu, err := resolveNext(u, next)
		if err != nil {
			return nil, err
		}
		if seen[nu.String()] {
			return nil, fmt.Errorf("%w: pagination loops back to %s", ErrBadResponse, nu.Redacted())
		}
		u = nu
	}
}

// resolveNext resolves a next-page reference against the page it came
// from. It must stay on the same scheme and host: following a server to
// another host would send it our credentials.
func resolveNext(cur *url.URL, next string) (*url.URL, error) {
	ref, err := url.Parse(next)
	if err != nil {
		return nil, fmt.Errorf("%w: next-page link %q: %v", ErrBadResponse, truncate(next, 100), err)
	}
	nu := cur.ResolveReference(ref)
	if !strings.EqualFold(nu.Scheme, cur.Scheme) || !strings.EqualFold(nu.Host, cur.Host) || nu.User != nil {
		return nil, fmt.Errorf("%w: next-page link leaves %s://%s", ErrBadResponse, cur.Scheme, cur.Host)
	}
	return nu, nil
}

// nextLink returns the target of the rel="next" Link header, "" if none.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		if target, ok := parseLink(v); ok {
			return target
		}
	}
	return ""
}

// parseLink finds the rel="next" link in one Link header value (RFC 8288:
// `<target>; rel="next"`, several links separated by commas).
func parseLink(value string) (target string, ok bool) {
	for value != "" {
		value = strings.TrimLeft(value, " \t,")
		if !strings.HasPrefix(value, "<") {
			return "", false
		}
		end := strings.IndexByte(value, '>')
		if end < 0 {
			return "", false
		}
		target, value = value[1:end], value[end+1:]
		params := value
		if i := strings.IndexByte(value, '<'); i >= 0 {
			params, value = value[:i], value[i:]
		} else {
			value = ""
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, found := strings.Cut(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(p), ",")), "=")
			if !found || !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			for rel := range strings.FieldsSeq(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(rel, "next") {
					return target, true
				}
			}
		}
	}
	return "", false
}
