package dotnet_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/dotnet"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var _ extract.Extractor = dotnet.New()

const fixture = "testdata/app/WebApp.deps.json"

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{path: "app/WebApp.deps.json", want: true},
		{path: "usr/share/dotnet/shared/Microsoft.NETCore.App/6.0.16/Microsoft.NETCore.App.deps.json", want: true},
		{path: "WebApp.deps.json", want: true},
		{path: "app/.deps.json", want: false},
		{path: "app/WebApp.runtimeconfig.json", want: false},
		{path: "app/deps.json", want: false},
		{path: "app/WebApp.deps.json.bak", want: false},
		{path: "app/WebApp.deps.json", mode: fs.ModeDir, want: false},
		{path: "app/WebApp.deps.json", mode: fs.ModeSymlink, want: false},
	}
	e := dotnet.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode|0o644, 100); got != tt.want {
				t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
			}
		})
	}
}

func TestExtractFixture(t *testing.T) {
	const path = "app/WebApp.deps.json"
	got, err := dotnet.New().Extract(context.Background(), extracttest.File(path, readFixture(t)))
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}
	want := []model.Package{
		pkg("Microsoft.Extensions.DependencyModel", "3.0.0", path),
		pkg("Newtonsoft.Json", "12.0.1", path),
		pkg("Serilog", "2.10.0", path),
		pkg("Serilog.AspNetCore", "6.0.1", path),
		pkg("Serilog.Sinks.Console", "4.0.1", path),
		pkg("System.Text.Encodings.Web", "4.5.0", path),
		pkg("System.Text.Json", "4.6.0", path),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
	}
}

func TestExtract(t *testing.T) {
	const path = "app/x.deps.json"
	tests := []struct {
		name    string
		content string
		want    []model.Package
		wantErr bool
	}{
		{
			name:    "prerelease, byte order mark, sorted",
			content: "\ufeff" + `{"libraries": {"b/1.0.0-preview.7.21377.19": {"type": "package"}, "a/2.0.0": {"type": "package"}}}`,
			want:    []model.Package{pkg("a", "2.0.0", path), pkg("b", "1.0.0-preview.7.21377.19", path)},
		},
		{
			name:    "keys that are no package",
			content: `{"libraries": {"noversion": {"type": "package"}, "/1.0": {"type": "package"}, "a/": {"type": "package"}, "a b/1.0": {"type": "package"}, "c/v1": {"type": "package"}, "d/1.0": {}, "e/1.0": null}}`,
		},
		{name: "no libraries", content: `{"runtimeTarget": {"name": ".NETCoreApp,Version=v8.0"}}`},
		{name: "null libraries", content: `{"libraries": null}`},
		{name: "libraries an array", content: `{"libraries": []}`, wantErr: true},
		{name: "type a number", content: `{"libraries": {"a/1.0": {"type": 1}}}`, wantErr: true},
		{name: "not JSON", content: `libraries:`, wantErr: true},
		{name: "empty", content: ``, wantErr: true},
		{name: "truncated", content: `{"libraries": {"a/1.0": {"type": "pack`, wantErr: true},
		{name: "nested past encoding/json's limit", content: strings.Repeat(`{"a":`, 20000), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dotnet.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
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
	f := &extract.File{Path: "app/x.deps.json", Size: 64<<20 + 1, Content: bytes.NewReader(nil)}
	_, err := dotnet.New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) {
		t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "app/x.deps.json", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := dotnet.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
}

func TestExtractCanceled(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"libraries": {`)
	for i := range 3000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"p` + strconv.Itoa(i) + `/1.0.0": {"type": "package"}`)
	}
	b.WriteString(`}}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := dotnet.New().Extract(ctx, extracttest.File("app/x.deps.json", []byte(b.String())))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte(`{"libraries": {"a/1/2": {"type": "package"}, "b/1.0": {"type": "project"}}}`))
	e := dotnet.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := e.Extract(context.Background(), extracttest.File("app/x.deps.json", data))
		if err != nil && got != nil {
			t.Errorf("Extract() = %v and error %v", got, err)
		}
		for _, p := range got {
			if p.Name == "" || p.Version == "" || strings.Contains(p.Name, "/") || p.Ecosystem != "NuGet" || !strings.HasPrefix(p.PURL, "pkg:nuget/") {
				t.Errorf("Extract() returned %+v", p)
			}
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	content := readFixture(b)
	e := dotnet.New()
	f := extracttest.File("app/WebApp.deps.json", content)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pkg(name, version, path string) model.Package {
	return model.Package{
		Name:      name,
		Version:   version,
		Ecosystem: "NuGet",
		PURL:      "pkg:nuget/" + name + "@" + version,
		Path:      path,
		Extractor: dotnet.Name,
	}
}
