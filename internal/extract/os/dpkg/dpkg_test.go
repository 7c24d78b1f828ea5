package dpkg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var (
	debian12   = &extract.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}
	distroless = &extract.OS{ID: "debian", VersionID: "12", PrettyName: "Distroless"}
	ubuntu2204 = &extract.OS{ID: "ubuntu", VersionID: "22.04", PrettyName: "Ubuntu 22.04.3 LTS"}
)

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{"var/lib/dpkg/status", 0o644, true},
		{"var/lib/dpkg/status.d/libc6", 0o644, true},
		{"var/lib/dpkg/status.d/base-files", 0o644, true},
		{"var/lib/dpkg/status.d/libc6.md5sums", 0o644, false},
		{"var/lib/dpkg/status.d/", fs.ModeDir | 0o755, false},
		{"var/lib/dpkg/status.d/sub/libc6", 0o644, false},
		{"var/lib/dpkg/status", fs.ModeSymlink | 0o777, false},
		{"var/lib/dpkg/status.d/libc6", fs.ModeSymlink | 0o777, false},
		{"var/lib/dpkg/status-old", 0o644, false},
		{"var/lib/dpkg/available", 0o644, false},
		{"/var/lib/dpkg/status", 0o644, false},
		{"usr/var/lib/dpkg/status", 0o644, false},
		{"var/lib/dpkg/statusd/libc6", 0o644, false},
	}
	e := New()
	for _, tt := range tests {
		if got := e.Required(tt.path, tt.mode, 1000); got != tt.want {
			t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
		}
	}
}

func TestExtractRealStatus(t *testing.T) {
	pkgs, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/dpkg/status", extracttest.Fixture(t, "status"), debian12))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if len(pkgs) != 134 {
		t.Errorf("Extract found %d packages, want 134", len(pkgs))
	}
	byName := make(map[string]model.Package)
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	want := []model.Package{
		{
			Name: "libc6", Version: "2.36-9+deb12u7", Ecosystem: "Debian:12",
			SourceName: "glibc", SourceVersion: "2.36-9+deb12u7",
			PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12",
			Path: "var/lib/dpkg/status", Extractor: Name,
		},
		{
			Name: "libssl3", Version: "3.0.17-1~deb12u2", Ecosystem: "Debian:12",
			SourceName: "openssl", SourceVersion: "3.0.17-1~deb12u2",
			PURL: "pkg:deb/debian/libssl3@3.0.17-1~deb12u2?arch=amd64&distro=debian-12",
			Path: "var/lib/dpkg/status", Extractor: Name,
		},
		{
			Name: "curl", Version: "7.88.1-10+deb12u5", Ecosystem: "Debian:12",
			SourceName: "curl", SourceVersion: "7.88.1-10+deb12u5",
			PURL: "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12",
			Path: "var/lib/dpkg/status", Extractor: Name,
		},
		{
			// "Source: name (version)": the source version differs.
			Name: "libcap2", Version: "1:2.66-4+deb12u3+b1", Ecosystem: "Debian:12",
			SourceName: "libcap2", SourceVersion: "1:2.66-4+deb12u3",
			PURL: "pkg:deb/debian/libcap2@1:2.66-4%2Bdeb12u3%2Bb1?arch=amd64&distro=debian-12",
			Path: "var/lib/dpkg/status", Extractor: Name,
		},
		{
			Name: "base-files", Version: "12.4+deb12u15", Ecosystem: "Debian:12",
			SourceName: "base-files", SourceVersion: "12.4+deb12u15",
			PURL: "pkg:deb/debian/base-files@12.4%2Bdeb12u15?arch=amd64&distro=debian-12",
			Path: "var/lib/dpkg/status", Extractor: Name,
		},
	}
	for _, w := range want {
		if diff := cmp.Diff(w, byName[w.Name]); diff != "" {
			t.Errorf("package %s mismatch (-want +got):\n%s", w.Name, diff)
		}
	}
}

func TestExtractGolden(t *testing.T) {
	pkgs, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/dpkg/status", extracttest.Fixture(t, "status"), debian12))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	golden := filepath.Join("testdata", "status.golden.json")
	if *update {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(pkgs); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want []model.Package
	if err := json.Unmarshal(extracttest.Fixture(t, "status.golden.json"), &want); err != nil {
		t.Fatalf("reading %s: %v", golden, err)
	}
	if diff := cmp.Diff(want, pkgs); diff != "" {
		t.Errorf("Extract mismatch with %s (-want +got):\n%s", golden, diff)
	}
}

func TestExtractStatusD(t *testing.T) {
	tests := []struct {
		file string
		os   *extract.OS
		want []model.Package
	}{
		{
			file: "status.d/libc6",
			os:   distroless,
			want: []model.Package{{
				Name: "libc6", Version: "2.36-9+deb12u7", Ecosystem: "Debian:12",
				SourceName: "glibc", SourceVersion: "2.36-9+deb12u7",
				PURL: "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12",
				Path: "var/lib/dpkg/status.d/libc6", Extractor: Name,
			}},
		},
		{
			file: "status.d/base-files",
			os:   nil,
			want: []model.Package{{
				Name: "base-files", Version: "12.4+deb12u15", Ecosystem: "Debian",
				SourceName: "base-files", SourceVersion: "12.4+deb12u15",
				PURL: "pkg:deb/debian/base-files@12.4%2Bdeb12u15?arch=amd64",
				Path: "var/lib/dpkg/status.d/base-files", Extractor: Name,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := "var/lib/dpkg/" + tt.file
			if !New().Required(path, 0o644, 1) {
				t.Fatalf("Required(%q) = false", path)
			}
			got, err := New().Extract(context.Background(), extracttest.FileOn(path, extracttest.Fixture(t, tt.file), tt.os))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// pkg is the package Extract reports for a stanza from a Debian 12 root.
func pkg(name, version, srcName, srcVersion, purl string) model.Package {
	return model.Package{
		Name: name, Version: version, Ecosystem: "Debian:12",
		SourceName: srcName, SourceVersion: srcVersion, PURL: purl,
		Path: "var/lib/dpkg/status", Extractor: Name,
	}
}

func TestExtractStanzas(t *testing.T) {
	tests := []struct {
		name  string
		input string
		os    *extract.OS
		want  []model.Package
	}{
		{
			name:  "source with its own version",
			input: "Package: bash\nStatus: install ok installed\nArchitecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b2\n",
			want:  []model.Package{pkg("bash", "5.2.15-2+b2", "bash", "5.2.15-2", "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12")},
		},
		{
			name:  "source without version takes the binary version",
			input: "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.17-1~deb12u2\n",
			want:  []model.Package{pkg("libssl3", "3.0.17-1~deb12u2", "openssl", "3.0.17-1~deb12u2", "pkg:deb/debian/libssl3@3.0.17-1~deb12u2?arch=amd64&distro=debian-12")},
		},
		{
			name:  "no architecture",
			input: "Package: foo\nVersion: 1.0\n",
			want:  []model.Package{pkg("foo", "1.0", "foo", "1.0", "pkg:deb/debian/foo@1.0?distro=debian-12")},
		},
		{
			name: "only packages with files on disk",
			input: "Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n" +
				"Package: purged\nStatus: purge ok not-installed\n\n" +
				"Package: held\nStatus: hold ok installed\nVersion: 2.0\n\n" +
				"Package: removing\nStatus: deinstall ok installed\nVersion: 3.0\n\n" +
				"Package: broken\nStatus: install reinstreq half-installed\nVersion: 4.0\n\n" +
				"Package: pending\nStatus: install ok triggers-pending\nVersion: 5.0\n",
			want: []model.Package{
				pkg("held", "2.0", "held", "2.0", "pkg:deb/debian/held@2.0?distro=debian-12"),
				pkg("removing", "3.0", "removing", "3.0", "pkg:deb/debian/removing@3.0?distro=debian-12"),
				pkg("broken", "4.0", "broken", "4.0", "pkg:deb/debian/broken@4.0?distro=debian-12"),
				pkg("pending", "5.0", "pending", "5.0", "pkg:deb/debian/pending@5.0?distro=debian-12"),
			},
		},
		{
			name: "continuation lines, comments, extra blank lines, case-insensitive names",
			input: "\n\n# written by hand\nPACKAGE: a\nversion: 1\nDescription: x\n Version: 9\n .\n\tPackage: evil\n\n\n\n" +
				"Package: b\nVersion: 2\n \n",
			want: []model.Package{
				pkg("a", "1", "a", "1", "pkg:deb/debian/a@1?distro=debian-12"),
				pkg("b", "2", "b", "2", "pkg:deb/debian/b@2?distro=debian-12"),
			},
		},
		{
			name:  "CRLF line ends",
			input: "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\nPackage: b\r\nVersion: 2\r\n",
			want: []model.Package{
				pkg("a", "1", "a", "1", "pkg:deb/debian/a@1?distro=debian-12"),
				pkg("b", "2", "b", "2", "pkg:deb/debian/b@2?distro=debian-12"),
			},
		},
		{
			name:  "ubuntu root",
			input: "Package: libc6\nArchitecture: arm64\nSource: glibc\nVersion: 2.35-0ubuntu3.6\n",
			os:    ubuntu2204,
			want: []model.Package{{
				Name: "libc6", Version: "2.35-0ubuntu3.6", Ecosystem: "Ubuntu:22.04:LTS",
				SourceName: "glibc", SourceVersion: "2.35-0ubuntu3.6",
				PURL: "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.6?arch=arm64&distro=ubuntu-22.04",
				Path: "var/lib/dpkg/status", Extractor: Name,
			}},
		},
		{
			name:  "debian without VERSION_ID (sid)",
			input: "Package: libc6\nVersion: 2.40-1\n",
			os:    &extract.OS{ID: "debian", PrettyName: "Debian GNU/Linux trixie/sid"},
			want: []model.Package{{
				Name: "libc6", Version: "2.40-1", Ecosystem: "Debian",
				SourceName: "libc6", SourceVersion: "2.40-1",
				PURL: "pkg:deb/debian/libc6@2.40-1",
				Path: "var/lib/dpkg/status", Extractor: Name,
			}},
		},
		{
			name:  "not a debian-like root",
			input: "Package: libc6\nVersion: 2.40-1\n",
			os:    &extract.OS{ID: "alpine", VersionID: "3.19.1"},
			want: []model.Package{{
				Name: "libc6", Version: "2.40-1", Ecosystem: "Debian",
				SourceName: "libc6", SourceVersion: "2.40-1",
				PURL: "pkg:deb/debian/libc6@2.40-1",
				Path: "var/lib/dpkg/status", Extractor: Name,
			}},
		},
		{
			name:  "empty file",
			input: "",
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.os
			if o == nil {
				o = debian12
			}
			got, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/dpkg/status", []byte(tt.input), o))
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
	good := "Package: good\nVersion: 1.0\n"
	goodPkg := pkg("good", "1.0", "good", "1.0", "pkg:deb/debian/good@1.0?distro=debian-12")
	tests := []struct {
		name  string
		input string
		want  []model.Package
		// wantMsgs are substrings the error must contain; no error is
		// expected when empty.
		wantMsgs []string
	}{
		{
			name:     "binary junk",
			input:    "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x01\n\xff\xfe\xfd: \x00\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"var/lib/dpkg/status: malformed dpkg database: line 1: not a field", "line 2: not a field"},
		},
		{
			name:     "10 MB single line",
			input:    strings.Repeat("A", 10<<20),
			wantMsgs: []string{"line 1: line longer than 1048576 bytes"},
		},
		{
			name:     "10 MB line inside a stanza",
			input:    "Package: big\nDescription: " + strings.Repeat("A", 10<<20) + "\nVersion: 1\n\n" + good,
			want:     []model.Package{pkg("big", "1", "big", "1", "pkg:deb/debian/big@1?distro=debian-12"), goodPkg},
			wantMsgs: []string{"line 2: line longer than"},
		},
		{
			name:     "missing Package field",
			input:    "Status: install ok installed\nVersion: 1.0\n\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 1: stanza has no Package field"},
		},
		{
			name:     "missing Version field",
			input:    good + "\nPackage: nover\nStatus: install ok installed\n",
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 4: package nover has no Version field"},
		},
		{
			name:     "invalid names and versions",
			input:    "Package: ../../etc\nVersion: 1\n\nPackage: x\nVersion: 1 2\n\nPackage: y\nVersion: \x1b[31m\n\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{`line 1: invalid Package "../../etc"`, `line 4: package x has an invalid Version "1 2"`, "line 7: package y has an invalid Version"},
		},
		{
			name:     "duplicate fields keep the first",
			input:    "Package: a\nVersion: 1\nVersion: 2\nPackage: b\n",
			want:     []model.Package{pkg("a", "1", "a", "1", "pkg:deb/debian/a@1?distro=debian-12")},
			wantMsgs: []string{"line 3: duplicate Version field", "line 4: duplicate Package field"},
		},
		{
			name:     "bad Status",
			input:    "Package: a\nVersion: 1\nStatus: installed\n\nPackage: b\nVersion: 1\nStatus: install ok exploded\n\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{`line 1: Status "installed" is not "want flag state"`, `line 5: Status "install ok exploded" has an unknown state`},
		},
		{
			name:     "bad Source keeps the package",
			input:    "Package: a\nVersion: 1\nSource: src (1\n\nPackage: b\nVersion: 1\nSource: $(id)\n",
			want:     []model.Package{pkg("a", "1", "src", "1", "pkg:deb/debian/a@1?distro=debian-12"), pkg("b", "1", "b", "1", "pkg:deb/debian/b@1?distro=debian-12")},
			wantMsgs: []string{`line 1: package a: invalid Source version in "src (1"`, `line 5: package b: invalid Source "$(id)"`},
		},
		{
			name:     "bad Architecture is dropped",
			input:    "Package: a\nVersion: 1\nArchitecture: amd64&distro=evil\n",
			want:     []model.Package{pkg("a", "1", "a", "1", "pkg:deb/debian/a@1?distro=debian-12")},
			wantMsgs: []string{"line 1: package a has an invalid Architecture"},
		},
		{
			name:     "continuation line before any field",
			input:    " orphan\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 1: continuation line outside a field"},
		},
		{
			name:     "oversized stanza",
			input:    "Package: huge\nVersion: 1\nConffiles:\n" + strings.Repeat(" /etc/x 0123456789abcdef0123456789abcdef\n", MaxStanzaSize/40) + "\n" + good,
			want:     []model.Package{goodPkg},
			wantMsgs: []string{"line 1: stanza longer than 4194304 bytes"},
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
			got, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/dpkg/status", []byte(tt.input), debian12))
			if len(tt.wantMsgs) == 0 && err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(tt.wantMsgs) > 0 {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Extract error = %v, want ErrMalformed", err)
				}
				for _, m := range tt.wantMsgs {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("Extract error = %q, want it to contain %q", err, m)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractTooLarge(t *testing.T) {
	f := &extract.File{Path: "var/lib/dpkg/status", Size: MaxFileSize + 1, Content: bytes.NewReader(nil)}
	_, err := New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) || !strings.Contains(err.Error(), "var/lib/dpkg/status") {
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
	b := extracttest.Fixture(t, "status")
	f := &extract.File{Path: "var/lib/dpkg/status", Size: int64(len(b)), Content: failAfter{b: b, n: 64 << 10}, OS: debian12}
	got, err := New().Extract(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "layer blob truncated") || !strings.Contains(err.Error(), "var/lib/dpkg/status") {
		t.Errorf("Extract error = %v, want the read error naming the file", err)
	}
	if len(got) == 0 {
		t.Errorf("Extract returned no packages, want those read before the error")
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := New().Extract(ctx, extracttest.FileOn("var/lib/dpkg/status", extracttest.Fixture(t, "status"), debian12))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract error = %v, want context.Canceled", err)
	}
	if got != nil {
		t.Errorf("Extract = %d packages, want none", len(got))
	}
}

func BenchmarkExtract(b *testing.B) {
	data := extracttest.Fixture(b, "status")
	e := New()
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(ctx, extracttest.FileOn("var/lib/dpkg/status", data, debian12)); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzExtract(f *testing.F) {
	// A few real stanzas rather than the whole file: the fuzzer works and
	// minimises far faster on small inputs.
	status := extracttest.Fixture(f, "status")
	stanzas := bytes.SplitAfterN(status, []byte("\n\n"), 4)
	f.Add(bytes.Join(stanzas[:3], nil))
	f.Add(extracttest.Fixture(f, "status.d/libc6"))
	f.Add([]byte("Package: a\r\nVersion: 1\r\nSource: b (2)\r\n\r\n \n#\nStatus: x y z\n"))
	f.Add([]byte("Package: a\nVersion: 1\nVersion: 2\n\tcont\n:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/dpkg/status", b, debian12))
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Extract error %v does not wrap ErrMalformed", err)
		}
		for _, p := range pkgs {
			if !validName(p.Name) || !validVersion(p.Version) || !validName(p.SourceName) || !validVersion(p.SourceVersion) {
				t.Errorf("Extract returned invalid package %+v", p)
			}
			if !strings.HasPrefix(p.PURL, "pkg:deb/debian/") {
				t.Errorf("Extract returned PURL %q", p.PURL)
			}
		}
	})
}
