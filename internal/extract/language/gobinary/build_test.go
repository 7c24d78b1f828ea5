package gobinary_test

import (
	"archive/zip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/gobinary"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// TestExtractBuiltReplace builds a program whose go.mod replaces one
// module by another published version (served by a file-based module
// proxy in a temporary directory) and another by a local directory, and
// checks what the extractor makes of the toolchain's real output.
func TestExtractBuiltReplace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command: %v", err)
	}
	dir := t.TempDir()
	proxy := filepath.Join(dir, "proxy")
	writeProxyModule(t, proxy, "example.com/fork", "v1.2.3", map[string]string{
		// A fork keeps the module path it forked, as forks usually do.
		"go.mod":  "module example.com/orig\n\ngo 1.21\n",
		"orig.go": "package orig\n\nfunc Name() string { return \"fork\" }\n",
	})
	app := filepath.Join(dir, "app")
	writeFiles(t, app, map[string]string{
		"go.mod": `module example.com/app

go 1.21

require (
	example.com/local v0.1.0
	example.com/orig v1.0.0
)

replace example.com/orig => example.com/fork v1.2.3

replace example.com/local => ./local
`,
		"main.go": `package main

import (
	"fmt"

	"example.com/local"
	"example.com/orig"
)

func main() { fmt.Println(orig.Name(), local.Name()) }
`,
		"local/go.mod":   "module example.com/local\n\ngo 1.21\n",
		"local/local.go": "package local\n\nfunc Name() string { return \"local\" }\n",
	})

	goVersion := runGo(t, goTool, app, proxy, "env", "GOVERSION")
	runGo(t, goTool, app, proxy, "build", "-o", "app.bin", ".")
	content, err := os.ReadFile(filepath.Join(app, "app.bin"))
	if err != nil {
		t.Fatal(err)
	}

	got, err := gobinary.New().Extract(context.Background(), extracttest.File("usr/local/bin/app", content))
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}
	stdlib, ok := strings.CutPrefix(strings.TrimSpace(goVersion), "go")
	if !ok {
		t.Fatalf("go env GOVERSION = %q", goVersion)
	}
	if strings.Count(stdlib, ".") == 1 {
		stdlib += ".0"
	}
	want := []model.Package{
		{Name: "stdlib", Version: stdlib, PURL: "pkg:golang/stdlib@v" + stdlib},
		{Name: "./local"},
		{Name: "example.com/fork", Version: "1.2.3", PURL: "pkg:golang/example.com/fork@v1.2.3"},
	}
	for i := range want {
		want[i].Ecosystem, want[i].Path, want[i].Extractor = "Go", "usr/local/bin/app", gobinary.Name
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
	}
}

func runGo(t *testing.T, goTool, dir, proxy string, args ...string) string {
	t.Helper()
	cmd := exec.Command(goTool, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GOPROXY=file://"+filepath.ToSlash(proxy),
		"GOFLAGS=-mod=mod -modcacherw -buildvcs=false",
		"GOMODCACHE="+filepath.Join(filepath.Dir(dir), "modcache"),
		"GOSUMDB=off",
		"GOWORK=off",
		"GOTOOLCHAIN=local",
		"CGO_ENABLED=0",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeProxyModule lays out one module version the way GOPROXY=file://
// serves it.
func writeProxyModule(t *testing.T, proxy, modPath, version string, files map[string]string) {
	t.Helper()
	dir := filepath.Join(proxy, filepath.FromSlash(modPath), "@v")
	writeFiles(t, dir, map[string]string{
		"list":            version + "\n",
		version + ".info": `{"Version":"` + version + `"}`,
		version + ".mod":  files["go.mod"],
	})
	zf, err := os.Create(filepath.Join(dir, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(zf)
	for name, body := range files {
		w, err := zw.Create(modPath + "@" + version + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zf.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
