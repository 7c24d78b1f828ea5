package referrer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// emptyConfig is the OCI empty descriptor's content: an artifact has no
// image config, and OCI 1.1 says to point config at this instead.
var emptyConfig = []byte("{}")

// Publish pushes report to subject's repository as an artifact that refers
// to subject, and returns the artifact's reference by digest.
//
// Publishing the same report bytes, with the same artifact type, for the
// same subject again does not add a second referrer: the one already
// there is returned. A different report is added next to the earlier
// ones; List returns them all, oldest first.
func Publish(ctx context.Context, subject name.Digest, report []byte, opts Options) (name.Digest, error) {
	subject, err := opts.subjectRef(subject)
	if err != nil {
		return name.Digest{}, fmt.Errorf("publishing report: %w", err)
	}
	ro := opts.remoteOptions(ctx)
	subjectDesc, err := describeSubject(subject, ro)
	if err != nil {
		return name.Digest{}, fmt.Errorf("publishing report for %s: %w", subject, err)
	}

	reportLayer := static.NewLayer(report, types.MediaType(opts.mediaType()))
	reportDigest, err := reportLayer.Digest()
	if err != nil {
		return name.Digest{}, fmt.Errorf("publishing report for %s: hashing report: %w", subject, err)
	}
	if existing, ok, err := findPublished(ctx, subject, reportDigest, opts); err != nil {
		return name.Digest{}, fmt.Errorf("publishing report for %s: %w", subject, err)
	} else if ok {
		return existing, nil
	}

	configLayer := static.NewLayer(emptyConfig, types.OCIEmptyJSON)
	for _, blob := range []v1.Layer{configLayer, reportLayer} {
		if err := remote.WriteLayer(subject.Context(), blob, ro...); err != nil {
			return name.Digest{}, fmt.Errorf("publishing report for %s: uploading blob: %w", subject, err)
		}
	}
	raw, err := artifactManifest(subjectDesc, report, reportDigest, opts)
	if err != nil {
		return name.Digest{}, fmt.Errorf("publishing report for %s: %w", subject, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return name.Digest{}, fmt.Errorf("publishing report for %s: hashing manifest: %w", subject, err)
	}
	ref := subject.Context().Digest(h.String())
	// go-containerregistry sees the manifest's subject and, when the
	// registry lacks the referrers API, adds it to the subject's
	// referrers tag index.
	if err := remote.Put(ref, rawManifest(raw), ro...); err != nil {
		return name.Digest{}, fmt.Errorf("publishing report for %s: pushing manifest: %w", subject, err)
	}
	return ref, nil
}

// describeSubject returns the descriptor of the subject manifest.
func describeSubject(subject name.Digest, ro []remote.Option) (v1.Descriptor, error) {
	desc, err := remote.Head(subject, ro...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return v1.Descriptor{}, fmt.Errorf("%w: %s: %w", ErrSubjectNotFound, subject, err)
		}
		return v1.Descriptor{}, fmt.Errorf("looking up subject: %w", err)
	}
	if desc.Digest.String() != subject.DigestStr() {
		return v1.Descriptor{}, fmt.Errorf("looking up subject: registry answered with digest %s", desc.Digest)
	}
	// Only the fields a subject descriptor has; Head may fill in others.
	return v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}, nil
}

// artifactManifest is the OCI 1.1 artifact manifest for a report.
func artifactManifest(subject v1.Descriptor, report []byte, reportDigest v1.Hash, opts Options) ([]byte, error) {
	annotations := map[string]string{AnnotationCreated: time.Now().UTC().Format(time.RFC3339Nano)}
	maps.Copy(annotations, opts.Annotations)
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  opts.artifactType(),
		Config: v1.Descriptor{
			MediaType: types.OCIEmptyJSON,
			Size:      int64(len(emptyConfig)),
			Digest:    emptyConfigDigest,
			Data:      emptyConfig,
		},
		Layers: []v1.Descriptor{{
			MediaType: types.MediaType(opts.mediaType()),
			Size:      int64(len(report)),
			Digest:    reportDigest,
		}},
		Subject:     &subject,
		Annotations: annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding artifact manifest: %w", err)
	}
	return raw, nil
}

var emptyConfigDigest = func() v1.Hash {
	h, _, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		panic(err) // hashing a byte slice does not fail
	}
	return h
}()

// rawManifest is a manifest to push as it is.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
