// Package referrer attaches Bulwark's scan reports to the images they are
// about, in the image's own registry, as OCI 1.1 referrers: an artifact
// manifest whose subject is the image, so anyone with pull access can find
// the report next to the image (`oras discover`, `crane referrers`).
//
// It owns the artifact's shape, publishing it, and listing the reports an
// image has. Registries without the referrers API get the referrers tag
// schema ("sha256-<hex>" index), which go-containerregistry maintains.
// It does not own the report's content or registry credentials.
package referrer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ArtifactType is the default artifact type of a published report.
const ArtifactType = "application/vnd.bulwark.report.v1+json"

// AnnotationCreated is the annotation holding when a report was
// published, RFC 3339 in UTC with nanoseconds so that reports published
// in the same second still sort.
const AnnotationCreated = "org.opencontainers.image.created"

// ErrSubjectNotFound is returned when the image a report is about is not
// in its registry.
var ErrSubjectNotFound = errors.New("subject image not found")

// Options say how to publish and find reports. The zero value publishes
// with ArtifactType, anonymously, over HTTPS (plain HTTP to loopback).
type Options struct {
	// ArtifactType is the manifest's artifactType; ArtifactType when empty.
	ArtifactType string
	// MediaType is the media type of the report blob; the artifact type
	// when empty.
	MediaType string
	// Annotations are added to the manifest. AnnotationCreated is set to
	// the time of publishing unless given here.
	Annotations map[string]string
	// Auth authenticates to the registry; anonymous when nil.
	Auth authn.Authenticator
	// Insecure allows plain HTTP to the registry.
	Insecure bool
	// Transport is the HTTP transport; remote.DefaultTransport when nil.
	Transport http.RoundTripper
}

func (o Options) artifactType() string {
	if o.ArtifactType == "" {
		return ArtifactType
	}
	return o.ArtifactType
}

func (o Options) mediaType() string {
	if o.MediaType == "" {
		return o.artifactType()
	}
	return o.MediaType
}

// remoteOptions returns the go-containerregistry options for o.
func (o Options) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(authn.Anonymous)}
	if o.Auth != nil {
		opts[1] = remote.WithAuth(o.Auth)
	}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return opts
}

// subjectRef applies Insecure to subject: whether plain HTTP is allowed
// is part of a go-containerregistry reference. It is rebuilt from its
// parts, not re-parsed, so a registry host without a dot stays the host.
func (o Options) subjectRef(subject name.Digest) (name.Digest, error) {
	if !o.Insecure {
		return subject, nil
	}
	reg, err := name.NewRegistry(subject.RegistryStr(), name.Insecure)
	if err != nil {
		return name.Digest{}, fmt.Errorf("subject %s: %w", subject, err)
	}
	return reg.Repo(subject.RepositoryStr()).Digest(subject.DigestStr()), nil
}
