package registry

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// gar lists Google Artifact Registry (and Container Registry) through the
// registry's own distribution API (/v2/_catalog and tags/list), not the
// Artifact Registry REST API: the registry host alone is enough and the
// code is the OCI connector's. A service-account key signs a JWT (RS256)
// that the token endpoint exchanges for an OAuth access token
// (https://developers.google.com/identity/protocols/oauth2/service-account#httprest);
// the registry takes it as the password of "oauth2accesstoken", for
// listings and pulls alike. Credentials.Token is taken as a ready access
// token.
type gar struct {
	base
	prefix string
	token  *cachedToken
}

// serviceAccount is the part of a service-account key file used here.
type serviceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

const (
	googleTokenURI = "https://oauth2.googleapis.com/token"
	googleScope    = "https://www.googleapis.com/auth/cloud-platform"
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

func newGAR(b base) (*gar, error) {
	c := b.cfg.Credentials
	g := &gar{base: b, prefix: b.cfg.Namespace}
	switch {
	case c.GoogleServiceAccountJSON != "":
		sa, key, err := parseServiceAccount(c.GoogleServiceAccountJSON)
		if err != nil {
			return nil, fmt.Errorf("registry config: Credentials.GoogleServiceAccountJSON: %w", err)
		}
		tokenURI := sa.TokenURI
		if b.cfg.Endpoints.GoogleToken != "" {
			tokenURI = b.cfg.Endpoints.GoogleToken
		}
		if u, err := url.Parse(tokenURI); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("registry config: token URI %q is not an https URL", tokenURI)
		}
		g.token = newCachedToken(func(ctx context.Context) (string, time.Time, error) {
			return g.accessToken(ctx, sa, key, tokenURI)
		})
	case c.Token != "":
		g.token = newCachedToken(func(context.Context) (string, time.Time, error) {
			return c.Token, time.Now().Add(time.Hour), nil
		})
	default:
		return nil, errors.New("registry config: Credentials.GoogleServiceAccountJSON (or Token) is required for type gar")
	}
	return g, nil
}

// parseServiceAccount reads a service-account key file.
func parseServiceAccount(data string) (*serviceAccount, *rsa.PrivateKey, error) {
	var sa serviceAccount
	if err := json.Unmarshal([]byte(data), &sa); err != nil {
		return nil, nil, errors.New("not a service-account key file (invalid JSON)")
	}
	if sa.Type != "" && sa.Type != "service_account" {
		return nil, nil, fmt.Errorf("type is %q, want service_account", sa.Type)
	}
	if sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, nil, errors.New("client_email and private_key are required")
	}
	if sa.TokenURI == "" {
		sa.TokenURI = googleTokenURI
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, nil, errors.New("private_key is not PEM")
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return nil, nil, errors.New("private_key is neither PKCS #8 nor PKCS #1")
		}
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("private_key is not an RSA key")
	}
	return &sa, rsaKey, nil
}

// accessToken signs an assertion and exchanges it for an access token.
func (g *gar) accessToken(ctx context.Context, sa *serviceAccount, key *rsa.PrivateKey, tokenURI string) (string, time.Time, error) {
	now := time.Now()
	assertion, err := signJWT(key, sa.PrivateKeyID, map[string]any{
		"iss":   sa.ClientEmail,
		"scope": googleScope,
		"aud":   tokenURI,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing Google token request: %w", err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	_, err = g.http.getJSON(ctx, request{url: tokenURI, form: url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}}, &out)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting Google access token: %w", err)
	}
	if out.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("getting Google access token: %w: no access_token", ErrBadResponse)
	}
	lifetime := time.Duration(out.ExpiresIn) * time.Second
	if lifetime <= 0 || lifetime > 24*time.Hour {
		lifetime = time.Hour
	}
	return out.AccessToken, now.Add(lifetime), nil
}

// signJWT returns an RS256-signed JWT with claims.
func signJWT(key *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signed + "." + enc.EncodeToString(sig), nil
}

func (g *gar) auth() authn.Authenticator {
	return &refreshingAuth{config: func(ctx context.Context) (*authn.AuthConfig, error) {
		token, err := g.token.get(ctx)
		if err != nil {
			return nil, err
		}
		return &authn.AuthConfig{Username: "oauth2accesstoken", Password: token}, nil
	}}
}

func (g *gar) distribution() *distribution {
	return &distribution{http: g.http, reg: g.registry(), base: g.scheme() + "://" + g.host, auth: g.auth()}
}

func (g *gar) Repositories(ctx context.Context) ([]string, error) {
	repos, err := g.distribution().catalog(ctx)
	if err != nil {
		return nil, g.listErr(err)
	}
	return g.selected(withPrefix(repos, strings.Trim(g.prefix, "/"))), nil
}

func (g *gar) Tags(ctx context.Context, repo string) ([]string, error) {
	tags, err := g.distribution().tags(ctx, repo)
	if err != nil {
		return nil, g.tagsErr(repo, err)
	}
	return tags, nil
}

func (g *gar) Authenticator(context.Context) (authn.Authenticator, error) {
	return g.auth(), nil
}
