package admission

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// maxBodyBytes is kube-apiserver's own limit on a request body.
const maxBodyBytes = 3 << 20

// ServeHTTP answers one AdmissionReview (admission.k8s.io/v1) POSTed as
// JSON. A body that is not a well-formed review gets HTTP 400 with a short
// error: there is no UID to answer. Everything past that point is answered
// with a review; see Review.
func (r *Reviewer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "admission review must be POSTed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "content type must be application/json", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "admission review larger than 3 MiB", http.StatusBadRequest)
			return
		}
		http.Error(w, "reading admission review failed", http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(w, "admission review is not valid JSON", http.StatusBadRequest)
		return
	}
	switch {
	case review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview":
		http.Error(w, "want apiVersion admission.k8s.io/v1, kind AdmissionReview", http.StatusBadRequest)
		return
	case review.Request == nil:
		http.Error(w, "admission review has no request", http.StatusBadRequest)
		return
	case review.Request.UID == "":
		http.Error(w, "admission review request has no uid", http.StatusBadRequest)
		return
	}
	ctx := req.Context()
	// kube-apiserver says how long it waits (?timeout=10s); answer inside it.
	if t, err := time.ParseDuration(req.URL.Query().Get("timeout")); err == nil && t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t*9/10)
		defer cancel()
	}
	resp, _ := r.Review(ctx, review.Request)
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, "encoding admission response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}
