package python_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/python"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var _ extract.Extractor = python.New()

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{path: "usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/METADATA", want: true},
		{path: "app/.venv/lib/python3.12/site-packages/Django-5.0.dist-info/METADATA", want: true},
		{path: "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO", want: true},
		{path: "usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info", want: true},
		{path: "usr/local/lib/python2.7/site-packages/foo-1.0-py2.7.egg/EGG-INFO/PKG-INFO", want: true},
		{path: "usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/RECORD", want: false},
		{path: "usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/WHEEL", want: false},
		{path: "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/requires.txt", want: false},
		{path: "usr/lib/python3/dist-packages/requests/METADATA", want: false},
		{path: "src/PKG-INFO", want: false},
		{path: "usr/lib/python3/dist-packages/.egg-info", want: false},
		{path: "usr/lib/python3/dist-packages/foo.egg-info", mode: fs.ModeDir, want: false},
		{path: "usr/lib/python3/dist-packages/x.dist-info/METADATA", mode: fs.ModeSymlink, want: false},
	}
	e := python.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode|0o644, 100); got != tt.want {
				t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
			}
		})
	}
}

// TestExtractSlim reads the distributions Debian installed in the slim
// fixture image, through Required as a scan does.
func TestExtractSlim(t *testing.T) {
	const dir = "usr/lib/python3/dist-packages/"
	want := []model.Package{
		pkg("certifi", "2022.9.24", dir+"certifi-2022.9.24.egg-info/PKG-INFO", "pkg:pypi/certifi@2022.9.24"),
		pkg("chardet", "5.1.0", dir+"chardet-5.1.0.dist-info/METADATA", "pkg:pypi/chardet@5.1.0"),
		pkg("charset-normalizer", "3.0.1", dir+"charset_normalizer-3.0.1.dist-info/METADATA", "pkg:pypi/charset-normalizer@3.0.1"),
		pkg("idna", "3.3", dir+"idna-3.3.egg-info/PKG-INFO", "pkg:pypi/idna@3.3"),
		pkg("requests", "2.28.1", dir+"requests-2.28.1.egg-info/PKG-INFO", "pkg:pypi/requests@2.28.1"),
		pkg("six", "1.16.0", dir+"six-1.16.0.egg-info/PKG-INFO", "pkg:pypi/six@1.16.0"),
		pkg("urllib3", "1.26.12", dir+"urllib3-1.26.12.egg-info/PKG-INFO", "pkg:pypi/urllib3@1.26.12"),
	}
	got := extracttest.ExtractTree(t, python.New(), "testdata/slim")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
	}
}

func TestExtract(t *testing.T) {
	const path = "site-packages/x-1.0.dist-info/METADATA"
	tests := []struct {
		name    string
		content string
		want    []model.Package
		wantErr error // nil: no error; errAny: any error
	}{
		{
			name:    "declared name kept, URL normalized",
			content: "Metadata-Version: 2.1\nName: Flask_SQLAlchemy\nVersion: 3.1.1\n\nbody\n",
			want:    []model.Package{pkg("Flask_SQLAlchemy", "3.1.1", path, "pkg:pypi/flask-sqlalchemy@3.1.1")},
		},
		{
			name:    "CRLF, byte order mark, header case and spacing",
			content: "\ufeffMetadata-Version: 1.0\r\nname:   zope.interface  \r\nVERSION:6.0\r\n\r\n",
			want:    []model.Package{pkg("zope.interface", "6.0", path, "pkg:pypi/zope.interface@6.0")},
		},
		{
			name:    "continuation lines and body ignored",
			content: "Metadata-Version: 1.1\nSummary: a\n  Name: not-this\nName: real\nVersion: 1.0.post1\nDescription: long\n        |Version: 9\n\nName: body\n",
			want:    []model.Package{pkg("real", "1.0.post1", path, "pkg:pypi/real@1.0.post1")},
		},
		{
			name:    "first header wins",
			content: "Name: first\nName: second\nVersion: 1\nVersion: 2\n",
			want:    []model.Package{pkg("first", "1", path, "pkg:pypi/first@1")},
		},
		{
			name:    "no blank line",
			content: "Name: a\nVersion: 2!1.0+local.7",
			want:    []model.Package{pkg("a", "2!1.0+local.7", path, "pkg:pypi/a@2%211.0%2Blocal.7")},
		},
		{name: "version in the body only", content: "Name: a\n\nVersion: 1\n", wantErr: errAny},
		{name: "no name", content: "Metadata-Version: 2.1\nVersion: 1.0\n", wantErr: errAny},
		{name: "empty name", content: "Name:\nVersion: 1.0\n", wantErr: errAny},
		{name: "empty file", content: "", wantErr: errAny},
		{name: "blank first line", content: "\nName: a\nVersion: 1\n", wantErr: errAny},
		{name: "binary", content: "\x00\x01\x02\xff", wantErr: errAny},
		{name: "control character in name", content: "Name: a\x00b\nVersion: 1\n", wantErr: errAny},
		{name: "invalid UTF-8 in version", content: "Name: a\nVersion: 1\xff\n", wantErr: errAny},
		{name: "name too long", content: "Name: " + strings.Repeat("a", 257) + "\nVersion: 1\n", wantErr: errAny},
		{name: "line past the limit", content: "Name: " + strings.Repeat("a", 1<<20) + "\nVersion: 1\n", wantErr: extract.ErrTooLarge},
		{
			name:    "headers past the limit",
			content: strings.Repeat("Classifier: x\n", (1<<20)/14+1) + "Name: a\nVersion: 1\n",
			wantErr: extract.ErrTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := python.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Extract() error: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Extract() = %v, want an error", got)
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Extract() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("Extract() error %q does not name the file", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

var errAny = errors.New("any error")

// A large description after the headers is not read, whatever its size.
func TestExtractLargeBody(t *testing.T) {
	content := []byte("Name: big\nVersion: 1.0\n\n" + strings.Repeat("x", 8<<20))
	f := extracttest.File("site-packages/big-1.0.dist-info/METADATA", content)
	got, err := python.New().Extract(context.Background(), f)
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}
	if len(got) != 1 || got[0].Name != "big" {
		t.Errorf("Extract() = %v, want big 1.0", got)
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "x-1.0.dist-info/METADATA", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := python.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := python.New().Extract(ctx, extracttest.File("x.egg-info", []byte("Name: a\nVersion: 1\n")))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func FuzzExtract(f *testing.F) {
	err := filepath.WalkDir("testdata/slim", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if base := filepath.Base(p); base == "METADATA" || base == "PKG-INFO" {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f.Add(b)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("Name: a\r\n\tVersion: 1\r\nVersion:  2 \r\n\r\n"))
	e := python.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := e.Extract(context.Background(), extracttest.File("x-1.0.dist-info/METADATA", data))
		if err != nil {
			if got != nil {
				t.Errorf("Extract() = %v and error %v", got, err)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("Extract() returned %d packages, want 1", len(got))
		}
		p := got[0]
		if p.Name == "" || p.Version == "" || strings.TrimSpace(p.Name) != p.Name ||
			p.Ecosystem != "PyPI" || !strings.HasPrefix(p.PURL, "pkg:pypi/") {
			t.Errorf("Extract() returned %+v", p)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	// The largest metadata file of the fixture: 1438 lines, Name and
	// Version on lines 2 and 3.
	const path = "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO"
	content, err := os.ReadFile(filepath.Join("testdata/slim", path))
	if err != nil {
		b.Fatal(err)
	}
	e := python.New()
	f := extracttest.File(path, content)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

func pkg(name, version, path, purl string) model.Package {
	return model.Package{Name: name, Version: version, Ecosystem: "PyPI", PURL: purl, Path: path, Extractor: python.Name}
}
