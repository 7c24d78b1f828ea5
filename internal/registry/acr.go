package registry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// acrNullUser is the user name ACR takes with a refresh token as password.
const acrNullUser = "00000000-0000-0000-0000-000000000000"

// acr lists Azure Container Registry through the distribution API
// (https://github.com/Azure/acr/blob/main/docs/AAD-OAuth.md). With a
// service principal it gets a Microsoft Entra token by client credentials,
// exchanges it at POST /oauth2/exchange for an ACR refresh token, and lets
// go-containerregistry trade that at POST /oauth2/token
// (grant_type=refresh_token) for scoped access tokens. Pulls send the
// refresh token as the password of the null user. Admin user credentials
// are plain basic auth; Credentials.Token is taken as a ready ACR refresh
// token (as `az acr login --expose-token` prints).
type acr struct {
	base
	login   string
	prefix  string
	refresh *cachedToken // nil with admin credentials
	basic   authn.Authenticator
}

func newACR(b base) (*acr, error) {
	c := b.cfg.Credentials
	a := &acr{base: b, login: "https://login.microsoftonline.com", prefix: b.cfg.Namespace}
	if b.cfg.Endpoints.AzureLogin != "" {
		a.login = strings.TrimSuffix(b.cfg.Endpoints.AzureLogin, "/")
	}
	switch {
	case c.AzureClientID != "" || c.AzureClientSecret != "" || c.AzureTenantID != "":
		if err := require(TypeACR, "Credentials.AzureTenantID", c.AzureTenantID, "Credentials.AzureClientID", c.AzureClientID, "Credentials.AzureClientSecret", c.AzureClientSecret); err != nil {
			return nil, err
		}
		if strings.ContainsAny(c.AzureTenantID, "/?#%") {
			return nil, fmt.Errorf("registry config: Credentials.AzureTenantID %q is not a tenant ID or domain", c.AzureTenantID)
		}
		a.refresh = newCachedToken(a.servicePrincipalRefreshToken)
	case c.Token != "":
		a.refresh = newCachedToken(func(context.Context) (string, time.Time, error) {
			return c.Token, jwtExpiry(c.Token, time.Now().Add(time.Hour)), nil
		})
	case c.Username != "" && c.Password != "":
		a.basic = &authn.Basic{Username: c.Username, Password: c.Password}
	default:
		return nil, errors.New("registry config: acr needs Credentials.AzureTenantID, AzureClientID and AzureClientSecret (service principal), or Username and Password (admin user), or Token (ACR refresh token)")
	}
	return a, nil
}

// servicePrincipalRefreshToken gets an Entra token for the service
// principal and exchanges it for an ACR refresh token.
func (a *acr) servicePrincipalRefreshToken(ctx context.Context) (string, time.Time, error) {
	c := a.cfg.Credentials
	var entra struct {
		AccessToken string `json:"access_token"`
	}
	_, err := a.http.getJSON(ctx, request{
		url: a.login + "/" + c.AzureTenantID + "/oauth2/v2.0/token",
		form: url.Values{
			"grant_type":    {"client_credentials"},
			"client_id":     {c.AzureClientID},
			"client_secret": {c.AzureClientSecret},
			"scope":         {"https://management.azure.com/.default"},
		},
	}, &entra)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting Microsoft Entra token: %w", err)
	}
	if entra.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("getting Microsoft Entra token: %w: no access_token", ErrBadResponse)
	}
	var exchanged struct {
		RefreshToken string `json:"refresh_token"`
	}
	_, err = a.http.getJSON(ctx, request{
		url: a.scheme() + "://" + a.host + "/oauth2/exchange",
		form: url.Values{
			"grant_type":   {"access_token"},
			"service":      {a.host},
			"tenant":       {c.AzureTenantID},
			"access_token": {entra.AccessToken},
		},
	}, &exchanged)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("exchanging Entra token for ACR refresh token: %w", err)
	}
	if exchanged.RefreshToken == "" {
		return "", time.Time{}, fmt.Errorf("exchanging Entra token for ACR refresh token: %w: no refresh_token", ErrBadResponse)
	}
	return exchanged.RefreshToken, jwtExpiry(exchanged.RefreshToken, time.Now().Add(time.Hour)), nil
}

// listingAuth is what go-containerregistry's transport authenticates
// listings with: the refresh token as an identity token (so it POSTs the
// refresh_token grant), or the admin user.
func (a *acr) listingAuth(ctx context.Context) (authn.Authenticator, error) {
	if a.basic != nil {
		return a.basic, nil
	}
	token, err := a.refresh.get(ctx)
	if err != nil {
		return nil, err
	}
	return authn.FromConfig(authn.AuthConfig{Username: acrNullUser, IdentityToken: token}), nil
}

func (a *acr) Repositories(ctx context.Context) ([]string, error) {
	auth, err := a.listingAuth(ctx)
	if err != nil {
		return nil, a.listErr(err)
	}
	d := &distribution{http: a.http, reg: a.registry(), base: a.scheme() + "://" + a.host, auth: auth}
	repos, err := d.catalog(ctx)
	if err != nil {
		return nil, a.listErr(err)
	}
	return a.selected(withPrefix(repos, a.prefix)), nil
}

func (a *acr) Tags(ctx context.Context, repo string) ([]string, error) {
	auth, err := a.listingAuth(ctx)
	if err != nil {
		return nil, a.tagsErr(repo, err)
	}
	d := &distribution{http: a.http, reg: a.registry(), base: a.scheme() + "://" + a.host, auth: auth}
	tags, err := d.tags(ctx, repo)
	if err != nil {
		return nil, a.tagsErr(repo, err)
	}
	return tags, nil
}

func (a *acr) Authenticator(context.Context) (authn.Authenticator, error) {
	if a.basic != nil {
		return a.basic, nil
	}
	return &refreshingAuth{config: func(ctx context.Context) (*authn.AuthConfig, error) {
		token, err := a.refresh.get(ctx)
		if err != nil {
			return nil, err
		}
		return &authn.AuthConfig{Username: acrNullUser, Password: token}, nil
	}}, nil
}

// withPrefix keeps the repositories under the path prefix ("" keeps all).
func withPrefix(repos []string, prefix string) []string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return repos
	}
	var out []string
	for _, r := range repos {
		if strings.HasPrefix(r, prefix+"/") {
			out = append(out, r)
		}
	}
	return out
}
