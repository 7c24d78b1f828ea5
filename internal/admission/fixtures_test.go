package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apitypes "k8s.io/apimachinery/pkg/types"
)

// testNow is the clock of every test review.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// Images of the fake Facts.
const (
	imgVuln      = "registry.example/team/vuln:1.0"
	imgClean     = "registry.example/team/clean:1.0"
	imgHigh      = "registry.example/other/high:1.0"
	imgLow       = "registry.example/other/low:1.0"
	imgUnscanned = "registry.example/other/new:1.0"
	imgNoDigest  = "registry.example/other/nodigest:1.0"
	imgMany      = "registry.example/other/many:1.0"
	imgBroken    = "registry.example/other/broken:1.0"
)

var critLibc = Vulnerability{ID: "CVE-2025-4802", Aliases: []string{"DSA-5999-1"}, Severity: "CRITICAL", CVSS: 9.8, Fixable: true,
	Package: "libc6", Version: "2.36-9+deb12u9", FixedVersion: "2.36-9+deb12u11"}

func scanned(ref, digest string, vulns ...Vulnerability) *ImageFacts {
	p := parseReference(ref)
	f := &ImageFacts{Reference: ref, Registry: p.registry, Repository: p.repository, Tag: p.tag, Digest: digest,
		Scanned: true, ScannedAt: testNow.Add(-time.Hour), Vulnerabilities: vulns}
	for _, v := range vulns {
		switch v.Severity {
		case "CRITICAL":
			f.Summary.Critical++
		case "HIGH":
			f.Summary.High++
		case "MEDIUM":
			f.Summary.Medium++
		case "LOW":
			f.Summary.Low++
		default:
			f.Summary.Unknown++
		}
		if v.Fixable {
			f.Summary.Fixable++
		}
	}
	return f
}

func manyCritical(n int) []Vulnerability {
	var vs []Vulnerability
	for i := range n {
		vs = append(vs, Vulnerability{ID: fmt.Sprintf("CVE-2025-%04d", 1000+i), Severity: "CRITICAL", Fixable: true,
			Package: "pkg", FixedVersion: "2"})
	}
	return vs
}

// fakeFacts is an in-memory Facts. The real store-backed provider is
// exercised by the webhook's integration test against a real API server.
type fakeFacts struct {
	mu        sync.Mutex
	images    map[string]*ImageFacts
	errs      map[string]error
	scans     map[string]*ImageFacts
	scanDelay time.Duration
	lookups   int
}

func newFakeFacts() *fakeFacts {
	return &fakeFacts{
		images: map[string]*ImageFacts{
			imgVuln: scanned(imgVuln, "sha256:aaaa", critLibc,
				Vulnerability{ID: "CVE-2024-0001", Severity: "HIGH", CVSS: 7.5, Fixable: true, Package: "openssl", FixedVersion: "3.0.15"},
				Vulnerability{ID: "CVE-2023-0002", Severity: "LOW", Package: "bash"}),
			imgClean:    scanned(imgClean, "sha256:cccc"),
			imgHigh:     scanned(imgHigh, "sha256:hhhh", Vulnerability{ID: "CVE-2024-0003", Severity: "HIGH", Fixable: true, Package: "zlib", FixedVersion: "1.3"}),
			imgLow:      scanned(imgLow, "sha256:llll", Vulnerability{ID: "CVE-2023-0004", Severity: "LOW", Package: "tar"}),
			imgNoDigest: {Reference: imgNoDigest, Scanned: true},
			imgMany:     scanned(imgMany, "sha256:mmmm", manyCritical(15)...),
		},
		errs:  map[string]error{imgBroken: fmt.Errorf("store unavailable")},
		scans: map[string]*ImageFacts{imgUnscanned: scanned(imgUnscanned, "sha256:nnnn", critLibc)},
	}
}

func (f *fakeFacts) Image(_ context.Context, ref string) (*ImageFacts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if err := f.errs[ref]; err != nil {
		return nil, err
	}
	if im, ok := f.images[ref]; ok {
		return im, nil
	}
	return nil, ErrNotFound
}

func (f *fakeFacts) ScanNow(ctx context.Context, ref string) (*ImageFacts, error) {
	select {
	case <-time.After(f.scanDelay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if im, ok := f.scans[ref]; ok {
		return im, nil
	}
	return nil, ErrNotSupported
}

func namespaceLabels(_ context.Context, ns string) (map[string]string, error) {
	if ns == "prod" {
		return map[string]string{"bulwark.io/enforce": "true"}, nil
	}
	return map[string]string{}, nil
}

// object is what a test request carries.
type object struct {
	kind                string
	namespace, name     string
	annotations         map[string]string
	templateAnnotations map[string]string
	containers          []corev1.Container
	initContainers      []corev1.Container
	ephemeral           []corev1.EphemeralContainer
	ownedByController   bool
}

func containers(images ...string) []corev1.Container {
	var cs []corev1.Container
	for i, im := range images {
		cs = append(cs, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: im})
	}
	return cs
}

var kindGroups = map[string]string{
	"Pod": "", "Deployment": "apps", "ReplicaSet": "apps", "StatefulSet": "apps", "DaemonSet": "apps",
	"Job": "batch", "CronJob": "batch",
}

func (o object) raw(t testing.TB) []byte {
	t.Helper()
	meta := metav1.ObjectMeta{Namespace: o.namespace, Name: o.name, Annotations: o.annotations}
	if o.ownedByController {
		yes := true
		meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "rs", Controller: &yes}}
	}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": o.name}, Annotations: o.templateAnnotations},
		Spec:       corev1.PodSpec{Containers: o.containers, InitContainers: o.initContainers, EphemeralContainers: o.ephemeral},
	}
	var v any
	switch o.kind {
	case "Pod":
		v = &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: meta, Spec: tmpl.Spec}
	case "Deployment":
		v = &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: o.kind}, ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Template: tmpl}}
	case "ReplicaSet":
		v = &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: o.kind}, ObjectMeta: meta, Spec: appsv1.ReplicaSetSpec{Template: tmpl}}
	case "StatefulSet":
		v = &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: o.kind}, ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Template: tmpl}}
	case "DaemonSet":
		v = &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: o.kind}, ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Template: tmpl}}
	case "Job":
		v = &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: o.kind}, ObjectMeta: meta, Spec: batchv1.JobSpec{Template: tmpl}}
	case "CronJob":
		v = &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: o.kind}, ObjectMeta: meta,
			Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}}
	default:
		t.Fatalf("no fixture for kind %s", o.kind)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// request builds an admission request for o; old, if set, becomes the
// oldObject of an UPDATE.
func request(t testing.TB, op admissionv1.Operation, o object, old *object) *admissionv1.AdmissionRequest {
	t.Helper()
	gvk := metav1.GroupVersionKind{Group: kindGroups[o.kind], Version: "v1", Kind: o.kind}
	req := &admissionv1.AdmissionRequest{
		UID: apitypes.UID("uid-" + o.name), Kind: gvk, RequestKind: &gvk,
		Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: "v1", Resource: "x"},
		Namespace: o.namespace, Name: o.name, Operation: op,
		UserInfo: authenticationv1.UserInfo{Username: "alice", Groups: []string{"dev"}},
		Object:   runtime.RawExtension{Raw: o.raw(t)},
	}
	if old != nil {
		req.OldObject = runtime.RawExtension{Raw: old.raw(t)}
	}
	return req
}

func reviewBody(t testing.TB, req *admissionv1.AdmissionRequest) []byte {
	t.Helper()
	data, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}
