package k8s

import (
	"strings"
	"testing"
)

const (
	d256 = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	d512 = "sha512:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestImageDigest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"docker-pullable://nginx@" + d256, d256},
		{"docker-pullable://registry.example:5000/team/app@" + d256, d256},
		{"docker://" + d256, d256},
		{"containerd://" + d256, d256},
		{"registry.example/app@" + d256, d256},
		{d256, d256},
		{"docker.io/library/nginx@" + d512, d512},
		// Hostile or malformed.
		{"", ""},
		{"docker-pullable://", ""},
		{"nginx:1.25", ""},
		{"nginx@", ""},
		{"sha256:", ""},
		{"sha256:0123", ""},
		{strings.ToUpper(d256), ""},
		{"sha256:" + strings.Repeat("g", 64), ""},
		{d256 + "0", ""},
		{d256 + "\n", ""},
		{d256 + "@", ""},
		{"md5:0123456789abcdef0123456789abcdef", ""},
		{"sha256:" + strings.Repeat("a", 63) + "é", ""},
		{"x@" + d256 + "@sha256:zz", ""},
		{"evil://a@" + d256 + "://b", ""},
		{strings.Repeat("@", 1<<16), ""},
		{"sha256:" + strings.Repeat("0", 1<<20), ""},
	}
	for _, tt := range tests {
		if got := ImageDigest(tt.in); got != tt.want {
			t.Errorf("ImageDigest(%.80q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzImageDigest(f *testing.F) {
	for _, s := range []string{"", d256, d512, "docker-pullable://nginx@" + d256, "docker://" + d256, "a@b:c", "://@:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := ImageDigest(in)
		if got == "" {
			return
		}
		if !strings.HasSuffix(in, got) {
			t.Fatalf("ImageDigest(%q) = %q, not a suffix of the input", in, got)
		}
		alg, hex, ok := strings.Cut(got, ":")
		if !ok || (alg != "sha256" || len(hex) != 64) && (alg != "sha512" || len(hex) != 128) {
			t.Fatalf("ImageDigest(%q) = %q, not a digest", in, got)
		}
		if strings.Trim(hex, "0123456789abcdef") != "" {
			t.Fatalf("ImageDigest(%q) = %q, not lowercase hex", in, got)
		}
		if ImageDigest(got) != got {
			t.Fatalf("ImageDigest not idempotent on %q", got)
		}
	})
}

func TestPullReference(t *testing.T) {
	tests := []struct{ spec, imageID, want string }{
		{"nginx:1.25", "docker.io/library/nginx@" + d256, "index.docker.io/library/nginx@" + d256},
		{"nginx:1.25", "docker-pullable://nginx@" + d256, "index.docker.io/library/nginx@" + d256},
		{"127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app@" + d256, "127.0.0.1:5000/team/app@" + d256},
		// The runtime's repository wins over the spec's (a mirror, a tag
		// resolved elsewhere).
		{"app:v1", "registry.example/mirror/app@" + d256, "registry.example/mirror/app@" + d256},
		// An image ID is the configuration's digest: no registry serves it.
		{"nginx:1.25", "docker://" + d256, ""},
		{"nginx:1.25", d256, ""},
		{"nginx:1.25", "", ""},
		// Hostile.
		{"nginx", "NOT A REPO@" + d256, ""},
		{"nginx", "a b@" + d256, ""},
		{"nginx", strings.Repeat("a", 1<<16) + "@" + d256, ""},
		{"nginx", "@" + d256, "index.docker.io/library/nginx@" + d256},
		{"", "@" + d256, ""},
	}
	for _, tt := range tests {
		if got := PullReference(tt.spec, tt.imageID); got != tt.want {
			t.Errorf("PullReference(%q, %.80q) = %q, want %q", tt.spec, tt.imageID, got, tt.want)
		}
	}
}

func FuzzPullReference(f *testing.F) {
	for _, s := range []string{"docker.io/library/nginx@" + d256, "docker://" + d256, "127.0.0.1:5000/a@" + d256, "@" + d256} {
		f.Add("nginx:1", s)
	}
	f.Fuzz(func(t *testing.T, spec, imageID string) {
		got := PullReference(spec, imageID)
		if got == "" {
			return
		}
		if !strings.HasSuffix(got, "@"+ImageDigest(imageID)) {
			t.Fatalf("PullReference(%q, %q) = %q, does not end in the digest", spec, imageID, got)
		}
	})
}
