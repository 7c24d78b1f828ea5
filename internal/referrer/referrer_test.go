package referrer

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// registries are the real registries Publish and List are tested with.
var registries = []struct {
	name string
	// referrersAPI says whether the registry serves the referrers API; if
	// not, go-containerregistry keeps the referrers tag.
	referrersAPI bool
	start        func(t *testing.T) *testenv.Registry
}{
	{"distribution 2.8", false, func(t *testing.T) *testenv.Registry { return testenv.StartDistribution(t) }},
	{"go-containerregistry", false, func(t *testing.T) *testenv.Registry { return testenv.InProcessRegistry(t) }},
	{"go-containerregistry with referrers API", true, startReferrersRegistry},
}

// startReferrersRegistry serves go-containerregistry's registry with its
// referrers API on; testenv's in-process registry has it off.
func startReferrersRegistry(t *testing.T) *testenv.Registry {
	srv := httptest.NewServer(registry.New(
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(io.Discard, "", 0)),
	))
	t.Cleanup(srv.Close)
	return &testenv.Registry{Host: strings.TrimPrefix(srv.URL, "http://")}
}

func TestPublishAndList(t *testing.T) {
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.start(t)
			ctx := t.Context()
			img, err := random.Image(256, 1)
			if err != nil {
				t.Fatal(err)
			}
			subject := r.PushImage(t, "team/app:v1", img)
			opts := Options{Auth: r.Auth()}

			report := []byte(`{"findings":[{"id":"CVE-2026-0001"}]}`)
			ref, err := Publish(ctx, subject, report, opts)
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			checkArtifact(t, ref, subject, report, opts)

			got, err := List(ctx, subject, ArtifactType, opts)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(got) != 1 || got[0].Digest.String() != ref.DigestStr() || got[0].ArtifactType != ArtifactType {
				t.Fatalf("List = %+v, want the one report %s", got, ref.DigestStr())
			}
			if _, err := time.Parse(time.RFC3339, got[0].Annotations[AnnotationCreated]); err != nil {
				t.Errorf("listed referrer has no created annotation: %v", got[0].Annotations)
			}
			if reg.referrersAPI {
				checkRegistryListsConfigType(t, subject, opts)
			}

			checkFallbackTag(t, subject, ref, opts, !reg.referrersAPI)

			// The same report again is not a second referrer.
			again, err := Publish(ctx, subject, report, opts)
			if err != nil {
				t.Fatalf("Publish again: %v", err)
			}
			if again != ref {
				t.Errorf("Publish of the same report = %s, want the existing %s", again, ref)
			}
			if got, _ := List(ctx, subject, ArtifactType, opts); len(got) != 1 {
				t.Errorf("after publishing the same report twice, List = %d referrers, want 1", len(got))
			}

			// A newer report is added; List has both, oldest first.
			newer := []byte(`{"findings":[]}`)
			newRef, err := Publish(ctx, subject, newer, opts)
			if err != nil {
				t.Fatalf("Publish newer: %v", err)
			}
			checkArtifact(t, newRef, subject, newer, opts)
			got, err = List(ctx, subject, ArtifactType, opts)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var gotDigests []string
			for _, d := range got {
				gotDigests = append(gotDigests, d.Digest.String())
			}
			if diff := cmp.Diff([]string{ref.DigestStr(), newRef.DigestStr()}, gotDigests); diff != "" {
				t.Errorf("List after a newer report, oldest first (-want +got):\n%s", diff)
			}

			// Filtering by artifact type.
			other, err := Publish(ctx, subject, report, Options{Auth: r.Auth(), ArtifactType: "application/vnd.example.sbom+json", MediaType: "application/spdx+json"})
			if err != nil {
				t.Fatalf("Publish of another artifact type: %v", err)
			}
			if other == ref {
				t.Error("the same bytes under another artifact type were taken for the existing report")
			}
			if got, _ := List(ctx, subject, ArtifactType, opts); len(got) != 2 {
				t.Errorf("List(%s) = %d referrers, want 2", ArtifactType, len(got))
			}
			if got, _ := List(ctx, subject, "application/vnd.example.sbom+json", opts); len(got) != 1 || got[0].Digest.String() != other.DigestStr() {
				t.Errorf("List of the other type = %+v, want %s", got, other.DigestStr())
			}
			if got, _ := List(ctx, subject, "", opts); len(got) != 3 {
				t.Errorf("List of every type = %d referrers, want 3", len(got))
			}
		})
	}
}

// checkArtifact fetches the artifact at ref and checks it is an OCI 1.1
// artifact about subject holding report.
func checkArtifact(t *testing.T, ref, subject name.Digest, report []byte, opts Options) {
	t.Helper()
	ro := opts.remoteOptions(t.Context())
	desc, err := remote.Get(ref, ro...)
	if err != nil {
		t.Fatalf("fetching artifact %s: %v", ref, err)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		t.Fatal(err)
	}
	subjectDesc, err := remote.Head(subject, ro...)
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != opts.artifactType() {
		t.Errorf("manifest mediaType %q artifactType %q", m.MediaType, m.ArtifactType)
	}
	if m.Subject == nil || m.Subject.Digest.String() != subject.DigestStr() ||
		m.Subject.MediaType != subjectDesc.MediaType || m.Subject.Size != subjectDesc.Size {
		t.Errorf("manifest subject = %+v, want %+v", m.Subject, subjectDesc)
	}
	if m.Config.MediaType != types.OCIEmptyJSON || m.Config.Digest != emptyConfigDigest || m.Config.Size != 2 {
		t.Errorf("manifest config = %+v, want the empty descriptor", m.Config)
	}
	if _, err := time.Parse(time.RFC3339, m.Annotations[AnnotationCreated]); err != nil {
		t.Errorf("created annotation: %v", err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.MediaType(opts.mediaType()) {
		t.Fatalf("manifest layers = %+v", m.Layers)
	}
	for _, blob := range []struct {
		desc v1.Descriptor
		want []byte
	}{{m.Config, emptyConfig}, {m.Layers[0], report}} {
		l, err := remote.Layer(ref.Context().Digest(blob.desc.Digest.String()), ro...)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed() // the blob as stored
		if err != nil {
			t.Fatalf("fetching blob %s: %v", blob.desc.Digest, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("reading blob %s: %v", blob.desc.Digest, err)
		}
		if string(got) != string(blob.want) {
			t.Errorf("blob %s = %q, want %q", blob.desc.Digest, got, blob.want)
		}
	}
}

// checkRegistryListsConfigType shows why List reads manifests listed with
// the empty config's media type: go-containerregistry's registry lists a
// referrer's config media type, not its artifactType.
func checkRegistryListsConfigType(t *testing.T, subject name.Digest, opts Options) {
	t.Helper()
	idx, err := remote.Referrers(subject, opts.remoteOptions(t.Context())...)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("referrers API lists %d manifests, want 1", len(im.Manifests))
	}
	if got := im.Manifests[0].ArtifactType; got != string(types.OCIEmptyJSON) {
		t.Logf("the registry now lists artifactType %q; List's manifest reads for %s may be unneeded", got, types.OCIEmptyJSON)
	}
}

// checkFallbackTag checks the referrers tag schema's index is there, with
// ref in it, exactly when the registry lacks the referrers API.
func checkFallbackTag(t *testing.T, subject, ref name.Digest, opts Options, want bool) {
	t.Helper()
	tag := subject.Context().Tag(strings.Replace(subject.DigestStr(), ":", "-", 1))
	desc, err := remote.Get(tag, opts.remoteOptions(t.Context())...)
	if !want {
		if err == nil {
			t.Errorf("registry with the referrers API also has the referrers tag %s", tag)
		}
		return
	}
	if err != nil {
		t.Fatalf("referrers tag %s: %v", tag, err)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != ref.DigestStr() ||
		im.Manifests[0].ArtifactType != opts.artifactType() {
		t.Errorf("referrers tag %s = %+v, want an index of %s", tag, im, ref.DigestStr())
	}
}

func TestPublishIndexSubject(t *testing.T) {
	r := testenv.InProcessRegistry(t)
	idx, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag := r.Ref(t, "multi:latest")
	if err := remote.WriteIndex(tag, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	h, _ := idx.Digest()
	subject := tag.Context().Digest(h.String())
	ref, err := Publish(t.Context(), subject, []byte("{}"), Options{})
	if err != nil {
		t.Fatalf("Publish for an index: %v", err)
	}
	checkArtifact(t, ref, subject, []byte("{}"), Options{})
}

func TestPublishErrors(t *testing.T) {
	r := testenv.StartDistribution(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	subject := r.PushImage(t, "app:v1", img)
	missing := subject.Context().Digest("sha256:" + strings.Repeat("0", 64))

	_, err = Publish(t.Context(), missing, []byte("{}"), Options{Auth: r.Auth()})
	if !errors.Is(err, ErrSubjectNotFound) || !strings.Contains(err.Error(), missing.DigestStr()) {
		t.Errorf("Publish for a missing subject: error = %v, want %v naming the digest", err, ErrSubjectNotFound)
	}

	wrongAuth := Options{Auth: &authn.Basic{Username: r.Username, Password: "wrong"}}
	_, err = Publish(t.Context(), subject, []byte("{}"), wrongAuth)
	if err == nil || errors.Is(err, ErrSubjectNotFound) || !strings.Contains(err.Error(), "401") {
		t.Errorf("Publish with a wrong password: error = %v, want an authentication failure", err)
	}
	if _, err := List(t.Context(), subject, "", wrongAuth); err == nil {
		t.Error("List with a wrong password succeeded")
	}
}

func TestOptionsTransportAndInsecure(t *testing.T) {
	r := testenv.InProcessRegistry(t)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	subject := r.PushImage(t, "app:v1", img)
	rt := &countingTransport{next: http.DefaultTransport}
	opts := Options{Insecure: true, Transport: rt, Annotations: map[string]string{"org.example.scanner": "bulwark"}}
	ref, err := Publish(t.Context(), subject, []byte("{}"), opts)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if rt.n == 0 {
		t.Error("Publish did not use Options.Transport")
	}
	got, err := List(t.Context(), subject, ArtifactType, opts)
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v", got, err)
	}
	if got[0].Digest.String() != ref.DigestStr() || got[0].Annotations["org.example.scanner"] != "bulwark" {
		t.Errorf("listed referrer %+v lacks the annotation given", got[0])
	}
}

type countingTransport struct {
	next http.RoundTripper
	n    int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n++
	return c.next.RoundTrip(req)
}
