package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tokenServer is a registry token service (the Docker token
// authentication protocol): it checks one user's password with basic auth
// and issues ES256 JWTs, carrying the signing certificate in x5c, that
// grant the scopes asked for.
type tokenServer struct {
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	certDER  []byte
	user     string
	password string
}

const (
	tokenService = "bulwark-test-registry"
	tokenIssuer  = "bulwark-test-token-issuer"
)

func startTokenServer(user, password string) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating token signing key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating token signing certificate: %w", err)
	}
	ts := &tokenServer{key: key, certDER: der, user: user, password: password}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.serveToken))
	return ts, nil
}

func (ts *tokenServer) close() { ts.srv.Close() }

// distributionConfig writes the signing certificate into dir and returns
// the registry's auth configuration.
func (ts *tokenServer) distributionConfig(dir string) (string, error) {
	bundle := filepath.Join(dir, "token-signer.pem")
	if err := os.WriteFile(bundle, pemBlock("CERTIFICATE", ts.certDER), 0o644); err != nil {
		return "", fmt.Errorf("writing token signing certificate: %w", err)
	}
	// The realm names the host "localhost": clients refuse realms that are
	// private IP literals other than the registry's own address (a guard
	// against registries sending credentials to internal services).
	realm := strings.Replace(ts.srv.URL, "127.0.0.1", "localhost", 1) + "/token"
	return fmt.Sprintf("auth:\n  token:\n    realm: %q\n    service: %s\n    issuer: %s\n    rootcertbundle: %q\n",
		realm, tokenService, tokenIssuer, bundle), nil
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	if !ok || user != ts.user || password != ts.password {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("service") != tokenService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	var access []tokenAccess
	for _, scope := range r.URL.Query()["scope"] {
		// repository:NAME:ACTIONS; NAME may hold a port-less path only.
		parts := strings.Split(scope, ":")
		if len(parts) != 3 {
			continue
		}
		access = append(access, tokenAccess{Type: parts[0], Name: parts[1], Actions: strings.Split(parts[2], ",")})
	}
	token, err := ts.sign(user, access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token": token, "access_token": token, "expires_in": 300,
		"issued_at": time.Now().UTC().Format(time.RFC3339),
	})
}

func (ts *tokenServer) sign(subject string, access []tokenAccess) (string, error) {
	header := map[string]any{"alg": "ES256", "typ": "JWT", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	now := time.Now()
	claims := map[string]any{
		"iss": tokenIssuer, "sub": subject, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": randomHex(8), "access": access,
	}
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	h, err := enc(header)
	if err != nil {
		return "", err
	}
	c, err := enc(claims)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(h + "." + c))
	rs, ss, err := ecdsa.Sign(rand.Reader, ts.key, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	sig := make([]byte, 64)
	rs.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
