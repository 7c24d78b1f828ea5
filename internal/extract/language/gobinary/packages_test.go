package gobinary

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
)

func TestPackages(t *testing.T) {
	pkg := func(name, version, purl string) model.Package {
		return model.Package{Name: name, Version: version, Ecosystem: "Go", PURL: purl, Path: "bin/x", Extractor: Name}
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want []model.Package
	}{
		{
			name: "versioned main module",
			bi: &debug.BuildInfo{
				GoVersion: "go1.22.3",
				Main:      debug.Module{Path: "github.com/example/tool", Version: "v1.4.0"},
			},
			want: []model.Package{
				pkg("github.com/example/tool", "1.4.0", "pkg:golang/github.com/example/tool@v1.4.0"),
				pkg("stdlib", "1.22.3", "pkg:golang/stdlib@v1.22.3"),
			},
		},
		{
			name: "devel main module and module path case kept",
			bi: &debug.BuildInfo{
				GoVersion: "go1.24.0 X:nocoverageredesign",
				Main:      debug.Module{Path: "example.com/app", Version: "(devel)"},
				Deps: []*debug.Module{
					{Path: "github.com/Azure/azure-sdk-for-go/sdk/azcore", Version: "v1.11.1"},
				},
			},
			want: []model.Package{
				pkg("stdlib", "1.24.0", "pkg:golang/stdlib@v1.24.0"),
				pkg("github.com/Azure/azure-sdk-for-go/sdk/azcore", "1.11.1", "pkg:golang/github.com/Azure/azure-sdk-for-go/sdk/azcore@v1.11.1"),
			},
		},
		{
			name: "replacements",
			bi: &debug.BuildInfo{
				GoVersion: "go1.21.0",
				Deps: []*debug.Module{
					{
						Path: "golang.org/x/net", Version: "v0.7.0",
						Replace: &debug.Module{Path: "golang.org/x/net", Version: "v0.17.0"},
					},
					{
						Path: "github.com/upstream/lib", Version: "v1.0.0",
						Replace: &debug.Module{Path: "github.com/fork/lib", Version: "v1.0.1-fixed"},
					},
					{
						Path: "example.com/vendored", Version: "v0.3.0",
						Replace: &debug.Module{Path: "../vendored", Version: "(devel)"},
					},
					{
						Path: "example.com/empty-replace", Version: "v0.1.0",
						Replace: &debug.Module{},
					},
				},
			},
			want: []model.Package{
				pkg("stdlib", "1.21.0", "pkg:golang/stdlib@v1.21.0"),
				pkg("golang.org/x/net", "0.17.0", "pkg:golang/golang.org/x/net@v0.17.0"),
				pkg("github.com/fork/lib", "1.0.1-fixed", "pkg:golang/github.com/fork/lib@v1.0.1-fixed"),
				pkg("../vendored", "", ""),
				pkg("example.com/empty-replace", "0.1.0", "pkg:golang/example.com/empty-replace@v0.1.0"),
			},
		},
		{
			name: "development toolchain and GOPATH build",
			bi: &debug.BuildInfo{
				GoVersion: "devel go1.23-5a9b6a1 Mon Jan 8 00:00:00 2024 +0000",
				Deps:      []*debug.Module{{Path: ""}},
			},
			want: []model.Package{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := packages(tt.bi, "bin/x")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("packages() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
