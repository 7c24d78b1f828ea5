package apk

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var alpine319 = &extract.OS{ID: "alpine", VersionID: "3.19.1", PrettyName: "Alpine Linux v3.19"}

func fileFrom(b []byte, o *extract.OS) *extract.File {
	return &extract.File{Path: installedPath, Size: int64(len(b)), Content: bytes.NewReader(b), OS: o}
}

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "installed"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkg is the package Extract reports on Alpine 3.19.1 for x86_64.
func pkg(name, version, origin string) model.Package {
	return model.Package{
		Name: name, Version: version, Ecosystem: "Alpine:v3.19",
		SourceName: origin, SourceVersion: version,
		PURL:      "pkg:apk/alpine/" + name + "@" + version + "?arch=x86_64&distro=alpine-3.19.1",
		Path:      installedPath,
		Extractor: Name,
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{"lib/apk/db/installed", 0o644, true},
		{"lib/apk/db/installed", fs.ModeSymlink | 0o777, false},
		{"lib/apk/db/installed", fs.ModeDir | 0o755, false},
		{"lib/apk/db/lock", 0o600, false},
		{"lib/apk/db/triggers", 0o644, false},
		{"/lib/apk/db/installed", 0o644, false},
		{"usr/lib/apk/db/installed", 0o644, false},
	}
	e := New()
	for _, tt := range tests {
		if got := e.Required(tt.path, tt.mode, 1000); got != tt.want {
			t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
		}
	}
}

func TestExtractFixture(t *testing.T) {
	got, err := New().Extract(context.Background(), fileFrom(readFixture(t), alpine319))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	want := []model.Package{
		pkg("musl", "1.2.4_git20230717-r4", "musl"),
		pkg("busybox", "1.36.1-r15", "busybox"),
		pkg("alpine-baselayout", "3.4.3-r2", "alpine-baselayout"),
		pkg("zlib", "1.3.1-r0", "zlib"),
		pkg("libcrypto3", "3.1.4-r5", "openssl"),
		pkg("libssl3", "3.1.4-r5", "openssl"),
		pkg("ca-certificates-bundle", "20230506-r0", "ca-certificates"),
		pkg("apk-tools", "2.14.0-r5", "apk-tools"),
		pkg("ssl_client", "1.36.1-r15", "busybox"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract mismatch (-want +got):\n%s", diff)
	}
}

func TestExtractOS(t *testing.T) {
	input := []byte("P:libcrypto3\nV:3.1.4-r5\nA:aarch64\no:openssl\n")
	tests := []struct {
		name string
		os   *extract.OS
		want model.Package
	}{
		{
			name: "no OS detected",
			want: model.Package{
				Name: "libcrypto3", Version: "3.1.4-r5", Ecosystem: "Alpine",
				SourceName: "openssl", SourceVersion: "3.1.4-r5",
				PURL: "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=aarch64",
				Path: installedPath, Extractor: Name,
			},
		},
		{
			name: "wolfi",
			os:   &extract.OS{ID: "wolfi", VersionID: "20230201", PrettyName: "Wolfi"},
			want: model.Package{
				Name: "libcrypto3", Version: "3.1.4-r5", Ecosystem: "Wolfi",
				SourceName: "openssl", SourceVersion: "3.1.4-r5",
				PURL: "pkg:apk/wolfi/libcrypto3@3.1.4-r5?arch=aarch64&distro=wolfi-20230201",
				Path: installedPath, Extractor: Name,
			},
		},
		{
			name: "chainguard",
			os:   &extract.OS{ID: "chainguard", VersionID: "20230214"},
			want: model.Package{
				Name: "libcrypto3", Version: "3.1.4-r5", Ecosystem: "Chainguard",
				SourceName: "openssl", SourceVersion: "3.1.4-r5",
				PURL: "pkg:apk/chainguard/libcrypto3@3.1.4-r5?arch=aarch64&distro=chainguard-20230214",
				Path: installedPath, Extractor: Name,
			},
		},
		{
			name: "alpine without a release",
			os:   &extract.OS{ID: "alpine"},
			want: model.Package{
				Name: "libcrypto3", Version: "3.1.4-r5", Ecosystem: "Alpine",
				SourceName: "openssl", SourceVersion: "3.1.4-r5",
				PURL: "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=aarch64",
				Path: installedPath, Extractor: Name,
			},
		},
		{
			name: "a distribution apk does not serve",
			os:   &extract.OS{ID: "debian", VersionID: "12"},
			want: model.Package{
				Name: "libcrypto3", Version: "3.1.4-r5", Ecosystem: "Alpine",
				SourceName: "openssl", SourceVersion: "3.1.4-r5",
				PURL: "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=aarch64",
				Path: installedPath, Extractor: Name,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Extract(context.Background(), fileFrom(input, tt.os))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if diff := cmp.Diff([]model.Package{tt.want}, got); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractFormat(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []model.Package
	}{
		{
			name:  "no origin: the package is its own source",
			input: "P:musl\nV:1.2.4_git20230717-r4\nA:x86_64\n",
			want:  []model.Package{pkg("musl", "1.2.4_git20230717-r4", "musl")},
		},
		{
			name:  "no trailing blank line",
			input: "P:a\nV:1-r0\nA:x86_64\n\nP:b\nV:2-r0\nA:x86_64",
			want:  []model.Package{pkg("a", "1-r0", "a"), pkg("b", "2-r0", "b")},
		},
		{
			name:  "CRLF line ends and extra blank lines",
			input: "\r\n\r\nP:a\r\nV:1-r0\r\nA:x86_64\r\n\r\n\r\nP:b\r\nV:2-r0\r\nA:x86_64\r\n\r\n",
			want:  []model.Package{pkg("a", "1-r0", "a"), pkg("b", "2-r0", "b")},
		},
		{
			name:  "unknown fields are skipped",
			input: "C:Q1abc=\nP:a\nV:1-r0\nA:x86_64\nX:future field\nR:file\nZ:Q1def=\n",
			want:  []model.Package{pkg("a", "1-r0", "a")},
		},
		{
			name:  "empty file",
			input: "",
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Extract(context.Background(), fileFrom([]byte(tt.input), alpine319))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractHostile(t *testing.T) {
	good := "P:good\nV:1.0-r0\nA:x86_64\n"
	goodPkg := pkg("good", "1.0-r0", "good")
	tests := []struct {
		name     string
		input    string
		want     []model.Package
		wantMsgs []string
	}{
		{
			name:     "binary junk",
			input:    "\x7fELF\x02\x01\x01\x00\x00\n\xff:\xfe\n\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"lib/apk/db/installed: malformed apk database: line 1: not a field", "line 2: package has no P: (name) field"},
		},
		{
			name:     "10 MB single line",
			input:    strings.Repeat("A", 10<<20),
			wantMsgs: []string{"line 1: line longer than 1048576 bytes"},
		},
		{
			name:     "10 MB line inside an entry",
			input:    "P:big\nV:1-r0\nA:x86_64\nT:" + strings.Repeat("A", 10<<20) + "\n\n" + good,
			want:     []model.Package{pkg("big", "1-r0", "big"), goodPkg},
			wantMsgs: []string{"line 4: line longer than"},
		},
		{
			name:     "missing name",
			input:    "V:1-r0\nA:x86_64\n\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 1: package has no P: (name) field"},
		},
		{
			name:     "missing version",
			input:    good + "\nP:nover\nA:x86_64\n",
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 5: package nover has no V: (version) field"},
		},
		{
			name:     "invalid values",
			input:    "P:../../etc\nV:1-r0\n\nP:x\nV:1 2\n\nP:y\nV:1-r0\nA:x86_64&distro=evil\no:$(id)\n\n" + good,
			want:     []model.Package{{Name: "y", Version: "1-r0", Ecosystem: "Alpine:v3.19", SourceName: "y", SourceVersion: "1-r0", PURL: "pkg:apk/alpine/y@1-r0?distro=alpine-3.19.1", Path: installedPath, Extractor: Name}, goodPkg},
			wantMsgs: []string{`line 1: invalid package name "../../etc"`, `line 4: package x has an invalid version "1 2"`, "line 7: package y has an invalid architecture", `line 7: package y has an invalid origin "$(id)"`},
		},
		{
			name:     "two packages without a blank line",
			input:    "P:a\nV:1-r0\nA:x86_64\nP:b\nV:2-r0\n",
			want:     []model.Package{pkg("a", "1-r0", "a")},
			wantMsgs: []string{"line 4: duplicate P: field", "line 5: duplicate V: field"},
		},
		{
			name:     "many problems are summarised",
			input:    strings.Repeat("junk\n", 1000) + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 10: not a field", "and 990 more"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Extract(context.Background(), fileFrom([]byte(tt.input), alpine319))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Extract error = %v, want ErrMalformed", err)
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("Extract error = %q, want it to contain %q", err, m)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractTooLarge(t *testing.T) {
	f := &extract.File{Path: installedPath, Size: MaxFileSize + 1, Content: bytes.NewReader(nil)}
	_, err := New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) || !strings.Contains(err.Error(), installedPath) {
		t.Errorf("Extract error = %v, want ErrTooLarge naming the file", err)
	}
}

// failAfter serves n bytes of b and fails after them.
type failAfter struct {
	b []byte
	n int64
}

func (r failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.n {
		return 0, errors.New("layer blob truncated")
	}
	end := min(off+int64(len(p)), r.n)
	return copy(p, r.b[off:end]), nil
}

func TestExtractReadError(t *testing.T) {
	b := []byte(strings.Repeat("P:a\nV:1-r0\nA:x86_64\n\n", 10000))
	f := &extract.File{Path: installedPath, Size: int64(len(b)), Content: failAfter{b: b, n: 100 << 10}, OS: alpine319}
	got, err := New().Extract(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "layer blob truncated") || !strings.Contains(err.Error(), installedPath) {
		t.Errorf("Extract error = %v, want the read error naming the file", err)
	}
	if len(got) == 0 {
		t.Errorf("Extract returned no packages, want those read before the error")
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := New().Extract(ctx, fileFrom(readFixture(t), alpine319))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract error = %v, want context.Canceled", err)
	}
	if got != nil {
		t.Errorf("Extract = %d packages, want none", len(got))
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte("P:a\r\nV:1-r0\r\no:b\r\n\r\nP:\nV:\n:\nP:c\nP:d\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := New().Extract(context.Background(), fileFrom(b, alpine319))
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Extract error %v does not wrap ErrMalformed", err)
		}
		for _, p := range pkgs {
			if !validName(p.Name) || !validVersion(p.Version) || !validName(p.SourceName) || p.SourceVersion != p.Version {
				t.Errorf("Extract returned invalid package %+v", p)
			}
			if !strings.HasPrefix(p.PURL, "pkg:apk/alpine/") {
				t.Errorf("Extract returned PURL %q", p.PURL)
			}
		}
	})
}
