package admission

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

func FuzzParsePolicy(f *testing.F) {
	f.Add(defaultPolicyYAML)
	if data, err := os.ReadFile("testdata/policy.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("rules:\n  - id: a\n    action: warn\n    violation: vulnerabilities.map(v, describe(v))\n"))
	f.Add([]byte("exemptions:\n  - image: '*'\n    reason: r\n    expires: 2027-01-01\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data, "fuzz.yaml")
		if err != nil {
			return
		}
		// Whatever parses must be accepted by a Reviewer.
		if _, err := NewReviewer(Options{Policy: p, Facts: newFakeFacts()}); err != nil {
			t.Fatalf("parsed policy rejected by NewReviewer: %v", err)
		}
	})
}

func FuzzServeHTTP(f *testing.F) {
	r, err := NewReviewer(Options{Policy: DefaultPolicy(), Facts: newFakeFacts(), NamespaceLabels: namespaceLabels})
	if err != nil {
		f.Fatal(err)
	}
	o := object{kind: "Pod", namespace: "prod", name: "web", containers: containers(imgVuln, imgClean, imgUnscanned),
		ephemeral: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "d", Image: imgMany}}}}
	f.Add(reviewBody(f, request(f, admissionv1.Create, o, nil)))
	f.Add(reviewBody(f, request(f, admissionv1.Update, o, &o)))
	d := o
	d.kind = "CronJob"
	f.Add(reviewBody(f, request(f, admissionv1.Create, d, nil)))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"image":"x"}]}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code == http.StatusBadRequest {
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		var in, out admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("accepted a body that is not a review: %v", err)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("response is not a review: %v: %s", err, rec.Body.String())
		}
		if out.Response.UID != in.Request.UID {
			t.Fatalf("response UID %q, want %q", out.Response.UID, in.Request.UID)
		}
		if len(out.Response.Warnings) > maxWarnings {
			t.Fatalf("%d warnings", len(out.Response.Warnings))
		}
		for _, w := range out.Response.Warnings {
			if len(w) > maxWarningLength {
				t.Fatalf("warning of %d bytes: %q", len(w), w)
			}
		}
	})
}
