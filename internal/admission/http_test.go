package admission

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
)

func TestServeHTTP(t *testing.T) {
	r := newTestReviewer(t, DefaultPolicy(), newFakeFacts(), nil)
	good := reviewBody(t, request(t, admissionv1.Create, object{kind: "Pod", namespace: "prod", name: "web", containers: containers(imgVuln)}, nil))
	huge := append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","object":{"a":"`),
		bytes.Repeat([]byte("x"), maxBodyBytes)...)
	huge = append(huge, `"}}}`...)
	tests := []struct {
		name        string
		method      string
		contentType string
		body        []byte
		wantStatus  int
		wantError   string
	}{
		{name: "not JSON", body: []byte("hello"), wantStatus: 400, wantError: "not valid JSON"},
		{name: "empty", body: nil, wantStatus: 400, wantError: "not valid JSON"},
		{name: "JSON array", body: []byte("[1,2]"), wantStatus: 400, wantError: "not valid JSON"},
		{name: "trailing garbage", body: append(append([]byte{}, good...), '}'), wantStatus: 400, wantError: "not valid JSON"},
		{name: "huge", body: huge, wantStatus: 400, wantError: "larger than 3 MiB"},
		{name: "wrong apiVersion", body: []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`), wantStatus: 400, wantError: "want apiVersion"},
		{name: "wrong kind", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"x"}}`), wantStatus: 400, wantError: "want apiVersion"},
		{name: "missing request", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), wantStatus: 400, wantError: "no request"},
		{name: "missing uid", body: []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}`), wantStatus: 400, wantError: "no uid"},
		{name: "wrong content type", contentType: "text/plain", body: good, wantStatus: 400, wantError: "application/json"},
		{name: "no content type", contentType: "-", body: good, wantStatus: 400, wantError: "application/json"},
		{name: "GET", method: http.MethodGet, body: good, wantStatus: 405},
		{name: "good", body: good, wantStatus: 200},
		{name: "good with charset", contentType: "application/json; charset=utf-8", body: good, wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/admission?timeout=10s", bytes.NewReader(tc.body))
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %q", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantStatus != 200 {
				if !strings.Contains(rec.Body.String(), tc.wantError) || rec.Body.Len() > 200 {
					t.Errorf("error body %q, want a short error containing %q", rec.Body.String(), tc.wantError)
				}
				return
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("response is not a review: %v", err)
			}
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
				t.Fatalf("response = %s", rec.Body.String())
			}
			if out.Response.UID != "uid-web" || out.Response.Allowed || out.Response.Result.Code != 403 {
				t.Errorf("response = %+v, want uid-web denied with 403", out.Response)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
		})
	}
}
