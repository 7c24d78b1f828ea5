package registry

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewValidates(t *testing.T) {
	aws := Credentials{AWSAccessKeyID: "AKID", AWSSecretAccessKey: "s"}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" for success
	}{
		{"unknown type", Config{Type: "quay", URL: "quay.io"}, `Type "quay"`},
		{"missing URL", Config{Type: TypeOCI}, "URL is required"},
		{"URL with path", Config{Type: TypeOCI, URL: "europe-docker.pkg.dev/proj/repo"}, "put the path in Namespace"},
		{"http scheme", Config{Type: TypeOCI, URL: "http://reg.example"}, "set Insecure"},
		{"https scheme is fine", Config{Type: TypeOCI, URL: "https://reg.example/"}, ""},
		{"bad glob", Config{Type: TypeOCI, URL: "reg.example", Repositories: []string{"[a"}}, "bad pattern"},
		{"dockerhub without namespace", Config{Type: TypeDockerHub}, "Namespace"},
		{"dockerhub user without password", Config{Type: TypeDockerHub, Credentials: Credentials{Username: "u"}}, "Password"},
		{"dockerhub namespace", Config{Type: TypeDockerHub, Namespace: "library"}, ""},
		{"ecr secret without key", Config{Type: TypeECR, URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Credentials: Credentials{AWSSecretAccessKey: "s"}}, "Credentials.AWSAccessKeyID"},
		{"ecr without secret", Config{Type: TypeECR, URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Credentials: Credentials{AWSAccessKeyID: "AKID"}}, "Credentials.AWSSecretAccessKey"},
		{"ecr without region", Config{Type: TypeECR, URL: "ecr.example", Credentials: aws}, "Credentials.AWSRegion"},
		{"ecr region from host", Config{Type: TypeECR, URL: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Credentials: aws}, ""},
		{"acr without credentials", Config{Type: TypeACR, URL: "x.azurecr.io"}, "AzureTenantID"},
		{"acr partial service principal", Config{Type: TypeACR, URL: "x.azurecr.io", Credentials: Credentials{AzureClientID: "c"}}, "Credentials.AzureTenantID"},
		{"gar without key", Config{Type: TypeGAR, URL: "europe-docker.pkg.dev"}, "GoogleServiceAccountJSON"},
		{"gar garbage key", Config{Type: TypeGAR, URL: "europe-docker.pkg.dev", Credentials: Credentials{GoogleServiceAccountJSON: "{"}}, "invalid JSON"},
		{"artifactory without credentials", Config{Type: TypeArtifactory, URL: "x.jfrog.io"}, "Credentials.Token"},
		{"artifactory bad key", Config{Type: TypeArtifactory, URL: "x.jfrog.io", Namespace: "a/b", Credentials: Credentials{Token: "t"}}, "repository key"},
		{"harbor bad project", Config{Type: TypeHarbor, URL: "harbor.example", Namespace: "a/b"}, "Harbor project"},
		{"harbor anonymous", Config{Type: TypeHarbor, URL: "harbor.example"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.Type() != tt.cfg.Type {
					t.Errorf("Type() = %s, want %s", c.Type(), tt.cfg.Type)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHost(t *testing.T) {
	c := mustNew(t, Config{Type: TypeOCI, URL: "https://registry.example.com:5000/"})
	if got := c.Host(); got != "registry.example.com:5000" {
		t.Errorf("Host() = %q", got)
	}
}

func TestTypes(t *testing.T) {
	for _, typ := range Types() {
		if !typ.Valid() {
			t.Errorf("%s is not Valid", typ)
		}
	}
	if Type("").Valid() || Type("OCI").Valid() {
		t.Error("invalid types are Valid")
	}
}

// TestRedacted checks that every string field of Credentials is either
// cleared or listed as a non-secret identifier, so a new secret field
// cannot be forgotten.
func TestRedacted(t *testing.T) {
	notSecret := map[string]bool{"Username": true, "AWSAccessKeyID": true, "AWSRegion": true, "AzureTenantID": true, "AzureClientID": true}
	var c Credentials
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		v.Field(i).SetString("value-" + v.Type().Field(i).Name)
	}
	r := reflect.ValueOf(c.Redacted())
	for i := range r.NumField() {
		name := v.Type().Field(i).Name
		got := r.Field(i).String()
		if notSecret[name] && got != "value-"+name {
			t.Errorf("Redacted cleared %s, an identifier", name)
		}
		if !notSecret[name] && got != "" {
			t.Errorf("Redacted kept secret %s", name)
		}
	}
	if diff := cmp.Diff(len(c.secrets()), v.NumField()-len(notSecret)); diff != "" {
		t.Errorf("secrets() misses fields (-want +got):\n%s", diff)
	}
}

func TestErrorDetail(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, "UNAUTHORIZED authentication required"},
		{`{"error":"invalid_client","error_description":"bad secret"}`, "invalid_client; bad secret"},
		{`{"detail":"Incorrect authentication credentials"}`, "Incorrect authentication credentials"},
		{`<html>secret page</html>`, ""},
		{`{"message":"` + strings.Repeat("x", 500) + `"}`, strings.Repeat("x", 200) + "…"},
	}
	for _, tt := range tests {
		if got := errorDetail([]byte(tt.body)); got != tt.want {
			t.Errorf("errorDetail(%.40q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestHostOf(t *testing.T) {
	for _, tc := range []struct {
		typ       Type
		url, want string
	}{
		{TypeOCI, "127.0.0.1:5000", "127.0.0.1:5000"},
		{TypeOCI, "https://registry.example/", "registry.example"},
		{TypeDockerHub, "", "index.docker.io"},
		{TypeOCI, "docker.io", "index.docker.io"},
	} {
		got, err := HostOf(tc.typ, tc.url)
		if err != nil || got != tc.want {
			t.Errorf("HostOf(%s, %q) = %q, %v; want %q", tc.typ, tc.url, got, err, tc.want)
		}
	}
	for _, bad := range []string{"http://x", "registry.example/path", ""} {
		if _, err := HostOf(TypeOCI, bad); err == nil {
			t.Errorf("HostOf(oci, %q) succeeded", bad)
		}
	}
}
