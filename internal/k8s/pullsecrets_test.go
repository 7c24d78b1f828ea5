package k8s

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseDockerConfig(t *testing.T) {
	tests := []struct {
		name string
		typ  corev1.SecretType
		data map[string][]byte
		want []PullCredential
	}{{
		name: "dockerconfigjson with auth and fields",
		typ:  corev1.SecretTypeDockerConfigJson,
		data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{
			"https://index.docker.io/v1/":{"auth":"` + b64("hub:pw:with:colons") + `"},
			"registry.example:5000/team":{"username":"u","password":"p"},
			"*.gcr.example":{"identitytoken":"tok"}}}`)},
		want: []PullCredential{
			{Match: "*.gcr.example", IdentityToken: "tok"},
			{Match: "index.docker.io", Username: "hub", Password: "pw:with:colons"},
			{Match: "registry.example:5000/team", Username: "u", Password: "p"},
		},
	}, {
		name: "legacy dockercfg",
		typ:  corev1.SecretTypeDockercfg,
		data: map[string][]byte{".dockercfg": []byte(`{"docker.io":{"auth":"` + b64("a:b") + `"}}`)},
		want: []PullCredential{{Match: "index.docker.io", Username: "a", Password: "b"}},
	}, {
		name: "empty auths",
		typ:  corev1.SecretTypeDockerConfigJson,
		data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{}}`)},
		want: []PullCredential{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDockerConfig(tt.typ, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDockerConfig (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDockerConfigHostile(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := map[string]struct {
		typ  corev1.SecretType
		data string
	}{
		"opaque":          {corev1.SecretTypeOpaque, `{}`},
		"not json":        {corev1.SecretTypeDockerConfigJson, secret},
		"auths not map":   {corev1.SecretTypeDockerConfigJson, `{"auths":["` + secret + `"]}`},
		"auth not base64": {corev1.SecretTypeDockerConfigJson, `{"auths":{"r":{"auth":"` + secret + `!"}}}`},
		"auth no colon":   {corev1.SecretTypeDockerConfigJson, `{"auths":{"r":{"auth":"` + b64(secret) + `"}}}`},
		"too big":         {corev1.SecretTypeDockerConfigJson, `{"auths":{"r":{"password":"` + strings.Repeat("x", maxPullSecretBytes) + `"}}}`},
		"too many": {corev1.SecretTypeDockerConfigJson, func() string {
			var b strings.Builder
			b.WriteString(`{"auths":{`)
			for i := range maxPullSecretEntries + 1 {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(`"r` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `.example:` + itoa(i) + `":{}`)
			}
			b.WriteString(`}}`)
			return b.String()
		}()},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			key := corev1.DockerConfigJsonKey
			if tt.typ == corev1.SecretTypeDockercfg {
				key = corev1.DockerConfigKey
			}
			_, err := ParseDockerConfig(tt.typ, map[string][]byte{key: []byte(tt.data)})
			if !errors.Is(err, ErrBadPullSecret) {
				t.Fatalf("err = %v, want ErrBadPullSecret", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestPullKeychain(t *testing.T) {
	k := PullKeychain{
		{Match: "registry.example:5000", Username: "host"},
		{Match: "registry.example:5000/team", Username: "team"},
		{Match: "registry.example:5000/team/app", Username: "app"},
		{Match: "*.gcr.example", Username: "glob"},
		{Match: "index.docker.io", Username: "hub"},
		{Match: "index.docker.io", Username: "hub-second"},
	}
	tests := []struct{ ref, want string }{
		{"registry.example:5000/other/x", "host"},
		{"registry.example:5000/team/x", "team"},
		{"registry.example:5000/team/app", "app"},
		{"registry.example:5000/team/application", "team"},
		{"registry.example/team/app", ""}, // another port
		{"eu.gcr.example/p/img", "glob"},
		{"a.b.gcr.example/p/img", ""}, // "*" is one label
		{"nginx", "hub"},
		{"docker.io/library/nginx", "hub"},
		{"elsewhere.example/app", ""},
	}
	for _, tt := range tests {
		ref, err := name.NewRepository(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Resolve(ref)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tt.want {
			t.Errorf("Resolve(%s) = user %q, want %q", tt.ref, cfg.Username, tt.want)
		}
		if tt.want == "" && a != authn.Anonymous {
			t.Errorf("Resolve(%s) = %v, want anonymous", tt.ref, a)
		}
	}
}

func FuzzParseDockerConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}}}`), "registry.example/app")
	f.Add([]byte(`{"auths":{"*.x:1/a/../b":{"username":"u"}}}`), "q.x:1/b/c")
	f.Add([]byte(`{"auths":null}`), "nginx")
	f.Fuzz(func(t *testing.T, data []byte, repo string) {
		creds, err := ParseDockerConfig(corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigJsonKey: data})
		if err != nil {
			if !errors.Is(err, ErrBadPullSecret) {
				t.Fatalf("error %v does not wrap ErrBadPullSecret", err)
			}
			return
		}
		for _, c := range creds {
			if c.Match == "" {
				t.Fatal("empty match")
			}
		}
		if r, err := name.NewRepository(repo); err == nil {
			if _, err := PullKeychain(creds).Resolve(r); err != nil {
				t.Fatal(err)
			}
		}
	})
}
