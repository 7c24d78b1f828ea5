package gobinary_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/gobinary"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var _ extract.Extractor = gobinary.New()

const fixture = "testdata/vulnapp"

func TestRequired(t *testing.T) {
	tests := []struct {
		name string
		path string
		mode fs.FileMode
		size int64
		want bool
	}{
		{name: "executable", path: "app/vulnapp", mode: 0o755, size: 4 << 20, want: true},
		{name: "owner execute only", path: "usr/local/bin/tool", mode: 0o700, size: 100, want: true},
		{name: "others execute only", path: "opt/x", mode: 0o001, size: 100, want: true},
		{name: "not executable", path: "usr/local/bin/tool", mode: 0o644, size: 100, want: false},
		{name: "directory", path: "usr/bin", mode: fs.ModeDir | 0o755, size: 4096, want: false},
		{name: "symlink", path: "usr/bin/go", mode: fs.ModeSymlink | 0o777, size: 20, want: false},
		{name: "empty", path: "usr/bin/empty", mode: 0o755, size: 0, want: false},
		{name: "at limit", path: "usr/bin/big", mode: 0o755, size: 512 << 20, want: true},
		{name: "over limit", path: "usr/bin/huge", mode: 0o755, size: 512<<20 + 1, want: false},
	}
	e := gobinary.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode, tt.size); got != tt.want {
				t.Errorf("Required(%q, %v, %d) = %v, want %v", tt.path, tt.mode, tt.size, got, tt.want)
			}
		})
	}
}

func TestExtractFixture(t *testing.T) {
	content := readFixture(t)
	got, err := gobinary.New().Extract(context.Background(), extracttest.File("app/vulnapp", content))
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}
	mod := func(name, version string) model.Package {
		return model.Package{
			Name:      name,
			Version:   strings.TrimPrefix(version, "v"),
			Ecosystem: "Go",
			PURL:      "pkg:golang/" + name + "@" + version,
			Path:      "app/vulnapp",
			Extractor: gobinary.Name,
		}
	}
	want := []model.Package{
		{
			Name:      "stdlib",
			Version:   "1.21.0",
			Ecosystem: "Go",
			PURL:      "pkg:golang/stdlib@v1.21.0",
			Path:      "app/vulnapp",
			Extractor: gobinary.Name,
		},
		mod("github.com/gin-contrib/sse", "v0.1.0"),
		mod("github.com/gin-gonic/gin", "v1.7.7"),
		mod("github.com/go-playground/locales", "v0.13.0"),
		mod("github.com/go-playground/universal-translator", "v0.17.0"),
		mod("github.com/go-playground/validator/v10", "v10.4.1"),
		mod("github.com/golang-jwt/jwt/v4", "v4.4.1"),
		mod("github.com/golang/protobuf", "v1.3.3"),
		mod("github.com/leodido/go-urn", "v1.2.0"),
		mod("github.com/mattn/go-isatty", "v0.0.12"),
		mod("github.com/ugorji/go/codec", "v1.1.7"),
		mod("golang.org/x/crypto", "v0.0.0-20200622213623-75b288015ac9"),
		mod("golang.org/x/net", "v0.7.0"),
		mod("golang.org/x/sys", "v0.5.0"),
		mod("golang.org/x/text", "v0.7.0"),
		mod("gopkg.in/yaml.v2", "v2.2.8"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
	}
}

func TestExtractNotGo(t *testing.T) {
	// Toolchains before Go 1.13 wrote no build information.
	noBuildInfo := overwrite(readFixture(t), []byte("\xff Go buildinf:"), []byte("\xff Go xxxxxxxx:"))
	random := make([]byte, 64<<10)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	elfGarbage := append([]byte("\x7fELF\x02\x01\x01\x00"), random[:4096]...)
	tests := []struct {
		name    string
		content []byte
	}{
		{name: "shell script", content: []byte("#!/bin/sh\nexec /app/vulnapp \"$@\"\n")},
		{name: "random bytes", content: random},
		{name: "ELF magic then garbage", content: elfGarbage},
		{name: "shorter than a header", content: []byte("\x7fEL")},
		{name: "empty", content: nil},
		{name: "PE magic only", content: []byte("MZ\x90\x00")},
		{name: "Go executable without build info", content: noBuildInfo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gobinary.New().Extract(context.Background(), extracttest.File("usr/bin/x", tt.content))
			if err != nil || got != nil {
				t.Errorf("Extract() = %v, %v; want nil, nil", got, err)
			}
		})
	}
}

// A Go executable cut short, as by an interrupted copy or a corrupt layer,
// is reported rather than passed over as "not Go": its packages would go
// unscanned otherwise.
func TestExtractDamaged(t *testing.T) {
	content := readFixture(t)
	tests := []struct {
		name    string
		content []byte
	}{
		{name: "truncated at half", content: content[:len(content)/2]},
		{name: "truncated at three quarters", content: content[:len(content)*3/4]},
		{name: "truncated at nine tenths", content: content[:len(content)*9/10]},
		{name: "truncated after the headers", content: content[:40<<10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gobinary.New().Extract(context.Background(), extracttest.File("app/vulnapp", tt.content))
			if err == nil {
				t.Fatalf("Extract() = %v, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), `"app/vulnapp"`) {
				t.Errorf("Extract() error %q does not name the file", err)
			}
		})
	}
}

func overwrite(b, old, repl []byte) []byte {
	i := bytes.Index(b, old)
	if i < 0 {
		panic("pattern not in fixture")
	}
	b = bytes.Clone(b)
	copy(b[i:], repl)
	return b
}

func TestExtractTooLarge(t *testing.T) {
	f := &extract.File{Path: "usr/bin/huge", Size: 1 << 40, Content: bytes.NewReader(nil)}
	_, err := gobinary.New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) {
		t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "usr/bin/x", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := gobinary.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := gobinary.New().Extract(ctx, extracttest.File("app/vulnapp", readFixture(t)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func BenchmarkExtract(b *testing.B) {
	content, err := os.ReadFile(fixture)
	if err != nil {
		b.Fatal(err)
	}
	e := gobinary.New()
	f := extracttest.File("app/vulnapp", content)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

func readFixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
