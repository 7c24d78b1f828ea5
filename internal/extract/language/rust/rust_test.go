package rust_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/binary"
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
	"github.com/bulwarkhq/bulwark/internal/extract/language/rust"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

var _ extract.Extractor = rust.New()

const binaryFixture = "testdata/auditable/hello-auditable"

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		size int64
		want bool
	}{
		{path: "app/Cargo.lock", mode: 0o644, size: 100, want: true},
		{path: "Cargo.lock", mode: 0o644, size: 100, want: true},
		{path: "app/Cargo.lock", mode: 0o644, size: 1 << 30, want: true},
		{path: "usr/local/bin/rg", mode: 0o755, size: 4 << 20, want: true},
		{path: "opt/tool", mode: 0o700, size: 100, want: true},
		{path: "usr/local/bin/rg", mode: 0o755, size: 512<<20 + 1, want: false},
		{path: "usr/local/bin/empty", mode: 0o755, size: 0, want: false},
		{path: "usr/lib/libfoo.so", mode: 0o644, size: 100, want: false},
		{path: "app/Cargo.toml", mode: 0o644, size: 100, want: false},
		{path: "app/Cargo.lock.orig", mode: 0o644, size: 100, want: false},
		{path: "root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/ripgrep-14.1.0/Cargo.lock", mode: 0o644, size: 100, want: false},
		{path: ".cargo/git/checkouts/x-1234/abcdef/Cargo.lock", mode: 0o644, size: 100, want: false},
		{path: "app/Cargo.lock", mode: fs.ModeDir | 0o755, size: 100, want: false},
		{path: "usr/bin/rg", mode: fs.ModeSymlink | 0o777, size: 100, want: false},
	}
	e := rust.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode, tt.size); got != tt.want {
				t.Errorf("Required(%q, %v, %d) = %v, want %v", tt.path, tt.mode, tt.size, got, tt.want)
			}
		})
	}
}

func TestExtractLockfile(t *testing.T) {
	const path = "srv/hello-web/Cargo.lock"
	got, err := rust.New().Extract(context.Background(), extracttest.File(path, readFile(t, "testdata/Cargo.lock")))
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}

	golden := "testdata/Cargo.lock.golden.json"
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
	if len(got) != 20 {
		t.Errorf("Extract() returned %d crates, want the 20 from crates.io", len(got))
	}
	for _, p := range []model.Package{
		pkg("regex", "1.5.4", path),
		pkg("smallvec", "1.6.0", path),
		pkg("time", "0.1.43", path),
		pkg("serde_derive", "1.0.137", path),
	} {
		if !contains(got, p) {
			t.Errorf("Extract() has no %+v", p)
		}
	}
	for _, p := range got {
		switch p.Name {
		case "hello-web", "hello-core", "tinyfork", "internal-utils":
			t.Errorf("Extract() returned %s, which is not from crates.io", p.Name)
		}
	}
}

func TestExtractLockfileVersions(t *testing.T) {
	tests := []struct {
		file string
		want []model.Package
	}{
		{
			file: "testdata/lockv1/Cargo.lock",
			want: []model.Package{pkg("cfg-if", "0.1.10", "app/Cargo.lock"), pkg("log", "0.4.8", "app/Cargo.lock")},
		},
		{
			file: "testdata/lockv4/Cargo.lock",
			want: []model.Package{pkg("anyhow", "1.0.86", "app/Cargo.lock"), pkg("tokio", "1.38.0", "app/Cargo.lock")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := rust.New().Extract(context.Background(), extracttest.File("app/Cargo.lock", readFile(t, tt.file)))
			if err != nil {
				t.Fatalf("Extract() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractLockfileSyntax(t *testing.T) {
	const path = "app/Cargo.lock"
	const reg = `source = "registry+https://github.com/rust-lang/crates.io-index"`
	tests := []struct {
		name    string
		content string
		want    []model.Package
		wantErr bool
	}{
		{
			name:    "CRLF, byte order mark, comments and spacing",
			content: "\ufeffversion = 3\r\n\r\n  [[ package ]]  # a crate\r\nname=\"a\"\r\n\tversion = '1.2.3'\r\nversion2 = 1\r\n" + reg + " # crates.io\r\n",
			want:    []model.Package{pkg("a", "1.2.3", path)},
		},
		{
			name:    "escapes and literal strings",
			content: "[[package]]\nname = \"\\u0061b\"\nversion = '1.0.0'\n" + reg + "\n",
			want:    []model.Package{pkg("ab", "1.0.0", path)},
		},
		{
			name:    "arrays over lines, with brackets in strings",
			content: "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n" + reg + "\ndependencies = [\n \"b ]\", # ]\n [\"c\"],\n]\n[[package]]\nname = \"b\"\nversion = \"2.0.0\"\n" + reg + "\n",
			want:    []model.Package{pkg("a", "1.0.0", path), pkg("b", "2.0.0", path)},
		},
		{
			name:    "keys of other tables ignored",
			content: "[metadata]\nname = \"x\"\n[[patch.unused]]\nname = \"y\"\nversion = \"1.0.0\"\n" + reg + "\n",
		},
		{
			name:    "sparse index, git, path and other registries",
			content: "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"sparse+https://index.crates.io/\"\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\nsource = \"git+https://example.com/b#abc\"\n[[package]]\nname = \"c\"\nversion = \"1.0.0\"\n[[package]]\nname = \"d\"\nversion = \"1.0.0\"\nsource = \"registry+https://example.com/index\"\n",
			want:    []model.Package{pkg("a", "1.0.0", path)},
		},
		{
			name:    "invalid crate names and versions skipped",
			content: "[[package]]\nname = \"a b\"\nversion = \"1.0.0\"\n" + reg + "\n[[package]]\nname = \"c\"\nversion = \"v1\"\n" + reg + "\n",
		},
		{name: "empty", content: ""},
		{name: "package without a version", content: "[[package]]\nname = \"a\"\n" + reg + "\n", wantErr: true},
		{name: "name given twice", content: "[[package]]\nname = \"a\"\nname = \"b\"\nversion = \"1\"\n", wantErr: true},
		{name: "name not a string", content: "[[package]]\nname = 1\nversion = \"1\"\n", wantErr: true},
		{name: "unterminated string", content: "[[package]]\nname = \"a\n", wantErr: true},
		{name: "invalid escape", content: "[[package]]\nname = \"\\x61\"\n", wantErr: true},
		{name: "invalid unicode escape", content: "[[package]]\nname = \"\\uD800\"\n", wantErr: true},
		{name: "multi-line string", content: "[[package]]\nname = \"\"\"a\"\"\"\n", wantErr: true},
		{name: "inline table", content: "[[package]]\nname = {a = 1}\n", wantErr: true},
		{name: "unterminated array", content: "[[package]]\ndependencies = [\n\"a\",\n", wantErr: true},
		{name: "arrays nested too deep", content: "x = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", wantErr: true},
		{name: "unterminated header", content: "[[package]\n", wantErr: true},
		{name: "text after a value", content: "[[package]]\nname = \"a\" \"b\"\n", wantErr: true},
		{name: "no value", content: "[[package]]\nname\n", wantErr: true},
		{name: "control character", content: "[[package]]\nname = \"a\x00\"\n", wantErr: true},
		{name: "invalid UTF-8", content: "# \xff\n", wantErr: true},
		{name: "JSON", content: `{"package": []}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rust.New().Extract(context.Background(), extracttest.File(path, []byte(tt.content)))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Extract() error = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, extract.ErrMalformed) || !strings.Contains(err.Error(), path) {
					t.Errorf("Extract() error = %v, want %v naming the file", err, extract.ErrMalformed)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// auditablePackages is what the fixture's dep-v0.json records, less the
// build dependency cc, the local root crate and the git crate tinyfork.
func auditablePackages(path string) []model.Package {
	return []model.Package{
		pkg("aho-corasick", "0.7.18", path),
		pkg("libc", "0.2.126", path),
		pkg("memchr", "2.4.1", path),
		pkg("regex", "1.5.4", path),
		pkg("regex-syntax", "0.6.25", path),
		pkg("smallvec", "1.6.0", path),
		pkg("time", "0.1.43", path),
	}
}

func TestExtractAuditable(t *testing.T) {
	section := compress(t, readFile(t, "testdata/auditable/dep-v0.json"))
	tests := []struct {
		name    string
		content []byte
	}{
		{name: "ELF built by rustc", content: readFile(t, binaryFixture)},
		{name: "PE", content: peWith(".dep-v0", section)},
		{name: "Mach-O", content: machoWith(".dep-v0", section)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const path = "usr/local/bin/hello-auditable"
			got, err := rust.New().Extract(context.Background(), extracttest.File(path, tt.content))
			if err != nil {
				t.Fatalf("Extract() error: %v", err)
			}
			if diff := cmp.Diff(auditablePackages(path), got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractNotAuditable(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	goBinary := readFile(t, self)
	tests := []struct {
		name    string
		content []byte
	}{
		{name: "Go executable", content: goBinary},
		{name: "shell script", content: []byte("#!/bin/sh\nexec true\n")},
		{name: "ELF magic then garbage", content: append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte{0xa5}, 4096)...)},
		{name: "PE magic then garbage", content: append([]byte("MZ"), bytes.Repeat([]byte{0xa5}, 4096)...)},
		{name: "Java class", content: []byte("\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x10")},
		{name: "shorter than magic", content: []byte("\x7fE")},
		{name: "PE with another section", content: peWith(".rdata", []byte("data"))},
		{name: "Mach-O with another section", content: machoWith("__const", []byte("data"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rust.New().Extract(context.Background(), extracttest.File("usr/bin/x", tt.content))
			if err != nil || got != nil {
				t.Errorf("Extract() = %v, %v; want nil, nil", got, err)
			}
		})
	}
}

func TestExtractAuditableHostile(t *testing.T) {
	zeros := compress(t, make([]byte, 16<<20))
	tests := []struct {
		name    string
		content []byte
		wantErr error
	}{
		{name: "section not zlib", content: peWith(".dep-v0", []byte(`{"packages": []}`)), wantErr: extract.ErrMalformed},
		{name: "zlib truncated", content: peWith(".dep-v0", compress(t, []byte(`{"packages": []}`))[:8]), wantErr: extract.ErrMalformed},
		{name: "not JSON", content: machoWith(".dep-v0", compress(t, []byte("packages"))), wantErr: extract.ErrMalformed},
		{name: "packages not an array", content: peWith(".dep-v0", compress(t, []byte(`{"packages": {}}`))), wantErr: extract.ErrMalformed},
		{name: "zlib bomb", content: peWith(".dep-v0", zeros), wantErr: extract.ErrTooLarge},
		{name: "ELF section damaged", content: damageSection(t, readFile(t, binaryFixture)), wantErr: extract.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const path = "usr/bin/x"
			got, err := rust.New().Extract(context.Background(), extracttest.File(path, tt.content))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Extract() = %v, %v; want error %v", got, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Extract() error %q does not name the file", err)
			}
		})
	}
}

// damageSection overwrites the zlib header of the .dep-v0 section.
func damageSection(t *testing.T, b []byte) []byte {
	t.Helper()
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := ef.Section(".dep-v0")
	if s == nil {
		t.Fatal("fixture has no .dep-v0 section")
	}
	b = bytes.Clone(b)
	copy(b[s.Offset:], "\x00\x00\x00\x00")
	return b
}

func TestExtractTooLarge(t *testing.T) {
	tests := []struct {
		path string
		size int64
	}{
		{path: "app/Cargo.lock", size: 64<<20 + 1},
		{path: "usr/bin/x", size: 512<<20 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := &extract.File{Path: tt.path, Size: tt.size, Content: bytes.NewReader(nil)}
			_, err := rust.New().Extract(context.Background(), f)
			if !errors.Is(err, extract.ErrTooLarge) {
				t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
			}
		})
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	for _, path := range []string{"app/Cargo.lock", "usr/bin/x"} {
		f := &extract.File{Path: path, Size: 4096, Content: extracttest.FailingContent{}}
		_, err := rust.New().Extract(context.Background(), f)
		if !errors.Is(err, extracttest.ErrLayer) {
			t.Errorf("Extract(%q) error = %v, want %v", path, err, extracttest.ErrLayer)
		}
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, f := range []*extract.File{
		extracttest.File("app/Cargo.lock", readFile(t, "testdata/Cargo.lock")),
		extracttest.File("usr/bin/x", readFile(t, binaryFixture)),
	} {
		_, err := rust.New().Extract(ctx, f)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Extract(%q) error = %v, want %v", f.Path, err, context.Canceled)
		}
	}
}

func FuzzExtractLockfile(f *testing.F) {
	for _, p := range []string{"testdata/Cargo.lock", "testdata/lockv1/Cargo.lock", "testdata/lockv4/Cargo.lock"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[[package]]\nname = 'a'\nversion = \"1.0.0\\u00e9\"\nsource = \"sparse+https://index.crates.io/\"\ndeps = [[\"a\"], 'b', # c\n]\n"))
	e := rust.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := e.Extract(context.Background(), extracttest.File("app/Cargo.lock", data))
		if err != nil {
			if got != nil {
				t.Errorf("Extract() = %v and error %v", got, err)
			}
			return
		}
		checkPackages(t, got)
	})
}

func FuzzExtractExecutable(f *testing.F) {
	json := []byte(`{"packages":[{"name":"a","version":"1.0.0","source":"crates.io"},{"name":"b","version":"1.0.0","source":"crates.io","kind":"build"}]}`)
	var section bytes.Buffer
	zw := zlib.NewWriter(&section)
	if _, err := zw.Write(json); err != nil {
		f.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(peWith(".dep-v0", section.Bytes()))
	f.Add(machoWith(".dep-v0", section.Bytes()))
	fixture, err := os.ReadFile(binaryFixture)
	if err != nil {
		f.Fatal(err)
	}
	// The ELF headers and section table, without the code between.
	f.Add(fixture[:64])
	e := rust.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _ := e.Extract(context.Background(), extracttest.File("usr/bin/x", data))
		checkPackages(t, got)
	})
}

func checkPackages(t *testing.T, pkgs []model.Package) {
	t.Helper()
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Ecosystem != "crates.io" || !strings.HasPrefix(p.PURL, "pkg:cargo/") {
			t.Errorf("Extract() returned %+v", p)
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	for _, bb := range []struct{ name, path, fixture string }{
		{name: "lockfile", path: "app/Cargo.lock", fixture: "testdata/Cargo.lock"},
		{name: "executable", path: "usr/bin/hello-auditable", fixture: binaryFixture},
	} {
		b.Run(bb.name, func(b *testing.B) {
			content := readFile(b, bb.fixture)
			e := rust.New()
			f := extracttest.File(bb.path, content)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Extract(context.Background(), f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// peWith returns a minimal PE image: a DOS header, the COFF header and
// one section holding data.
func peWith(name string, data []byte) []byte {
	var b bytes.Buffer
	dos := make([]byte, 64)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 64)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	const dataOff = 64 + 4 + 20 + 40
	must(binary.Write(&b, binary.LittleEndian, pe.FileHeader{
		Machine:          pe.IMAGE_FILE_MACHINE_AMD64,
		NumberOfSections: 1,
		Characteristics:  pe.IMAGE_FILE_EXECUTABLE_IMAGE,
	}))
	var sh pe.SectionHeader32
	copy(sh.Name[:], name)
	sh.VirtualSize = uint32(len(data))
	sh.VirtualAddress = 0x1000
	sh.SizeOfRawData = uint32(len(data))
	sh.PointerToRawData = dataOff
	sh.Characteristics = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ
	must(binary.Write(&b, binary.LittleEndian, sh))
	b.Write(data)
	return b.Bytes()
}

// machoWith returns a minimal 64-bit Mach-O executable with one __DATA
// segment holding one section of data.
func machoWith(name string, data []byte) []byte {
	var b bytes.Buffer
	const hdrLen, segLen, sectLen = 32, 72, 80
	must(binary.Write(&b, binary.LittleEndian, macho.FileHeader{
		Magic: macho.Magic64, Cpu: macho.CpuAmd64, SubCpu: 3, Type: macho.TypeExec,
		Ncmd: 1, Cmdsz: segLen + sectLen,
	}))
	must(binary.Write(&b, binary.LittleEndian, uint32(0))) // reserved
	seg := macho.Segment64{
		Cmd: macho.LoadCmdSegment64, Len: segLen + sectLen,
		Memsz: uint64(len(data)), Offset: hdrLen + segLen + sectLen, Filesz: uint64(len(data)),
		Maxprot: 3, Prot: 3, Nsect: 1,
	}
	copy(seg.Name[:], "__DATA")
	must(binary.Write(&b, binary.LittleEndian, seg))
	sect := macho.Section64{Size: uint64(len(data)), Offset: hdrLen + segLen + sectLen}
	copy(sect.Name[:], name)
	copy(sect.Seg[:], "__DATA")
	must(binary.Write(&b, binary.LittleEndian, sect))
	b.Write(data)
	return b.Bytes()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func compress(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
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
		Ecosystem: "crates.io",
		PURL:      "pkg:cargo/" + name + "@" + version,
		Path:      path,
		Extractor: rust.Name,
	}
}
