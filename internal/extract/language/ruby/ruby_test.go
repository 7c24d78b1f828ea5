package ruby_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/ruby"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

var _ extract.Extractor = ruby.New()

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{path: "usr/local/bundle/specifications/rack-2.2.4.gemspec", want: true},
		{path: "usr/local/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", want: true},
		{path: "var/lib/gems/3.1.0/specifications/nokogiri-1.13.8-x86_64-linux.gemspec", want: true},
		{path: "app/vendor/bundle/ruby/3.1.0/specifications/puma-5.6.4.gemspec", want: true},
		{path: "specifications/rack-2.2.4.gemspec", want: true},
		{path: "app/Gemfile.lock", want: true},
		{path: "Gemfile.lock", want: true},
		{path: "srv/app/gems.locked", want: true},
		{path: "usr/local/bundle/gems/rails-7.0.4/Gemfile.lock", want: false},
		{path: "usr/local/bundle/bundler/gems/paperclip-5f8a0e1c2b3d/Gemfile.lock", want: false},
		{path: "usr/local/bundle/gems/rack-2.2.4/test/fixtures/Gemfile.lock", want: false},
		{path: "app/rack.gemspec", want: false},
		{path: "usr/local/bundle/gems/rack-2.2.4/rack.gemspec", want: false},
		{path: "usr/local/bundle/specifications/.gemspec", want: false},
		{path: "usr/local/bundle/specifications/sub/x-1.gemspec", want: false},
		{path: "usr/local/bundle/myspecifications/x-1.gemspec", want: false},
		{path: "app/Gemfile", want: false},
		{path: "app/Gemfile.lock", mode: fs.ModeDir, want: false},
		{path: "usr/local/bundle/specifications/rack-2.2.4.gemspec", mode: fs.ModeSymlink, want: false},
	}
	e := ruby.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode|0o644, 100); got != tt.want {
				t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
			}
		})
	}
}

// TestExtractInstalled reads the installed gemspecs under testdata/bundle
// through Required, as a scan does.
func TestExtractInstalled(t *testing.T) {
	const dir = "bundle/specifications/"
	want := []model.Package{
		pkg("json", "2.6.1", dir+"default/json-2.6.1.gemspec"),
		pkg("nokogiri", "1.13.8", dir+"nokogiri-1.13.8-x86_64-linux.gemspec"),
		pkg("rack", "2.2.4", dir+"rack-2.2.4.gemspec"),
		pkg("rake", "0.8.7", dir+"rake-0.8.7.gemspec"),
	}
	got := extracttest.ExtractTree(t, ruby.New(), "testdata")
	var specs []model.Package
	for _, p := range got {
		if strings.HasSuffix(p.Path, ".gemspec") {
			specs = append(specs, p)
		}
	}
	if diff := cmp.Diff(want, specs); diff != "" {
		t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
	}
}

func TestExtractGemspec(t *testing.T) {
	const path = "gems/specifications/x-1.0.gemspec"
	tests := []struct {
		name    string
		content string
		want    []model.Package
	}{
		{
			name:    "constructor arguments",
			content: "Gem::Specification.new(\"rails\", \"7.0.4\") do |spec|\n  spec.summary = 'x'\nend\n",
			want:    []model.Package{pkg("rails", "7.0.4", path)},
		},
		{
			name:    "constructor arguments without parentheses",
			content: "Gem::Specification.new 'rails', '7.0.4' do |spec|\nend\n",
			want:    []model.Package{pkg("rails", "7.0.4", path)},
		},
		{
			name:    "other block variable, %q delimiters, CRLF",
			content: "Gem::Specification.new do |gem|\r\n  gem.name    =  %q(quote_me)\r\n  gem.version = %q<1.0.0.rc1>.freeze  # pinned\r\n  s.name = \"not-this\"\r\nend\r\n",
			want:    []model.Package{pkg("quote_me", "1.0.0.rc1", path)},
		},
		{
			name:    "first assignment wins, other attributes ignored",
			content: "Gem::Specification.new do |s|\n  s.rubygems_version = \"3.3.7\"\n  s.name = 'a'\n  s.version = \"2\"\n  s.name = \"b\"\n  s.required_rubygems_version = \"9\"\nend\n",
			want:    []model.Package{pkg("a", "2", path)},
		},
		{
			name:    "escapes",
			content: "Gem::Specification.new do |s|\n  s.name = 'it\\'s'\n  s.version = \"1\"\nend\n",
		},
		{
			name:    "interpolation falls back to the stub line",
			content: "# stub: real 3.0.0 ruby lib\nGem::Specification.new do |s|\n  s.name = \"#{prefix}-gem\"\n  s.version = Real::VERSION\nend\n",
			want:    []model.Package{pkg("real", "3.0.0", path)},
		},
		{
			name:    "version from a constant",
			content: "Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = A::VERSION\nend\n",
		},
		{name: "empty", content: ""},
		{name: "binary", content: "\x00\x01\xff\xfe"},
		{name: "name with a space", content: "Gem::Specification.new do |s|\n  s.name = \"a b\"\n  s.version = \"1\"\nend\n"},
		{name: "version with a dash", content: "Gem::Specification.new do |s|\n  s.name = \"a\"\n  s.version = \"1.0-rc1\"\nend\n"},
		{name: "unterminated string", content: "Gem::Specification.new do |s|\n  s.name = \"a\n  s.version = \"1\"\nend\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ruby.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
			if (err != nil) != (tt.want == nil) {
				t.Fatalf("Extract() = %v, %v; want %v", got, err, tt.want)
			}
			if err != nil && (!errors.Is(err, extract.ErrMalformed) || !strings.Contains(err.Error(), path)) {
				t.Errorf("Extract() error = %v, want %v naming the file", err, extract.ErrMalformed)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractLockfile(t *testing.T) {
	const path = "srv/app/Gemfile.lock"
	got, err := ruby.New().Extract(context.Background(), extracttest.File(path, readFile(t, "testdata/Gemfile.lock")))
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}

	golden := "testdata/Gemfile.lock.golden.json"
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want []model.Package
	if err := json.Unmarshal(readFile(t, golden), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch with %s (-want +got):\n%s", golden, diff)
	}

	// What the file was written to hold, independent of the golden file.
	if len(got) != 27 {
		t.Errorf("Extract() returned %d gems, want 27", len(got))
	}
	for _, p := range []model.Package{
		pkg("nokogiri", "1.13.8", path),
		pkg("rack", "2.2.4", path),
		pkg("actionpack", "7.0.4", path),
		pkg("internal-auth", "1.4.0.pre.rc1", path),
	} {
		if !contains(got, p) {
			t.Errorf("Extract() has no %+v", p)
		}
	}
	for _, p := range got {
		switch p.Name {
		case "paperclip", "billing", "rails", "activemodel (>= 4.2.0)":
			t.Errorf("Extract() returned %s, which is not a gem from a gem server", p.Name)
		}
	}
}

func TestExtractLockfileSyntax(t *testing.T) {
	const path = "app/Gemfile.lock"
	tests := []struct {
		name    string
		content string
		want    []model.Package
		wantErr bool
	}{
		{
			name:    "CRLF",
			content: "GEM\r\n  remote: https://rubygems.org/\r\n  specs:\r\n    rack (2.2.4)\r\n\r\nPLATFORMS\r\n  ruby\r\n",
			want:    []model.Package{pkg("rack", "2.2.4", path)},
		},
		{
			name:    "specs of other sections and checksums ignored",
			content: "PLUGIN SOURCE\n  remote: x\n  specs:\n    plugin (1.0)\n\nCHECKSUMS\n  rack (2.2.4) sha256=abc\n\nGEM\n  specs:\n    a (1.0)\n",
			want:    []model.Package{pkg("a", "1.0", path)},
		},
		{
			name:    "invalid versions skipped",
			content: "GEM\n  specs:\n    a (= 1.0)\n    b (1.0)\n",
			want:    []model.Package{pkg("b", "1.0", path)},
		},
		{name: "no GEM section", content: "PLATFORMS\n  ruby\n\nBUNDLED WITH\n   2.3.26\n"},
		{name: "empty", content: ""},
		{name: "binary", content: "\x00\xff\xfe"},
		{name: "gem without a version", content: "GEM\n  specs:\n    rack\n", wantErr: true},
		{name: "gem with an empty version", content: "GEM\n  specs:\n    rack ()\n", wantErr: true},
		{name: "unclosed version", content: "GEM\n  specs:\n    rack (2.2.4\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ruby.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Extract() error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil && (!errors.Is(err, extract.ErrMalformed) || !strings.Contains(err.Error(), path)) {
				t.Errorf("Extract() error = %v, want %v naming the file", err, extract.ErrMalformed)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractTooLarge(t *testing.T) {
	tests := []struct {
		path string
		size int64
	}{
		{path: "app/Gemfile.lock", size: 16<<20 + 1},
		{path: "gems/specifications/x-1.gemspec", size: 1<<20 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := &extract.File{Path: tt.path, Size: tt.size, Content: bytes.NewReader(nil)}
			_, err := ruby.New().Extract(context.Background(), f)
			if !errors.Is(err, extract.ErrTooLarge) {
				t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
			}
		})
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "app/Gemfile.lock", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := ruby.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ruby.New().Extract(ctx, extracttest.File("app/Gemfile.lock", readFile(t, "testdata/Gemfile.lock")))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func FuzzExtractGemspec(f *testing.F) {
	for _, p := range []string{
		"testdata/bundle/specifications/rack-2.2.4.gemspec",
		"testdata/bundle/specifications/rake-0.8.7.gemspec",
	} {
		f.Add(readFile(f, p))
	}
	f.Add([]byte("# stub: a 1 ruby lib\nGem::Specification.new(%Q{b}, 'c') { |x|\n x.name = \"\\\\#{\"\n}"))
	e := ruby.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := e.Extract(context.Background(), extracttest.File("gems/specifications/x-1.gemspec", data))
		if err == nil && len(got) != 1 {
			t.Errorf("Extract() = %v, want one gem", got)
		}
		checkPackages(t, got)
	})
}

func FuzzExtractLockfile(f *testing.F) {
	f.Add(readFile(f, "testdata/Gemfile.lock"))
	f.Add([]byte("GEM\n  specs:\n    a (1-x)\n      b\n  specs:\n    c ((1))\n"))
	e := ruby.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _ := e.Extract(context.Background(), extracttest.File("app/Gemfile.lock", data))
		checkPackages(t, got)
	})
}

func checkPackages(t *testing.T, pkgs []model.Package) {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Ecosystem != "RubyGems" || !strings.HasPrefix(p.PURL, "pkg:gem/") {
			t.Errorf("Extract() returned %+v", p)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	for _, bb := range []struct{ name, path, fixture string }{
		{name: "lockfile", path: "app/Gemfile.lock", fixture: "testdata/Gemfile.lock"},
		{name: "gemspec", path: "gems/specifications/nokogiri-1.13.8-x86_64-linux.gemspec",
			fixture: "testdata/bundle/specifications/nokogiri-1.13.8-x86_64-linux.gemspec"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			content := readFile(b, bb.fixture)
			e := ruby.New()
			f := extracttest.File(bb.path, content)
			b.SetBytes(int64(len(content)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Extract(context.Background(), f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func contains(pkgs []model.Package, want model.Package) bool {
	for _, p := range pkgs {
		if p == want {
			return true
		}
	}
	return false
}

func pkg(name, version, path string) model.Package {
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: "RubyGems",
		PURL:      "pkg:gem/" + name + "@" + version,
		Path:      path,
		Extractor: ruby.Name,
	}
}
