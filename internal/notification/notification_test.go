package notification

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func parseFile(t *testing.T, path string) ([]Push, []error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pushes, rejected, err := Parse(f, 0)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return pushes, rejected
}

// TestParseCaptured parses a body a real docker-registry 2.8 sent (see
// TestRealRegistryNotifications, which rewrites it with -update).
func TestParseCaptured(t *testing.T) {
	pushes, rejected := parseFile(t, capturedBody)
	if len(rejected) != 0 {
		t.Errorf("rejected: %v", rejected)
	}
	if len(pushes) != 1 {
		t.Fatalf("got %d pushes, want 1: %+v", len(pushes), pushes)
	}
	p := pushes[0]
	if p.Repository != "team.one/app" || p.Tag != "v1" || p.MediaType != "application/vnd.docker.distribution.manifest.v2+json" ||
		!strings.HasPrefix(p.Host, "127.0.0.1:") || !strings.HasPrefix(p.Digest, "sha256:") || p.EventID == "" || p.Timestamp.IsZero() {
		t.Errorf("push = %+v", p)
	}
}

// TestParseMixed parses an envelope, modelled on the examples of
// distribution's docs/notifications.md, with every kind of event.
func TestParseMixed(t *testing.T) {
	pushes, rejected := parseFile(t, "testdata/mixed.json")
	ts := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
	want := []Push{
		{
			Host:       "registry.example.com:5000",
			Repository: "library/test",
			Digest:     "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d",
			Tag:        "1.0",
			MediaType:  "application/vnd.oci.image.manifest.v1+json",
			Timestamp:  ts,
			EventID:    "asdf-asdf-asdf-asdf-1",
		},
		{
			Host:       "mirror.example.org",
			Repository: "team/app",
			Digest:     "sha256:9d6fd6c46e4a1d4e0d4b0e4e0d4b0e4e0d4b0e4e0d4b0e4e0d4b0e4e0d4b0e4e",
			MediaType:  "application/vnd.docker.distribution.manifest.list.v2+json",
			Timestamp:  ts,
			EventID:    "asdf-asdf-asdf-asdf-2",
		},
	}
	if diff := cmp.Diff(want, pushes); diff != "" {
		t.Errorf("pushes (-want +got):\n%s", diff)
	}
	if len(rejected) != 1 {
		t.Fatalf("rejected = %v, want the one bad digest", rejected)
	}
	var ee *EventError
	if !errors.As(rejected[0], &ee) || ee.Index != 4 || ee.ID != "bad-digest" || !strings.Contains(ee.Error(), "invalid digest") {
		t.Errorf("rejected[0] = %v", rejected[0])
	}
}

func TestPushReference(t *testing.T) {
	const digest = "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d"
	tests := []struct {
		push Push
		want string
	}{
		{Push{Host: "registry.example.com:5000", Repository: "library/test", Digest: digest}, "registry.example.com:5000/library/test@" + digest},
		// A host with neither dot nor port must stay the registry.
		{Push{Host: "registry", Repository: "team/app", Digest: digest}, "registry/team/app@" + digest},
		{Push{Host: "localhost", Repository: "my.team/app", Digest: digest}, "localhost/my.team/app@" + digest},
	}
	for _, tt := range tests {
		got, err := tt.push.Reference()
		if err != nil {
			t.Fatalf("Reference of %+v: %v", tt.push, err)
		}
		if got.String() != tt.want || got.RegistryStr() != tt.push.Host || got.RepositoryStr() != tt.push.Repository {
			t.Errorf("Reference = %s (registry %s, repository %s), want %s", got, got.RegistryStr(), got.RepositoryStr(), tt.want)
		}
	}
	for _, bad := range []Push{
		{Host: "", Repository: "a", Digest: digest},
		{Host: "r.example", Repository: "A", Digest: digest},
		{Host: "r.example", Repository: "a", Digest: "latest"},
	} {
		if got, err := bad.Reference(); err == nil {
			t.Errorf("Reference of %+v = %s, want an error", bad, got)
		}
	}
}

func TestAcceptsContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		MediaType:                         true,
		MediaType + "; charset=utf-8":     true,
		"application/json":                true,
		"Application/JSON; charset=UTF-8": true,
		"text/plain":                      false,
		"":                                false,
		"application/vnd.docker.distribution.events.v2+json": false,
	} {
		if got := AcceptsContentType(ct); got != want {
			t.Errorf("AcceptsContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}

const goodDigest = "sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d"

// pushEvent is a manifest push event with fields replaced as given.
func pushEvent(repo, digest, tag, host string) string {
	return fmt.Sprintf(`{"id":"e","action":"push","timestamp":"2026-01-02T03:04:05Z","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"repository":%q,"tag":%q},"request":{"host":%q}}`,
		digest, repo, tag, host)
}

func envelope(events ...string) string {
	return `{"events":[` + strings.Join(events, ",") + `]}`
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name         string
		body         string
		limit        int64
		wantErr      string
		wantPushes   int
		wantRejected []string
	}{
		{name: "empty body", body: "", wantErr: "decoding notification envelope"},
		{name: "not json", body: "<html>", wantErr: "decoding notification envelope"},
		{name: "top-level array", body: "[" + pushEvent("a", goodDigest, "", "r.example") + "]", wantErr: "decoding notification envelope"},
		{name: "no events", body: `{"event":[]}`, wantErr: `no "events" list`},
		{name: "null events", body: `{"events":null}`, wantErr: `no "events" list`},
		{name: "events not a list", body: `{"events":{"a":1}}`, wantErr: "decoding notification envelope"},
		{name: "trailing garbage", body: envelope() + "{}", wantErr: "decoding notification envelope"},
		{name: "truncated", body: envelope(pushEvent("a", goodDigest, "", "r.example"))[:50], wantErr: "decoding notification envelope"},
		{name: "deep nesting", body: `{"events":[` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `]}`, wantErr: "decoding notification envelope"},
		{name: "over the limit", body: envelope(pushEvent("a", goodDigest, "", "r.example")), limit: 100, wantErr: "over the 100-byte limit"},
		{name: "too many events", body: envelope(strings.Split(strings.Repeat("{},", MaxEvents+1), ",")[:MaxEvents+1]...), wantErr: "10001 events, over the limit of 10000"},
		{name: "empty list", body: envelope()},
		{name: "exactly MaxEvents", body: envelope(strings.Split(strings.Repeat("{},", MaxEvents), ",")[:MaxEvents]...)},
		{name: "good", body: envelope(pushEvent("a/b", goodDigest, "v1", "r.example")), wantPushes: 1},
		{name: "event not an object", body: envelope(`"push"`, `42`, `null`, pushEvent("a", goodDigest, "", "r.example")), wantPushes: 1,
			wantRejected: []string{"event 0: decoding event", "event 1: decoding event"}},
		{name: "wrong field types", body: envelope(`{"id":"x","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":["sha256:x"]}}`),
			wantRejected: []string{`event 0 (id "x"): decoding event`}},
		{name: "bad digests", body: envelope(
			pushEvent("a", "", "", "r.example"),
			pushEvent("a", "sha256:abc", "", "r.example"),
			pushEvent("a", "md5:d41d8cd98f00b204e9800998ecf8427e", "", "r.example"),
			pushEvent("a", strings.ToUpper(goodDigest), "", "r.example"),
			pushEvent("a", goodDigest+"\n", "", "r.example"),
		), wantRejected: []string{"invalid digest", "invalid digest", "invalid digest", "invalid digest", "invalid digest"}},
		{name: "bad repositories", body: envelope(
			pushEvent("", goodDigest, "", "r.example"),
			pushEvent("../../etc", goodDigest, "", "r.example"),
			pushEvent("Upper/case", goodDigest, "", "r.example"),
			pushEvent("a//b", goodDigest, "", "r.example"),
			pushEvent("a/b?x=1", goodDigest, "", "r.example"),
			pushEvent("a b", goodDigest, "", "r.example"),
			pushEvent(strings.Repeat("a", 300), goodDigest, "", "r.example"),
		), wantRejected: []string{"invalid repository", "invalid repository", "invalid repository", "invalid repository", "invalid repository", "invalid repository", "invalid repository"}},
		{name: "bad hosts", body: envelope(
			pushEvent("a", goodDigest, "", ""),
			pushEvent("a", goodDigest, "", "evil.example/x"),
			pushEvent("a", goodDigest, "", "user@evil.example"),
			pushEvent("a", goodDigest, "", "r.example:port"),
			pushEvent("a", goodDigest, "", "r example"),
		), wantRejected: []string{"no registry host", "invalid registry host", "invalid registry host", "invalid registry host", "invalid registry host"}},
		{name: "bad tags", body: envelope(
			pushEvent("a", goodDigest, "-leading-dash", "r.example"),
			pushEvent("a", goodDigest, "a:b", "r.example"),
			pushEvent("a", goodDigest, ".hidden", "r.example"),
			pushEvent("a", goodDigest, strings.Repeat("t", 129), "r.example"),
		), wantRejected: []string{"invalid tag", "invalid tag", "invalid tag", "invalid tag"}},
		{name: "bad timestamp", body: envelope(`{"action":"push","timestamp":"yesterday","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + goodDigest + `","repository":"a"},"request":{"host":"r.example"}}`),
			wantRejected: []string{"invalid timestamp"}},
		{name: "huge fields are truncated in errors", body: envelope(
			pushEvent(strings.Repeat("x", 1<<20), goodDigest, "", "r.example"),
			pushEvent("a", "sha256:"+strings.Repeat("0", 1<<20), "", "r.example"),
			pushEvent("a", goodDigest, "", strings.Repeat("h", 1<<20)),
			pushEvent("a", goodDigest, strings.Repeat("t", 1<<20), "r.example"),
		), wantRejected: []string{`invalid repository "xxxxxxxx`, "invalid digest", "invalid registry host", "invalid tag"}},
		{name: "ignored events are not validated", body: envelope(
			`{"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"nope","repository":"../x"}}`,
			`{"action":"push","target":{"mediaType":"application/octet-stream","digest":"nope"}}`,
			`{"action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","digest":"nope"}}`,
			`{"action":"PUSH","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"nope"}}`,
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pushes, rejected, err := Parse(strings.NewReader(tt.body), tt.limit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				if pushes != nil || rejected != nil {
					t.Errorf("Parse returned results with an error: %v, %v", pushes, rejected)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(pushes) != tt.wantPushes {
				t.Errorf("got %d pushes, want %d: %+v", len(pushes), tt.wantPushes, pushes)
			}
			if len(rejected) != len(tt.wantRejected) {
				t.Fatalf("rejected = %v, want %d", rejected, len(tt.wantRejected))
			}
			for i, want := range tt.wantRejected {
				if msg := rejected[i].Error(); !strings.Contains(msg, want) || len(msg) > 1000 {
					t.Errorf("rejected[%d] = %.200q, want it to contain %q (and be short)", i, msg, want)
				}
			}
		})
	}
}

func TestParseLimitIsErrTooLarge(t *testing.T) {
	body := envelope(pushEvent("a", goodDigest, "", "r.example"))
	_, _, err := Parse(strings.NewReader(body), int64(len(body)-1))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("error = %v, want %v", err, ErrTooLarge)
	}
	if _, _, err := Parse(strings.NewReader(body), int64(len(body))); err != nil {
		t.Errorf("a body of exactly the limit: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, path := range []string{capturedBody, "testdata/mixed.json"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(envelope(pushEvent("a", goodDigest, "t", "r.example"))))
	f.Add([]byte(`{"events":[{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		pushes, rejected, err := Parse(bytes.NewReader(body), 1<<16)
		if err != nil {
			if pushes != nil || rejected != nil {
				t.Errorf("results with error %v", err)
			}
			return
		}
		for _, p := range pushes {
			// Every push Parse accepts must name a pullable reference.
			if _, err := p.Reference(); err != nil {
				t.Errorf("accepted push %+v has no valid reference: %v", p, err)
			}
		}
		for _, r := range rejected {
			var ee *EventError
			if !errors.As(r, &ee) {
				t.Errorf("rejection %v is not an *EventError", r)
			}
		}
	})
}
