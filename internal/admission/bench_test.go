package admission

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

// benchPod is the benchmark's request: a Pod with three containers in an
// enforced namespace, one of them with a denying image, so that every rule
// is matched and the message and warnings are built.
func benchPod(b *testing.B) *admissionv1.AdmissionRequest {
	return request(b, admissionv1.Create, object{kind: "Pod", namespace: "prod", name: "web",
		containers: containers(imgVuln, imgClean, imgHigh)}, nil)
}

func benchReviewer(b *testing.B) *Reviewer {
	facts := newFakeFacts()
	r, err := NewReviewer(Options{Policy: DefaultPolicy(), Facts: facts, NamespaceLabels: namespaceLabels, Record: func(Decision) {}})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range facts.images {
		if err := r.Precompute(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

func BenchmarkReview(b *testing.B) {
	r := benchReviewer(b)
	req := benchPod(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, d := r.Review(ctx, req); d.Allowed {
			b.Fatal("want a denial")
		}
	}
}

// BenchmarkReviewHTTPS serves the Reviewer over real TLS, with one HTTP/1.1
// keep-alive connection as kube-apiserver uses, and reports latency at a
// paced 200 reviews/s next to unpaced throughput. Run it with -cpu 1.
func BenchmarkReviewHTTPS(b *testing.B) {
	r := benchReviewer(b)
	srv := httptest.NewTLSServer(r)
	defer srv.Close()
	client := srv.Client()
	body := reviewBody(b, benchPod(b))
	url := srv.URL + "/validate?timeout=10s"
	post := func() time.Duration {
		start := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	post() // handshake outside the measurement

	report := func(b *testing.B, lat []time.Duration) {
		slices.Sort(lat)
		q := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
		}
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
	}
	b.Run("paced-200rps", func(b *testing.B) {
		const interval = time.Second / 200
		var lat []time.Duration
		next := time.Now()
		for b.Loop() {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
			lat = append(lat, post())
		}
		report(b, lat)
	})
	b.Run("unpaced", func(b *testing.B) {
		var lat []time.Duration
		start := time.Now()
		for b.Loop() {
			lat = append(lat, post())
		}
		b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "reviews/s")
		report(b, lat)
	})
}
