package npm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/npm"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

var _ extract.Extractor = npm.New()

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{path: "srv/node-app/package-lock.json", want: true},
		{path: "package-lock.json", want: true},
		{path: "app/npm-shrinkwrap.json", want: true},
		{path: "srv/node-app/node_modules/lodash/package.json", want: true},
		{path: "node_modules/lodash/package.json", want: true},
		{path: "srv/node-app/node_modules/@babel/core/package.json", want: true},
		{path: "srv/node-app/node_modules/send/node_modules/ms/package.json", want: true},
		{path: "usr/lib/node_modules/npm/package.json", want: true},
		{path: "app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/package.json", want: true},
		{path: "srv/node-app/package.json", want: false},
		{path: "srv/node-app/node_modules/.package-lock.json", want: false},
		{path: "srv/node-app/node_modules/lodash/package-lock.json", want: false},
		{path: "node_modules/lodash/npm-shrinkwrap.json", want: false},
		{path: "srv/node-app/node_modules/lodash/test/fixtures/package.json", want: false},
		{path: "srv/node-app/node_modules/uuid/dist/esm-node/package.json", want: false},
		{path: "srv/node-app/node_modules/@babel/package.json", want: false},
		{path: "srv/node-app/node_modules/package.json", want: false},
		{path: "srv/node-app/node_modules/.bin/package.json", want: false},
		{path: "srv/my_node_modules/x/package.json", want: false},
		{path: "srv/node-app/package-lock.json.bak", want: false},
		{path: "srv/node-app/package-lock.json", mode: fs.ModeDir, want: false},
		{path: "srv/node-app/node_modules/lodash/package.json", mode: fs.ModeSymlink, want: false},
	}
	e := npm.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode|0o644, 100); got != tt.want {
				t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
			}
		})
	}
}

// TestExtractSlim reads the npm files of the slim fixture image the way a
// scan does: every file Required asks for.
func TestExtractSlim(t *testing.T) {
	got := extracttest.ExtractTree(t, npm.New(), "testdata/slim")

	golden := "testdata/slim.golden.json"
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
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch with %s (-want +got):\n%s", golden, diff)
	}

	// What the image was built to contain, independent of the golden file.
	const lock = "srv/node-app/package-lock.json"
	for _, p := range []model.Package{
		pkg("lodash", "4.17.15", lock, "pkg:npm/lodash@4.17.15"),
		pkg("minimist", "1.2.0", lock, "pkg:npm/minimist@1.2.0"),
		pkg("express", "4.17.1", lock, "pkg:npm/express@4.17.1"),
		pkg("axios", "0.21.0", lock, "pkg:npm/axios@0.21.0"),
		pkg("node-fetch", "2.6.0", lock, "pkg:npm/node-fetch@2.6.0"),
		pkg("jsonwebtoken", "8.5.1", lock, "pkg:npm/jsonwebtoken@8.5.1"),
		pkg("ms", "2.0.0", lock, "pkg:npm/ms@2.0.0"),
		pkg("ms", "2.1.1", lock, "pkg:npm/ms@2.1.1"),
		pkg("ms", "2.1.3", lock, "pkg:npm/ms@2.1.3"),
		pkg("lodash", "4.17.15", "srv/node-app/node_modules/lodash/package.json", "pkg:npm/lodash@4.17.15"),
		pkg("ms", "2.1.1", "srv/node-app/node_modules/send/node_modules/ms/package.json", "pkg:npm/ms@2.1.1"),
	} {
		if !contains(got, p) {
			t.Errorf("Extract() has no %+v", p)
		}
	}
	var fromLock, fromModules int
	for _, p := range got {
		if p.Path == lock {
			fromLock++
		} else {
			fromModules++
		}
	}
	if fromLock != 69 || fromModules != 69 {
		t.Errorf("Extract() read %d packages from the lock file and %d from node_modules, want 69 and 69", fromLock, fromModules)
	}
}

func TestExtractLockfiles(t *testing.T) {
	tests := []struct {
		path string
		want []model.Package
	}{
		{
			path: "lockv1/package-lock.json",
			want: []model.Package{
				pkg("@babel/code-frame", "7.12.13", "", "pkg:npm/%40babel/code-frame@7.12.13"),
				pkg("@types/node", "14.18.63", "", "pkg:npm/%40types/node@14.18.63"),
				pkg("debug", "2.6.9", "", "pkg:npm/debug@2.6.9"),
				pkg("left-pad", "github:left-pad/left-pad#0a6c2bd6b1e2e1fbc7a5f8d2c6e1e8a1a8d7e2f3", "",
					"pkg:npm/left-pad@github:left-pad%2Fleft-pad%230a6c2bd6b1e2e1fbc7a5f8d2c6e1e8a1a8d7e2f3"),
				pkg("ms", "2.0.0", "", "pkg:npm/ms@2.0.0"),
				pkg("ms", "2.1.1", "", "pkg:npm/ms@2.1.1"),
				pkg("ms", "2.1.2", "", "pkg:npm/ms@2.1.2"),
				pkg("send", "0.17.1", "", "pkg:npm/send@0.17.1"),
				pkg("string-width", "4.2.3", "", "pkg:npm/string-width@4.2.3"),
			},
		},
		{
			path: "lockv2/package-lock.json",
			want: []model.Package{
				pkg("minimist", "1.2.5", "", "pkg:npm/minimist@1.2.5"),
			},
		},
		{
			path: "lockv3/package-lock.json",
			want: []model.Package{
				pkg("@scope/deep", "0.0.1-beta.1", "", "pkg:npm/%40scope/deep@0.0.1-beta.1"),
				pkg("@types/node", "20.12.7", "", "pkg:npm/%40types/node@20.12.7"),
				pkg("fsevents", "2.3.3", "", "pkg:npm/fsevents@2.3.3"),
				pkg("left-pad", "1.3.0", "", "pkg:npm/left-pad@1.3.0"),
				pkg("string-width", "4.2.3", "", "pkg:npm/string-width@4.2.3"),
				pkg("string-width", "5.1.2", "", "pkg:npm/string-width@5.1.2"),
				pkg("typescript", "5.4.5", "", "pkg:npm/typescript@5.4.5"),
				pkg("undici-types", "5.26.5", "", "pkg:npm/undici-types@5.26.5"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.path))
			if err != nil {
				t.Fatal(err)
			}
			path := "app/" + filepath.Base(tt.path)
			got, err := npm.New().Extract(context.Background(), extracttest.File(path, b))
			if err != nil {
				t.Fatalf("Extract() error: %v", err)
			}
			for i := range tt.want {
				tt.want[i].Path = path
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractManifest(t *testing.T) {
	const path = "app/node_modules/x/package.json"
	tests := []struct {
		name    string
		content string
		want    []model.Package
		wantErr bool
	}{
		{
			name:    "name and version",
			content: `{"name": "lodash", "version": "4.17.21", "main": "lodash.js"}`,
			want:    []model.Package{pkg("lodash", "4.17.21", path, "pkg:npm/lodash@4.17.21")},
		},
		{
			name:    "scoped",
			content: `{"name": "@babel/core", "version": "7.24.0"}`,
			want:    []model.Package{pkg("@babel/core", "7.24.0", path, "pkg:npm/%40babel/core@7.24.0")},
		},
		{
			name:    "byte order mark",
			content: "\ufeff" + `{"name": "bom", "version": "1.0.0"}`,
			want:    []model.Package{pkg("bom", "1.0.0", path, "pkg:npm/bom@1.0.0")},
		},
		{name: "no version", content: `{"name": "placeholder"}`},
		{name: "no name", content: `{"version": "1.0.0", "type": "module"}`},
		{name: "empty object", content: `{}`},
		{name: "null fields", content: `{"name": null, "version": null}`},
		{name: "name too long", content: `{"name": "` + strings.Repeat("a", 215) + `", "version": "1.0.0"}`},
		{name: "version not a string", content: `{"name": "x", "version": 1}`, wantErr: true},
		{name: "name an object", content: `{"name": {"first": "x"}, "version": "1.0.0"}`, wantErr: true},
		{name: "array", content: `["name", "version"]`, wantErr: true},
		{name: "not JSON", content: `name: x`, wantErr: true},
		{name: "empty file", content: ``, wantErr: true},
		{name: "truncated", content: `{"name": "x", "vers`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := npm.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Extract() error = %v, want error: %v", err, tt.wantErr)
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

func TestExtractHostileLockfile(t *testing.T) {
	const path = "app/package-lock.json"
	tests := []struct {
		name    string
		content string
		// wantLen is the number of packages expected when there is no error.
		wantLen int
		wantErr bool
	}{
		{name: "nested past encoding/json's limit", content: strings.Repeat("[", 20000), wantErr: true},
		{
			name:    "dependencies nested 4000 deep",
			content: nestedV1(4000),
			wantLen: 4000,
		},
		{
			name:    "huge name and version",
			content: `{"packages": {"node_modules/` + strings.Repeat("a", 1<<20) + `": {"version": "1.0.0"}, "node_modules/b": {"version": "` + strings.Repeat("1", 1<<20) + `"}, "node_modules/c": {"version": "1.0.0"}}}`,
			wantLen: 1,
		},
		{name: "packages an array", content: `{"packages": ["node_modules/a"]}`, wantErr: true},
		{name: "version a number", content: `{"packages": {"node_modules/a": {"version": 1}}}`, wantErr: true},
		{name: "link a string", content: `{"packages": {"node_modules/a": {"version": "1.0.0", "link": "yes"}}}`, wantErr: true},
		{name: "dependencies a string", content: `{"dependencies": "a"}`, wantErr: true},
		{name: "nested dependencies an array", content: `{"dependencies": {"a": {"version": "1.0.0", "dependencies": [1]}}}`, wantErr: true},
		{name: "top level array", content: `[]`, wantErr: true},
		{name: "trailing data", content: `{} {}`, wantErr: true},
		{name: "empty file", content: ``, wantErr: true},
		{name: "invalid UTF-8 in a name", content: "{\"packages\": {\"node_modules/\xff\": {\"version\": \"1.0.0\"}}}", wantLen: 1},
		{name: "nulls", content: `{"packages": null, "dependencies": {"a": null, "b": {"version": null}}}`, wantLen: 0},
		{name: "empty key and bare node_modules", content: `{"packages": {"": {"version": "1.0.0"}, "node_modules/": {"version": "1.0.0"}}}`, wantLen: 0},
		{name: "alias without a version", content: `{"dependencies": {"a": {"version": "npm:b"}, "c": {"version": "npm:@s/c"}}}`, wantLen: 0},
		{name: "only the root", content: `{"lockfileVersion": 3, "packages": {"": {"name": "x", "version": "1.0.0"}}}`, wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := npm.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Extract() error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Extract() error %q does not name the file", err)
				}
				return
			}
			if len(got) != tt.wantLen {
				t.Errorf("Extract() returned %d packages, want %d", len(got), tt.wantLen)
			}
		})
	}
}

// nestedV1 returns a lockfileVersion 1 document whose dependency tree is
// depth levels deep, one package of a different version at each level.
func nestedV1(depth int) string {
	var b strings.Builder
	b.WriteString(`{"lockfileVersion": 1, "dependencies": `)
	for i := range depth {
		b.WriteString(`{"a": {"version": "1.0.` + strconv.Itoa(i) + `", "dependencies": `)
	}
	b.WriteString(`{}`)
	b.WriteString(strings.Repeat("}}", depth))
	b.WriteString(`}`)
	return b.String()
}

func TestExtractTooLarge(t *testing.T) {
	tests := []struct {
		path string
		size int64
	}{
		{path: "app/package-lock.json", size: 256<<20 + 1},
		{path: "app/node_modules/x/package.json", size: 1<<20 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := &extract.File{Path: tt.path, Size: tt.size, Content: bytes.NewReader(nil)}
			_, err := npm.New().Extract(context.Background(), f)
			if !errors.Is(err, extract.ErrTooLarge) {
				t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
			}
		})
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "app/package-lock.json", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := npm.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := npm.New().Extract(ctx, extracttest.File("app/package-lock.json", []byte(nestedV1(3000))))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func FuzzExtractLockfile(f *testing.F) {
	for _, p := range []string{
		"testdata/lockv1/package-lock.json",
		"testdata/lockv2/package-lock.json",
		"testdata/lockv3/package-lock.json",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"dependencies": {"a": {"version": "npm:@s/b@1.0.0", "dependencies": {"c": {"version": "file:x"}}}}}`))
	f.Add([]byte(`{"packages": {"x/node_modules/node_modules/y": {"name": "", "version": "1"}}}`))
	e := npm.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := e.Extract(context.Background(), extracttest.File("app/package-lock.json", data))
		if err != nil {
			return
		}
		for _, p := range got {
			if p.Name == "" || p.Version == "" || len(p.Name) > 214 || p.Ecosystem != "npm" || !strings.HasPrefix(p.PURL, "pkg:npm/") {
				t.Errorf("Extract() returned %+v", p)
			}
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	const path = "srv/node-app/package-lock.json"
	content, err := os.ReadFile(filepath.Join("testdata/slim", path))
	if err != nil {
		b.Fatal(err)
	}
	e := npm.New()
	f := extracttest.File(path, content)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

func contains(pkgs []model.Package, want model.Package) bool {
	for _, p := range pkgs {
		if p == want {
			return true
		}
	}
	return false
}

func pkg(name, version, path, purl string) model.Package {
	return model.Package{Name: name, Version: version, Ecosystem: "npm", PURL: purl, Path: path, Extractor: npm.Name}
}
