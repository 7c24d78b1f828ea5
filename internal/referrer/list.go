package referrer

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// List returns the descriptors of the manifests that refer to subject and
// have artifactType (all of them when it is empty), oldest first by their
// AnnotationCreated. It uses the registry's referrers API, or the
// referrers tag when the registry has none.
func List(ctx context.Context, subject name.Digest, artifactType string, opts Options) ([]v1.Descriptor, error) {
	subject, err := opts.subjectRef(subject)
	if err != nil {
		return nil, fmt.Errorf("listing referrers: %w", err)
	}
	ro := opts.remoteOptions(ctx)
	idx, err := remote.Referrers(subject, ro...)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	var descs []v1.Descriptor
	for _, d := range im.Manifests {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
		}
		if d.ArtifactType == string(types.OCIEmptyJSON) {
			// The spec has a manifest with an empty config carry
			// artifactType, and the listing copy it; some registries
			// (go-containerregistry's) list the config's media type
			// instead. Read the manifest to learn the real type.
			if d, err = fixArtifactType(subject, d, ro); err != nil {
				return nil, fmt.Errorf("listing referrers of %s: %w", subject, err)
			}
		}
		if artifactType == "" || d.ArtifactType == artifactType {
			descs = append(descs, d)
		}
	}
	slices.SortStableFunc(descs, func(a, b v1.Descriptor) int {
		return created(a).Compare(created(b))
	})
	return descs, nil
}

// created is when d was published, or the zero time when it does not say.
func created(d v1.Descriptor) time.Time {
	t, _ := time.Parse(time.RFC3339, d.Annotations[AnnotationCreated]) // RFC3339 accepts fractional seconds
	return t
}

// fixArtifactType sets d's ArtifactType from the manifest it describes.
func fixArtifactType(subject name.Digest, d v1.Descriptor, ro []remote.Option) (v1.Descriptor, error) {
	m, err := fetchManifest(subject.Context().Digest(d.Digest.String()), ro)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if m.ArtifactType != "" {
		d.ArtifactType = m.ArtifactType
	}
	return d, nil
}

// fetchManifest gets and decodes the image manifest at ref.
func fetchManifest(ref name.Digest, ro []remote.Option) (*v1.Manifest, error) {
	desc, err := remote.Get(ref, ro...)
	if err != nil {
		return nil, fmt.Errorf("fetching referrer %s: %w", ref, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return nil, fmt.Errorf("decoding referrer %s: %w", ref, err)
	}
	return m, nil
}

// findPublished looks among subject's reports of the same artifact type
// for one whose report blob has reportDigest.
func findPublished(ctx context.Context, subject name.Digest, reportDigest v1.Hash, opts Options) (name.Digest, bool, error) {
	descs, err := List(ctx, subject, opts.artifactType(), opts)
	if err != nil {
		return name.Digest{}, false, fmt.Errorf("checking for an earlier copy: %w", err)
	}
	ro := opts.remoteOptions(ctx)
	// Newest first: a republished report is most likely the latest one.
	for _, d := range slices.Backward(descs) {
		ref := subject.Context().Digest(d.Digest.String())
		m, err := fetchManifest(ref, ro)
		if err != nil {
			return name.Digest{}, false, fmt.Errorf("checking for an earlier copy: %w", err)
		}
		for _, l := range m.Layers {
			if l.Digest == reportDigest {
				return ref, true, nil
			}
		}
	}
	return name.Digest{}, false, nil
}
