package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"
)

// ecrConnector lists Amazon ECR through the AWS SDK
// (DescribeRepositories, ListImages) and pulls with the basic credentials
// GetAuthorizationToken issues, "AWS:<password>" base64-encoded and valid
// for twelve hours.
type ecrConnector struct {
	base
	api *ecr.Client
	// registryID is the account of the registry host, nil when the host is
	// not an ECR host name (then the credentials' default registry).
	registryID *string
	prefix     string
	token      *cachedToken
}

// ecrHost is "<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]".
var ecrHost = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// ecrCredentials are the static keys when given, else the AWS SDK's
// default chain: the AWS_* environment variables, the shared config
// files, web identity (EKS IRSA), and the ECS and EC2 instance roles. The
// chain is resolved lazily, when a request is signed.
func ecrCredentials(c Credentials, region string) (aws.CredentialsProvider, error) {
	if c.AWSAccessKeyID != "" || c.AWSSecretAccessKey != "" {
		if err := require(TypeECR, "Credentials.AWSAccessKeyID", c.AWSAccessKeyID, "Credentials.AWSSecretAccessKey", c.AWSSecretAccessKey); err != nil {
			return nil, err
		}
		return credentials.NewStaticCredentialsProvider(c.AWSAccessKeyID, c.AWSSecretAccessKey, c.AWSSessionToken), nil
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("registry config: no AWS keys given and the default AWS credential chain cannot load: %w", err)
	}
	return cfg.Credentials, nil
}

func newECR(b base) (*ecrConnector, error) {
	c := b.cfg.Credentials
	e := &ecrConnector{base: b, prefix: b.cfg.Namespace}
	region := c.AWSRegion
	if m := ecrHost.FindStringSubmatch(b.host); m != nil {
		e.registryID = aws.String(m[1])
		if region == "" {
			region = m[2]
		}
	}
	if region == "" {
		return nil, fmt.Errorf("registry config: Credentials.AWSRegion is required for type ecr when URL %q does not name a region", b.host)
	}
	creds, err := ecrCredentials(c, region)
	if err != nil {
		return nil, err
	}
	opts := ecr.Options{
		Region:           region,
		Credentials:      creds,
		HTTPClient:       &http.Client{Transport: &limitedTransport{inner: b.http.transport, limit: b.http.maxBody}},
		RetryMaxAttempts: b.http.attempts,
	}
	if b.cfg.Endpoints.AWS != "" {
		opts.BaseEndpoint = aws.String(b.cfg.Endpoints.AWS)
	}
	e.api = ecr.New(opts)
	e.token = newCachedToken(e.authorizationToken)
	return e, nil
}

func (e *ecrConnector) Repositories(ctx context.Context) ([]string, error) {
	var repos []string
	err := e.pages(ctx, func(ctx context.Context, token *string) (*string, int, error) {
		out, err := e.api.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{
			RegistryId: e.registryID, NextToken: token, MaxResults: aws.Int32(int32(min(e.http.pageSize, 1000))),
		})
		if err != nil {
			return nil, 0, err
		}
		for _, r := range out.Repositories {
			repos = append(repos, aws.ToString(r.RepositoryName))
		}
		return out.NextToken, len(out.Repositories), nil
	})
	if err != nil {
		return nil, e.listErr(err)
	}
	return e.selected(withPrefix(repos, e.prefix)), nil
}

func (e *ecrConnector) Tags(ctx context.Context, repo string) ([]string, error) {
	if err := checkRepo(repo); err != nil {
		return nil, e.tagsErr(repo, err)
	}
	var tags []string
	err := e.pages(ctx, func(ctx context.Context, token *string) (*string, int, error) {
		out, err := e.api.ListImages(ctx, &ecr.ListImagesInput{
			RegistryId: e.registryID, RepositoryName: aws.String(repo), NextToken: token,
			MaxResults: aws.Int32(int32(min(e.http.pageSize, 1000))),
			Filter:     &ecrtypes.ListImagesFilter{TagStatus: ecrtypes.TagStatusTagged},
		})
		if err != nil {
			return nil, 0, err
		}
		for _, id := range out.ImageIds {
			if id.ImageTag != nil {
				tags = append(tags, *id.ImageTag)
			}
		}
		return out.NextToken, len(out.ImageIds), nil
	})
	if err != nil {
		return nil, e.tagsErr(repo, err)
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

// pages calls page with each NextToken until there is none, within the
// client's page and item limits.
func (e *ecrConnector) pages(ctx context.Context, page func(ctx context.Context, token *string) (next *string, items int, err error)) error {
	var token *string
	seen := map[string]bool{}
	items := 0
	for pages := 0; ; pages++ {
		if pages == e.http.maxPages {
			return fmt.Errorf("%w: more than %d pages", ErrLimit, e.http.maxPages)
		}
		next, n, err := page(ctx, token)
		if err != nil {
			return e.awsErr(err)
		}
		if items += n; items > e.http.maxItems {
			return fmt.Errorf("%w: more than %d items", ErrLimit, e.http.maxItems)
		}
		if aws.ToString(next) == "" {
			return nil
		}
		if seen[*next] {
			return fmt.Errorf("%w: pagination token repeats", ErrBadResponse)
		}
		seen[*next] = true
		token = next
	}
}

func (e *ecrConnector) Authenticator(context.Context) (authn.Authenticator, error) {
	return &refreshingAuth{config: func(ctx context.Context) (*authn.AuthConfig, error) {
		password, err := e.token.get(ctx)
		if err != nil {
			return nil, err
		}
		return &authn.AuthConfig{Username: "AWS", Password: password}, nil
	}}, nil
}

// authorizationToken fetches a registry password from
// GetAuthorizationToken.
func (e *ecrConnector) authorizationToken(ctx context.Context) (string, time.Time, error) {
	out, err := e.api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting ECR authorization token: %w", e.awsErr(err))
	}
	if len(out.AuthorizationData) == 0 {
		return "", time.Time{}, fmt.Errorf("getting ECR authorization token: %w: no authorization data", ErrBadResponse)
	}
	data := out.AuthorizationData[0]
	decoded, err := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	user, password, ok := strings.Cut(string(decoded), ":")
	if err != nil || !ok || user != "AWS" || password == "" {
		return "", time.Time{}, fmt.Errorf("getting ECR authorization token: %w: token is not base64 \"AWS:password\"", ErrBadResponse)
	}
	expiry := aws.ToTime(data.ExpiresAt)
	if expiry.IsZero() {
		expiry = time.Now().Add(time.Hour)
	}
	return password, expiry, nil
}

// awsUnauthorized are the error codes AWS answers for bad or insufficient
// credentials (HTTP 400 or 403 in the JSON protocol).
var awsUnauthorized = []string{
	"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
	"ExpiredTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch", "MissingAuthenticationTokenException",
}

// awsErr marks credential failures as ErrUnauthorized and removes secrets
// from the message.
func (e *ecrConnector) awsErr(err error) error {
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	unauthorized := errors.As(err, &apiErr) && slices.Contains(awsUnauthorized, apiErr.ErrorCode()) ||
		errors.As(err, &respErr) && (respErr.HTTPStatusCode() == http.StatusUnauthorized || respErr.HTTPStatusCode() == http.StatusForbidden)
	err = e.http.scrubErr(err)
	if unauthorized {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return err
}

// limitedTransport fails reading a response body beyond limit bytes, for
// clients (the AWS SDK) that read bodies themselves.
type limitedTransport struct {
	inner http.RoundTripper
	limit int64
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.limit}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte tells a body of exactly the limit from a larger one.
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("%w: response body larger than limit", ErrLimit)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
