package php_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/php"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var _ extract.Extractor = php.New()

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{path: "var/www/html/composer.lock", want: true},
		{path: "composer.lock", want: true},
		{path: "var/www/html/vendor/composer/installed.json", want: true},
		{path: "app/lib/composer/installed.json", want: true},
		{path: "composer/installed.json", want: true},
		{path: "var/www/html/vendor/monolog/monolog/composer.lock", want: false},
		{path: "vendor/x/y/composer.lock", want: false},
		{path: "var/www/html/composer.json", want: false},
		{path: "var/www/html/vendor/composer/installed.php", want: false},
		{path: "var/www/html/vendor/mycomposer/installed.json", want: false},
		{path: "var/www/html/composer.lock", mode: fs.ModeDir, want: false},
		{path: "var/www/html/vendor/composer/installed.json", mode: fs.ModeSymlink, want: false},
	}
	e := php.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode|0o644, 100); got != tt.want {
				t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
			}
		})
	}
}

func TestExtractFixtures(t *testing.T) {
	lock, installed := "app/composer.lock", "app/vendor/composer/installed.json"
	v1 := "v1/vendor/composer/installed.json"
	tests := []struct {
		path string
		want []model.Package
	}{
		{
			path: lock,
			want: []model.Package{
				pkg("guzzlehttp/guzzle", "7.4.1", lock),
				pkg("guzzlehttp/promises", "1.5.1", lock),
				pkg("guzzlehttp/psr7", "2.1.0", lock),
				pkg("monolog/monolog", "2.3.5", lock),
				pkg("psr/http-client", "1.0.1", lock),
				pkg("psr/log", "1.1.4", lock),
				pkg("symfony/deprecation-contracts", "2.5.0", lock),
				pkg("symfony/http-kernel", "5.4.3", lock),
				pkg("acme/internal-tools", "dev-main", lock),
				pkg("phpunit/phpunit", "9.5.13", lock),
				pkg("symfony/var-dumper", "5.4.3", lock),
			},
		},
		{
			path: installed,
			want: []model.Package{
				pkg("acme/internal-tools", "dev-main", installed),
				pkg("guzzlehttp/guzzle", "7.4.1", installed),
				pkg("guzzlehttp/promises", "1.5.1", installed),
				pkg("guzzlehttp/psr7", "2.1.0", installed),
				pkg("monolog/monolog", "2.3.5", installed),
				pkg("phpunit/phpunit", "9.5.13", installed),
				pkg("psr/http-client", "1.0.1", installed),
				pkg("psr/log", "1.1.4", installed),
				pkg("symfony/deprecation-contracts", "2.5.0", installed),
				pkg("symfony/http-kernel", "5.4.3", installed),
				pkg("symfony/var-dumper", "5.4.3", installed),
			},
		},
		{
			path: v1,
			want: []model.Package{
				pkg("monolog/monolog", "1.25.1", v1),
				pkg("psr/log", "1.1.0", v1),
				pkg("symfony/polyfill-mbstring", "1.12.0", v1),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.path))
			if err != nil {
				t.Fatal(err)
			}
			got, err := php.New().Extract(context.Background(), extracttest.File(tt.path, b))
			if err != nil {
				t.Fatalf("Extract() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	const lock, installed = "app/composer.lock", "app/vendor/composer/installed.json"
	tests := []struct {
		name    string
		path    string
		content string
		want    []model.Package
		wantErr bool
	}{
		{
			name:    "versions",
			path:    lock,
			content: `{"packages": [{"name": "a/b", "version": "V1.0"}, {"name": "a/c", "version": "2.x-dev"}, {"name": "a/d", "version": "v"}, {"name": "a/e", "version": "vendor-branch"}]}`,
			want:    []model.Package{pkg("a/b", "1.0", lock), pkg("a/c", "2.x-dev", lock), pkg("a/d", "v", lock), pkg("a/e", "vendor-branch", lock)},
		},
		{
			name:    "in both lists once",
			path:    lock,
			content: `{"packages": [{"name": "a/b", "version": "1.0"}], "packages-dev": [{"name": "A/B", "version": "v1.0"}]}`,
			want:    []model.Package{pkg("a/b", "1.0", lock)},
		},
		{
			name:    "byte order mark, whitespace before an array",
			path:    installed,
			content: "\ufeff \n[{\"name\": \"a/b\", \"version\": \"1.0\"}]",
			want:    []model.Package{pkg("a/b", "1.0", installed)},
		},
		{
			name:    "no packages",
			path:    installed,
			content: `{"packages": [], "dev": false, "dev-package-names": []}`,
		},
		{
			name:    "names and versions that are no package",
			path:    lock,
			content: `{"packages": [{"name": "ab", "version": "1"}, {"name": "a/b/c", "version": "1"}, {"name": "a/b", "version": ""}, {"name": "a b/c", "version": "1"}, {"name": "/b", "version": "1"}, {"name": "a/b", "version": "1 2"}, null, {}]}`,
		},
		{name: "packages an object", path: lock, content: `{"packages": {"a/b": "1.0"}}`, wantErr: true},
		{name: "version a number", path: installed, content: `[{"name": "a/b", "version": 1}]`, wantErr: true},
		{name: "not JSON", path: lock, content: `packages:`, wantErr: true},
		{name: "empty", path: installed, content: ``, wantErr: true},
		{name: "nested past encoding/json's limit", path: lock, content: strings.Repeat(`[`, 20000), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := php.New().Extract(context.Background(), extracttest.File(tt.path, []byte(tt.content)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Extract() error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, extract.ErrMalformed) || !strings.Contains(err.Error(), tt.path)) {
				t.Errorf("Extract() error = %v, want %v naming the file", err, extract.ErrMalformed)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractTooLarge(t *testing.T) {
	f := &extract.File{Path: "app/composer.lock", Size: 64<<20 + 1, Content: bytes.NewReader(nil)}
	_, err := php.New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) {
		t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "app/composer.lock", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := php.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
}

func TestExtractCanceled(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"packages": [`)
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"name": "v/p` + strconv.Itoa(i) + `", "version": "1.0.0"}`)
	}
	b.WriteString(`]}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := php.New().Extract(ctx, extracttest.File("app/composer.lock", []byte(b.String())))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func FuzzExtract(f *testing.F) {
	for _, p := range []string{"app/composer.lock", "app/vendor/composer/installed.json", "v1/vendor/composer/installed.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p, b)
	}
	e := php.New()
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		if !e.Required(path, 0o644, int64(len(data))) {
			return
		}
		got, err := e.Extract(context.Background(), extracttest.File(path, data))
		if err != nil && got != nil {
			t.Errorf("Extract() = %v and error %v", got, err)
		}
		for _, p := range got {
			if strings.Count(p.Name, "/") != 1 || p.Name != strings.ToLower(p.Name) || p.Version == "" ||
				p.Ecosystem != "Packagist" || !strings.HasPrefix(p.PURL, "pkg:composer/") {
				t.Errorf("Extract() returned %+v", p)
			}
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	const path = "app/composer.lock"
	content, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		b.Fatal(err)
	}
	e := php.New()
	f := extracttest.File(path, content)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

func pkg(name, version, path string) model.Package {
	vendor, project, _ := strings.Cut(name, "/")
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: "Packagist",
		PURL:      "pkg:composer/" + vendor + "/" + project + "@" + version,
		Path:      path,
		Extractor: php.Name,
	}
}
