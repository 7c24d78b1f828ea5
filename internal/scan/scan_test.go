package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwarkhq/bulwark/internal/extract/list"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

const slimTar = "../../testdata/images/slim.tar"

var (
	dbOnce sync.Once
	dbDir  string
	dbErr  error
)

// testScanner matches against the Debian, Go and npm fixture records.
func testScanner(t testing.TB) *Scanner {
	t.Helper()
	dbOnce.Do(func() {
		if dbDir, dbErr = os.MkdirTemp("", "bulwark-scan-test-db-"); dbErr != nil {
			return
		}
		var w *vulndb.Writer
		if w, dbErr = vulndb.Create(dbDir); dbErr != nil {
			return
		}
		if dbErr = vulndb.Import(context.Background(), w, "../../testdata/osv/Debian", "../../testdata/osv/Go", "../../testdata/osv/npm"); dbErr != nil {
			w.Abort()
			return
		}
		dbErr = w.Commit()
	})
	if dbErr != nil {
		t.Fatalf("building test database: %v", dbErr)
	}
	db, err := vulndb.Open(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Scanner{Extractors: list.All(), Matcher: db, WorkDir: t.TempDir()}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dbDir != "" {
		os.RemoveAll(dbDir)
	}
	os.Exit(code)
}

func hasFinding(r *model.Report, pkg, id string) bool {
	for _, f := range r.Findings {
		if f.Package.Name == pkg && (f.VulnerabilityID == id || slices.Contains(f.Aliases, id)) {
			return true
		}
	}
	return false
}

// wantSlimFindings are vulnerabilities the fixture image is known to have.
var wantSlimFindings = []struct{ pkg, id string }{
	{"libc6", "CVE-2025-4802"},
	{"curl", "CVE-2024-2398"},
	{"lodash", "GHSA-35jh-r3h4-6jhm"},
	{"golang.org/x/net", "GO-2023-2102"},
	{"stdlib", "GO-2024-2687"},
}

func checkSlimReport(t *testing.T, r *model.Report) {
	t.Helper()
	for _, w := range wantSlimFindings {
		if !hasFinding(r, w.pkg, w.id) {
			t.Errorf("no finding %s in %s", w.id, w.pkg)
		}
	}
	if r.OS == nil || r.OS.Ecosystem != "Debian:12" {
		t.Errorf("OS = %+v, want Debian 12", r.OS)
	}
	for _, f := range r.Findings {
		if f.Package.Name == "libc6" && (f.Package.Ecosystem != "Debian:12" || f.Package.SourceName != "glibc") {
			t.Errorf("libc6 finding package = %+v", f.Package)
		}
	}
}

func TestScanArchiveFixture(t *testing.T) {
	s := testScanner(t)
	img, err := ArchiveImage(slimTar, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetArchive, Name: slimTar})
	if err != nil {
		t.Fatal(err)
	}
	checkSlimReport(t, r)
	if len(r.Target.Layers) != 1 || !strings.HasPrefix(r.Target.Digest, "sha256:") {
		t.Errorf("target = %+v", r.Target)
	}
	for _, p := range r.Packages {
		if p.Layer != r.Target.Layers[0] {
			t.Errorf("package %s has layer %q, want %q", p.Name, p.Layer, r.Target.Layers[0])
			break
		}
	}
	entries, _ := os.ReadDir(s.WorkDir)
	if len(entries) != 0 {
		t.Errorf("scan left %d entries in its work dir", len(entries))
	}
}

// TestScanDirFixture unpacks the fixture image and scans the directory.
func TestScanDirFixture(t *testing.T) {
	img, err := tarball.ImageFromPath(slimTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	unpack(t, img, root)
	r, err := testScanner(t).Dir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	checkSlimReport(t, r)
}

// unpack writes an image's regular files, directories and symlinks under
// root, for the directory scan test.
func unpack(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		p, ok := cleanPath(hdr.Name)
		if !ok || p == "" {
			continue
		}
		dst := filepath.Join(root, p)
		switch hdr.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.Symlink(hdr.Linkname, dst)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(dst), 0o755)
			var buf bytes.Buffer
			buf.ReadFrom(tr)
			if err := os.WriteFile(dst, buf.Bytes(), os.FileMode(hdr.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// entry is a tar entry for a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func layer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (rc io.ReadCloser, err error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

const debianOSRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"

func dpkgStanza(pkg, version string) string {
	return "Package: " + pkg + "\nStatus: install ok installed\nArchitecture: amd64\nVersion: " + version + "\n\n"
}

func TestLayerSemantics(t *testing.T) {
	lockfile := func(version string) string {
		return `{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"` + version + `"}}}`
	}
	base := layer(t,
		entry{name: "usr/lib/os-release", body: debianOSRelease},
		entry{name: "etc/os-release", typ: tar.TypeSymlink, link: "../usr/lib/os-release"},
		entry{name: "var/lib/dpkg/status", body: dpkgStanza("curl", "7.88.1-10+deb12u5")},
		entry{name: "srv/old/package-lock.json", body: lockfile("4.17.15")},
		entry{name: "srv/opaque/package-lock.json", body: lockfile("4.17.15")},
		entry{name: "srv/kept/package-lock.json", body: lockfile("4.17.15")},
	)
	top := layer(t,
		// A newer status replaces the old one: curl was upgraded.
		entry{name: "var/lib/dpkg/status", body: dpkgStanza("curl", "7.88.1-10+deb12u6")},
		// A whiteout deletes a lower file, an opaque marker a lower directory's contents.
		entry{name: "srv/old/.wh.package-lock.json", body: ""},
		entry{name: "srv/opaque/.wh..wh..opq", body: ""},
		// Hostile entries: a path leaving the root, a link pointing out.
		entry{name: "../../../tmp/escape/package-lock.json", body: lockfile("1.0.0")},
		entry{name: "srv/evil/package-lock.json", typ: tar.TypeSymlink, link: "/../../../etc/shadow"},
		// A hard link to a kept file.
		entry{name: "srv/hard/package-lock.json", typ: tar.TypeLink, link: "srv/kept2/package-lock.json"},
		// Device files and FIFOs under wanted names are not files to read.
		entry{name: "srv/dev/package-lock.json", typ: tar.TypeChar},
		entry{name: "srv/blk/package-lock.json", typ: tar.TypeBlock},
		entry{name: "srv/fifo/package-lock.json", typ: tar.TypeFifo},
		// A hard link whose target leaves the root.
		entry{name: "srv/hard2/package-lock.json", typ: tar.TypeLink, link: "../../etc/shadow"},
	)
	withKept2 := layer(t, entry{name: "srv/kept2/package-lock.json", body: lockfile("4.17.10")})
	hard := layer(t,
		entry{name: "srv/kept3/package-lock.json", body: lockfile("4.17.11")},
		entry{name: "srv/hard/package-lock.json", typ: tar.TypeLink, link: "srv/kept3/package-lock.json"},
	)
	s := testScanner(t)
	r, err := s.Image(context.Background(), image(t, base, withKept2, top, hard), model.Target{Kind: model.TargetImage, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range r.Packages {
		got = append(got, p.Path+" "+p.Name+" "+p.Version)
	}
	slices.Sort(got)
	want := []string{
		"srv/hard/package-lock.json lodash 4.17.11",
		"srv/kept/package-lock.json lodash 4.17.15",
		"srv/kept2/package-lock.json lodash 4.17.10",
		"srv/kept3/package-lock.json lodash 4.17.11",
		"var/lib/dpkg/status curl 7.88.1-10+deb12u6",
	}
	if !slices.Equal(want, got) {
		t.Errorf("packages:\n got %q\nwant %q", got, want)
	}
	if r.OS == nil || r.OS.Ecosystem != "Debian:12" {
		t.Errorf("OS through the os-release symlink = %+v", r.OS)
	}
	if hasFinding(r, "curl", "CVE-2024-2398") {
		t.Error("curl fixed in the top layer still reported")
	}
	warned := strings.Join(r.Warnings, "\n")
	if !strings.Contains(warned, "path leaves the root") {
		t.Errorf("warnings %q do not mention the escaping entry", warned)
	}
	if _, err := os.Stat("/tmp/escape"); err == nil {
		t.Error("a layer entry was written outside the work dir")
	}
}

func TestLimits(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	img := image(t, layer(t,
		entry{name: "srv/app/package-lock.json", body: big},
		entry{name: "filler", body: big},
	))
	tests := []struct {
		name    string
		limits  Limits
		wantErr error
		warning string
	}{
		{"file over the file limit is skipped", Limits{MaxFileSize: 1 << 20}, nil, "over the 1048576-byte file limit"},
		{"files over the stored limit are skipped", Limits{MaxStored: 1 << 20}, nil, "the limit is 1048576"},
		{"layer over the layer limit fails", Limits{MaxLayerSize: 3 << 20}, ErrLayerTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testScanner(t)
			s.Limits = tc.limits
			r, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "big"})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(r.Warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q, want one containing %q", r.Warnings, tc.warning)
			}
		})
	}
}

// cutLayer serves the first half of a real layer's uncompressed stream, as
// a registry or archive that ends early would.
type cutLayer struct{ v1.Layer }

func (l cutLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	rc.Close()
	return io.NopCloser(bytes.NewReader(buf.Bytes()[:buf.Len()/2])), nil
}

func TestTruncatedLayer(t *testing.T) {
	img, err := tarball.ImageFromPath(slimTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	_, err = testScanner(t).Image(context.Background(), image(t, cutLayer{layers[0]}), model.Target{Kind: model.TargetImage, Name: "cut"})
	if err == nil || !strings.Contains(err.Error(), "reading layer") {
		t.Errorf("scanning a truncated layer: err = %v, want a layer read error", err)
	}
}

func TestTreeResolveStaysInRoot(t *testing.T) {
	tr := newTree()
	tr.nodes["usr/lib/os-release"] = &node{kind: kindFile}
	tr.nodes["etc/os-release"] = &node{kind: kindSymlink, target: "../usr/lib/os-release"}
	tr.nodes["a"] = &node{kind: kindSymlink, target: "/../../../usr/lib"}
	tr.nodes["loop"] = &node{kind: kindSymlink, target: "loop"}
	tr.nodes["up"] = &node{kind: kindSymlink, target: "../../../../etc/os-release"}
	for in, want := range map[string]string{
		"etc/os-release":            "usr/lib/os-release",
		"a/os-release":              "usr/lib/os-release",
		"up":                        "usr/lib/os-release",
		"usr/lib/../lib/os-release": "usr/lib/os-release",
	} {
		got, _, err := tr.resolve(in)
		if err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, _, err := tr.resolve("loop"); err == nil {
		t.Error("a symlink loop resolved")
	}
}

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	s := testScanner(t)
	s.Progress = &buf
	img, err := ArchiveImage(slimTar, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(context.Background(), img, model.Target{Kind: model.TargetArchive, Name: slimTar}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "layer 1/1 sha256:") || !strings.HasPrefix(lines[1], "reading ") || !strings.HasPrefix(lines[2], "matching ") {
		t.Errorf("progress = %q", lines)
	}
}

// TestOSOwnedLanguagePackages: a language package read from a file that a
// dpkg package installed is listed with its owner and not matched in its
// language ecosystem (distributions backport fixes); one in a file no OS
// package owns is matched as usual.
func TestOSOwnedLanguagePackages(t *testing.T) {
	lock := `{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"4.17.15"}}}`
	img := image(t, layer(t,
		entry{name: "etc/os-release", body: debianOSRelease},
		entry{name: "var/lib/dpkg/status", body: dpkgStanza("node-app", "1.0-1")},
		entry{name: "var/lib/dpkg/info/node-app:amd64.list", body: "/.\n/usr\n/usr/share/node-app/package-lock.json\n"},
		entry{name: "usr/share/node-app/package-lock.json", body: lock},
		entry{name: "srv/mine/package-lock.json", body: lock},
	))
	r, err := testScanner(t).Image(context.Background(), img, model.Target{Kind: model.TargetImage, Name: "owned"})
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for _, p := range r.Packages {
		if p.Name == "lodash" {
			owners[p.Path] = p.OwnedBy
		}
	}
	if owners["usr/share/node-app/package-lock.json"] != "node-app" || owners["srv/mine/package-lock.json"] != "" {
		t.Errorf("owners = %v", owners)
	}
	var paths []string
	for _, f := range r.Findings {
		if f.VulnerabilityID == "GHSA-35jh-r3h4-6jhm" {
			paths = append(paths, f.Package.Path)
		}
	}
	if !slices.Equal(paths, []string{"srv/mine/package-lock.json"}) {
		t.Errorf("GHSA-35jh-r3h4-6jhm reported for %v, want only the unowned lock", paths)
	}
}
