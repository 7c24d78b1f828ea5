package transport

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseEnrollAnswer(t *testing.T) {
	for _, tc := range []struct {
		answer   string
		id, cred string
		ok       bool
	}{
		{`{"id": 7, "credential": "bws_abc"}`, "7", "bws_abc", true},
		{`{"id": "s-7", "credential": "bws_abc"}`, "s-7", "bws_abc", true},
		{`{"id": 7}`, "", "", false},
		{`{"credential": "bws_abc"}`, "", "", false},
		{`{"id": true, "credential": "bws_abc"}`, "", "", false},
		{`{"id": "", "credential": "bws_abc"}`, "", "", false},
		{`{"id": "a\u0000b", "credential": "bws_abc"}`, "", "", false},
		{`{"id": 7, "credential": "bws abc"}`, "", "", false},
		{`{"id": 7, "credential": "bws_abc\r\nX-Evil: 1"}`, "", "", false},
		{`{"id": 7, "credential": "` + strings.Repeat("a", maxCredential+1) + `"}`, "", "", false},
		{`[]`, "", "", false},
		{``, "", "", false},
	} {
		id, cred, err := parseEnrollAnswer([]byte(tc.answer))
		if id != tc.id || cred != tc.cred || (err == nil) != tc.ok {
			t.Errorf("parseEnrollAnswer(%.40q) = %q, %q, %v", tc.answer, id, cred, err)
		}
	}
}

func FuzzParseEnrollAnswer(f *testing.F) {
	f.Add([]byte(`{"id": 7, "credential": "bws_abc"}`))
	f.Add([]byte(`{"id": "x", "credential": "bws_\u00e9"}`))
	f.Add([]byte(`{"id": 1e999, "credential": "a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, cred, err := parseEnrollAnswer(data)
		if err != nil {
			return
		}
		if checkCredential(cred) != nil || id == "" || len(id) > 253 {
			t.Fatalf("accepted id %q, credential %q", id, cred)
		}
	})
}

func FuzzParseCredential(f *testing.F) {
	f.Add([]byte(`{"id":"1","credential":"bws_x","server":"https://s","node":"n"}`))
	f.Add([]byte(`{"credential":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCredential(data)
		if err == nil && checkCredential(c.Credential) != nil {
			t.Fatalf("accepted credential %q", c.Credential)
		}
	})
}

func TestStoreCredentialReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, credentialFile)
	for _, secret := range []string{"bws_one", "bws_two"} {
		if err := storeCredential(path, &credential{ID: "1", Credential: secret, Server: "https://s", Node: "n"}); err != nil {
			t.Fatal(err)
		}
		c, err := loadCredential(path)
		if err != nil || c.Credential != secret {
			t.Fatalf("loaded %+v, %v; want %s", c, err, secret)
		}
		info, _ := os.Stat(path)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", info.Mode().Perm())
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".credential-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if c, err := loadCredential(filepath.Join(dir, "missing")); c != nil || err != nil {
		t.Errorf("missing file: %v, %v; want nil, nil", c, err)
	}
	os.WriteFile(path, []byte(strings.Repeat(" ", maxSmallFile+1)), 0o600)
	if _, err := loadCredential(path); err == nil {
		t.Error("an oversized credential file was accepted")
	}
}

func TestTokenFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	o := Options{TokenFile: path, Token: "ignored"}
	if _, err := o.token(); err == nil {
		t.Error("a missing token file was accepted")
	}
	os.WriteFile(path, []byte("  bwe_tok\n"), 0o600)
	if tok, err := o.token(); tok != "bwe_tok" || err != nil {
		t.Errorf("token() = %q, %v", tok, err)
	}
	os.WriteFile(path, []byte("bwe_a bwe_b"), 0o600)
	if _, err := o.token(); err == nil || strings.Contains(err.Error(), "bwe_") {
		t.Errorf("token with a space: err = %v, want one that does not quote it", err)
	}
	os.WriteFile(path, []byte("\n"), 0o600)
	if _, err := o.token(); err != errNoToken {
		t.Errorf("empty token file: err = %v, want errNoToken", err)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{max: 2 * time.Second}
	prevCap := time.Duration(0)
	for i := range 10 {
		d := b.next()
		if b.cur < prevCap || b.cur > b.max {
			t.Fatalf("step %d: cap %v after %v, max %v", i, b.cur, prevCap, b.max)
		}
		if d < b.cur/2 || d > b.cur {
			t.Fatalf("step %d: wait %v outside [%v, %v]", i, d, b.cur/2, b.cur)
		}
		prevCap = b.cur
	}
	if b.cur != b.max {
		t.Errorf("cap %v after 10 steps, want %v", b.cur, b.max)
	}
	b.reset()
	if b.next(); b.cur != firstBackoff {
		t.Errorf("after reset the cap is %v, want %v", b.cur, firstBackoff)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-5", 0},
		{"99999999999", maxRetryAfter},
		{"soon", 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	} {
		resp := &http.Response{Header: http.Header{}}
		if tc.header != "" {
			resp.Header.Set("Retry-After", tc.header)
		}
		if got := retryAfter(resp); got != tc.want {
			t.Errorf("Retry-After %q = %v, want %v", tc.header, got, tc.want)
		}
	}
	resp := &http.Response{Header: http.Header{"Retry-After": {time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)}}}
	if got := retryAfter(resp); got <= 0 || got > time.Minute {
		t.Errorf("Retry-After a minute from now = %v", got)
	}
}
