package notification

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// event is the part of a distribution event Parse reads. Fields it does
// not need (sizes, actor, source) are not decoded, so a registry's
// variations there cannot make an event fail.
type event struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// parseEvent returns the push an event records; ok is false for an event
// that is not a manifest push.
func parseEvent(raw json.RawMessage) (push Push, ok bool, err error) {
	var e event
	if err := json.Unmarshal(raw, &e); err != nil {
		return Push{}, false, fmt.Errorf("decoding event: %w", err)
	}
	if e.Action != "push" || !manifestTypes[e.Target.MediaType] {
		return Push{}, false, nil
	}
	push = Push{
		Repository: e.Target.Repository,
		Digest:     e.Target.Digest,
		Tag:        e.Target.Tag,
		MediaType:  e.Target.MediaType,
		EventID:    e.ID,
	}
	if push.Host, err = eventHost(&e); err != nil {
		return Push{}, false, err
	}
	if err := validDigest(push.Digest); err != nil {
		return Push{}, false, err
	}
	if err := validRepository(push.Repository); err != nil {
		return Push{}, false, err
	}
	if push.Tag != "" && !tagPattern.MatchString(push.Tag) {
		return Push{}, false, fmt.Errorf("invalid tag %q: want up to 128 of [a-zA-Z0-9_.-], not starting with '.' or '-'", truncate(push.Tag))
	}
	if e.Timestamp != "" {
		if push.Timestamp, err = time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
			return Push{}, false, fmt.Errorf("invalid timestamp: %w", err)
		}
	}
	return push, true, nil
}

// tagPattern is the tag grammar of the OCI distribution spec.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// Length bounds checked before go-containerregistry parses a value, as
// its errors quote the whole value and hostile events can carry
// megabytes in one field.
const (
	maxDigest     = len("sha512:") + 128
	maxRepository = 255
	maxHost       = 253 + len(":65535")
)

// validDigest checks a digest such as "sha256:<hex>".
func validDigest(digest string) error {
	if len(digest) > maxDigest {
		return fmt.Errorf("invalid digest %q: longer than %d characters", truncate(digest), maxDigest)
	}
	if _, err := v1.NewHash(digest); err != nil {
		return fmt.Errorf("invalid digest %q: %w", digest, err)
	}
	return nil
}

// repositoryPattern is the repository name grammar of the OCI
// distribution spec. go-containerregistry's name.NewRepository only
// checks the characters, so it accepts "../../etc" and "a//b".
var repositoryPattern = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

// validRepository checks a repository path such as "library/x".
func validRepository(repo string) error {
	if len(repo) > maxRepository {
		return fmt.Errorf("invalid repository %q: longer than %d characters", truncate(repo), maxRepository)
	}
	if !repositoryPattern.MatchString(repo) {
		return fmt.Errorf("invalid repository %q: want lower-case path components of [a-z0-9] joined by '.', '_', '__' or '-'", repo)
	}
	return nil
}

// eventHost is the registry the push went to: the Host header of the
// push request — the name the pusher used, and so the one to pull by —
// or else the host of the target's URL.
func eventHost(e *event) (string, error) {
	host := e.Request.Host
	if host == "" && e.Target.URL != "" {
		u, err := url.Parse(e.Target.URL)
		if err != nil {
			return "", fmt.Errorf("invalid target url: %w", err)
		}
		host = u.Host
	}
	if host == "" {
		return "", errors.New("no registry host: neither request.host nor target.url is set")
	}
	if len(host) > maxHost {
		return "", fmt.Errorf("invalid registry host %q: longer than %d characters", truncate(host), maxHost)
	}
	if strings.ContainsAny(host, "/@?#") {
		return "", fmt.Errorf("invalid registry host %q", truncate(host))
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return "", fmt.Errorf("invalid registry host %q: %w", host, err)
	}
	return host, nil
}

// truncate shortens a value quoted in an error: hostile events can carry
// megabytes in one field.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
