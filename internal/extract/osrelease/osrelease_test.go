package osrelease

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

func TestParseRealFiles(t *testing.T) {
	tests := []struct {
		file          string
		want          *extract.OS
		wantEcosystem string
	}{
		{
			file:          "debian-12",
			want:          &extract.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
			wantEcosystem: "Debian:12",
		},
		{
			file:          "distroless-debian-12",
			want:          &extract.OS{ID: "debian", VersionID: "12", PrettyName: "Distroless"},
			wantEcosystem: "Debian:12",
		},
		{
			file:          "ubuntu-22.04",
			want:          &extract.OS{ID: "ubuntu", VersionID: "22.04", PrettyName: "Ubuntu 22.04.3 LTS"},
			wantEcosystem: "Ubuntu:22.04:LTS",
		},
		{
			file:          "alpine-3.19",
			want:          &extract.OS{ID: "alpine", VersionID: "3.19.1", PrettyName: "Alpine Linux v3.19"},
			wantEcosystem: "Alpine:v3.19",
		},
		{
			file:          "rocky-9",
			want:          &extract.OS{ID: "rocky", VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)"},
			wantEcosystem: "Rocky Linux:9",
		},
		{
			file:          "opensuse-leap-15.5",
			want:          &extract.OS{ID: "opensuse-leap", VersionID: "15.5", PrettyName: "openSUSE Leap 15.5"},
			wantEcosystem: "openSUSE:Leap 15.5",
		},
		{
			file:          "sles-15-sp5",
			want:          &extract.OS{ID: "sles", VersionID: "15.5", PrettyName: "SUSE Linux Enterprise Server 15 SP5"},
			wantEcosystem: "SUSE:Linux Enterprise Server 15 SP5",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := Parse(f)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
			if eco := got.Ecosystem(); eco != tt.wantEcosystem {
				t.Errorf("Ecosystem() = %q, want %q", eco, tt.wantEcosystem)
			}
		})
	}
}

func TestParseSyntax(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  *extract.OS
	}{
		{
			name:  "unquoted",
			input: "ID=debian\nVERSION_ID=12\n",
			want:  &extract.OS{ID: "debian", VersionID: "12"},
		},
		{
			name:  "single quotes are literal",
			input: `PRETTY_NAME='a "b" \n $c'`,
			want:  &extract.OS{PrettyName: `a "b" \n $c`},
		},
		{
			name:  "double quotes escape only shell specials",
			input: `PRETTY_NAME="q\" d\$ b\` + "`" + ` s\\ n\n"`,
			want:  &extract.OS{PrettyName: `q" d$ b` + "`" + ` s\ n\n`},
		},
		{
			name:  "backslash outside quotes escapes anything",
			input: `PRETTY_NAME=My\ OS\"`,
			want:  &extract.OS{PrettyName: `My OS"`},
		},
		{
			name:  "adjacent parts concatenate",
			input: `PRETTY_NAME="Foo "'Bar'\ Baz`,
			want:  &extract.OS{PrettyName: "Foo Bar Baz"},
		},
		{
			name:  "empty values",
			input: "ID=\nVERSION_ID=\"\"\nPRETTY_NAME=''\n",
			want:  &extract.OS{},
		},
		{
			name:  "comments blank lines and indentation",
			input: "# comment\n\n   \n  ID=alpine  \n\t# ID=debian\n",
			want:  &extract.OS{ID: "alpine"},
		},
		{
			name:  "CRLF line ends",
			input: "ID=ubuntu\r\nVERSION_ID=\"22.04\"\r\n",
			want:  &extract.OS{ID: "ubuntu", VersionID: "22.04"},
		},
		{
			name:  "last assignment wins",
			input: "ID=debian\nID=ubuntu\n",
			want:  &extract.OS{ID: "ubuntu"},
		},
		{
			name:  "no trailing newline",
			input: "ID=wolfi",
			want:  &extract.OS{ID: "wolfi"},
		},
		{
			name:  "equals sign in value",
			input: "PRETTY_NAME=\"a=b\"\n",
			want:  &extract.OS{PrettyName: "a=b"},
		},
		{
			name:  "UTF-8 text",
			input: "PRETTY_NAME=\"Débian ✓\"\n",
			want:  &extract.OS{PrettyName: "Débian ✓"},
		},
		{
			name:  "empty input",
			input: "",
			want:  &extract.OS{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHostile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    *extract.OS
		wantErr error
		// wantMsg is a substring the error must contain.
		wantMsg string
	}{
		{
			name:    "larger than MaxSize",
			input:   "ID=debian\n" + strings.Repeat("#", MaxSize),
			wantErr: extract.ErrTooLarge,
		},
		{
			name:    "one line larger than MaxSize",
			input:   "PRETTY_NAME=" + strings.Repeat("A", 10<<20),
			wantErr: extract.ErrTooLarge,
		},
		{
			name:    "bad line keeps the rest",
			input:   "ID=debian\nthis is not an assignment\nVERSION_ID=12\n",
			want:    &extract.OS{ID: "debian", VersionID: "12"},
			wantErr: ErrSyntax,
			wantMsg: "line 2: not a KEY=value assignment",
		},
		{
			name:    "unterminated double quote",
			input:   "ID=debian\nPRETTY_NAME=\"Debian\n",
			want:    &extract.OS{ID: "debian"},
			wantErr: ErrSyntax,
			wantMsg: "line 2: PRETTY_NAME: unterminated double quote",
		},
		{
			name:    "unterminated single quote",
			input:   "ID='debian",
			want:    &extract.OS{},
			wantErr: ErrSyntax,
			wantMsg: "unterminated single quote",
		},
		{
			name:    "trailing backslash",
			input:   `ID=debian\`,
			want:    &extract.OS{},
			wantErr: ErrSyntax,
			wantMsg: "trailing backslash",
		},
		{
			name:    "invalid variable name",
			input:   "export ID=debian\n1ID=x\n",
			want:    &extract.OS{},
			wantErr: ErrSyntax,
			wantMsg: `line 1: invalid variable name "export ID"`,
		},
		{
			name:    "NUL in value",
			input:   "ID=deb\x00ian\nVERSION_ID=12\n",
			want:    &extract.OS{VersionID: "12"},
			wantErr: ErrSyntax,
			wantMsg: "line 1: ID: value is not UTF-8 text without control characters",
		},
		{
			name:    "terminal escape in value",
			input:   "PRETTY_NAME=\"\x1b[2Jowned\"\n",
			want:    &extract.OS{},
			wantErr: ErrSyntax,
		},
		{
			name:    "invalid UTF-8",
			input:   "PRETTY_NAME=\"\xff\xfe\"\n",
			want:    &extract.OS{},
			wantErr: ErrSyntax,
		},
		{
			name:    "binary junk",
			input:   strings.Repeat("\x7fELF\x02\x01\x01\x00\n\x00\x00=\x03\x00>\n", 50),
			want:    &extract.OS{},
			wantErr: ErrSyntax,
			wantMsg: "and 95 more bad lines",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.input))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	got, err := Parse(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Parse error = %v, want the read error", err)
	}
	if got != nil {
		t.Errorf("Parse = %+v, want nil", got)
	}
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    *extract.OS
		wantErr error
		wantMsg string
	}{
		{
			name: "etc/os-release wins",
			fsys: fstest.MapFS{
				"etc/os-release":     file("ID=debian\nVERSION_ID=12\n"),
				"usr/lib/os-release": file("ID=ubuntu\n"),
			},
			want: &extract.OS{ID: "debian", VersionID: "12"},
		},
		{
			name: "usr/lib/os-release is the fallback",
			fsys: fstest.MapFS{
				"usr/lib/os-release": file("ID=debian\nVERSION_ID=12\n"),
			},
			want: &extract.OS{ID: "debian", VersionID: "12"},
		},
		{
			name: "alpine without VERSION_ID reads alpine-release",
			fsys: fstest.MapFS{
				"etc/os-release":     file("NAME=\"Alpine Linux\"\nID=alpine\nPRETTY_NAME=\"Alpine Linux\"\n"),
				"etc/alpine-release": file("3.19.1\n"),
			},
			want: &extract.OS{ID: "alpine", VersionID: "3.19.1", PrettyName: "Alpine Linux"},
		},
		{
			name: "alpine VERSION_ID is not overridden",
			fsys: fstest.MapFS{
				"etc/os-release":     file("ID=alpine\nVERSION_ID=3.19.1\n"),
				"etc/alpine-release": file("3.18.0\n"),
			},
			want: &extract.OS{ID: "alpine", VersionID: "3.19.1"},
		},
		{
			name: "alpine-release alone",
			fsys: fstest.MapFS{
				"etc/alpine-release": file("3.19.1\n"),
			},
			want: &extract.OS{ID: "alpine", VersionID: "3.19.1", PrettyName: "Alpine Linux"},
		},
		{
			name: "nothing (scratch image)",
			fsys: fstest.MapFS{"app/server": file("\x7fELF")},
			want: nil,
		},
		{
			name: "malformed alpine-release",
			fsys: fstest.MapFS{
				"etc/os-release":     file("ID=alpine\n"),
				"etc/alpine-release": file("3.19\x00; rm -rf /\n"),
			},
			want:    &extract.OS{ID: "alpine"},
			wantErr: ErrSyntax,
			wantMsg: "etc/alpine-release",
		},
		{
			name: "huge alpine-release",
			fsys: fstest.MapFS{
				"etc/alpine-release": file(strings.Repeat("3", 10<<10)),
			},
			wantErr: extract.ErrTooLarge,
		},
		{
			name: "malformed os-release names the file and keeps the rest",
			fsys: fstest.MapFS{
				"etc/os-release": file("ID=debian\nVERSION_ID=\"12\n"),
			},
			want:    &extract.OS{ID: "debian"},
			wantErr: ErrSyntax,
			wantMsg: "etc/os-release: os-release syntax error: line 2",
		},
		{
			name: "huge etc/os-release is not skipped for usr/lib",
			fsys: fstest.MapFS{
				"etc/os-release":     file(strings.Repeat("#", MaxSize+1)),
				"usr/lib/os-release": file("ID=debian\n"),
			},
			wantErr: extract.ErrTooLarge,
			wantMsg: "etc/os-release",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(tt.fsys)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Detect error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Detect error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Detect mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`PRETTY_NAME="a\"b"'c'\ d`))
	f.Add([]byte("ID='x\nVERSION_ID=\"\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Parse(strings.NewReader(string(b)))
		if errors.Is(err, extract.ErrTooLarge) {
			return
		}
		if got == nil {
			t.Fatalf("Parse returned nil OS with error %v", err)
		}
		for _, v := range []string{got.ID, got.VersionID, got.PrettyName} {
			if !valid(v) {
				t.Errorf("Parse returned value %q with control characters or invalid UTF-8", v)
			}
		}
		_ = got.Ecosystem()
	})
}

// brokenLinkFS fails to open one path the way a layer filesystem does for
// a symlink that leaves the root.
type brokenLinkFS struct {
	fstest.MapFS
	broken string
}

func (b brokenLinkFS) Open(name string) (fs.File, error) {
	if name == b.broken {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("symlink escapes root")}
	}
	return b.MapFS.Open(name)
}

func TestDetectUnopenableEtc(t *testing.T) {
	fsys := brokenLinkFS{
		MapFS:  fstest.MapFS{"usr/lib/os-release": file("ID=debian\nVERSION_ID=12\n")},
		broken: "etc/os-release",
	}
	got, err := Detect(fsys)
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if diff := cmp.Diff(&extract.OS{ID: "debian", VersionID: "12"}, got); diff != "" {
		t.Errorf("Detect mismatch (-want +got):\n%s", diff)
	}

	fsys.MapFS = fstest.MapFS{}
	if _, err := Detect(fsys); err == nil || !strings.Contains(err.Error(), "symlink escapes root") {
		t.Errorf("Detect error = %v, want the open error", err)
	}
}
