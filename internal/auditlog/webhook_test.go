package auditlog

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func post(t *testing.T, h http.Handler, method, contentType string, body io.Reader) int {
	t.Helper()
	r := httptest.NewRequest(method, "/audit?timeout=30s", body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestWebhook(t *testing.T) {
	body, err := os.ReadFile("testdata/eventlist.json")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{fail: 1}
	wh := NewWebhook(c.sink, nil)

	if got := post(t, wh, http.MethodPost, "application/json", bytes.NewReader(body)); got != http.StatusServiceUnavailable {
		t.Errorf("with the sink down: status %d, want 503", got)
	}
	if n := len(c.snapshot()); n != 0 {
		t.Fatalf("sink holds %d events after failing", n)
	}
	if got := post(t, wh, http.MethodPost, "application/json; charset=utf-8", bytes.NewReader(body)); got != http.StatusOK {
		t.Errorf("retried batch: status %d, want 200", got)
	}
	if n := len(c.snapshot()); n != len(wantFixture) {
		t.Errorf("sink holds %d events, want %d", n, len(wantFixture))
	}
	assertNoSecrets(t, c.snapshot())

	tests := []struct {
		name, method, contentType string
		body                      io.Reader
		want                      int
	}{
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed},
		{"no content type", http.MethodPost, "", bytes.NewReader(body), http.StatusUnsupportedMediaType},
		{"yaml", http.MethodPost, "application/yaml", bytes.NewReader(body), http.StatusUnsupportedMediaType},
		{"malformed", http.MethodPost, "application/json", strings.NewReader(`{"kind":"EventList"`), http.StatusBadRequest},
		{"too big", http.MethodPost, "application/json", bytes.NewReader(make([]byte, MaxBodySize+1)), http.StatusRequestEntityTooLarge},
		{"too big without length", http.MethodPost, "application/json", io.MultiReader(strings.NewReader(" "), bytes.NewReader(make([]byte, MaxBodySize+1))), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(t, wh, tt.method, tt.contentType, tt.body); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	if c.calls != 2 {
		t.Errorf("sink called %d times, want 2", c.calls)
	}
}
