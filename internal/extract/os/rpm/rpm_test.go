package rpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"math/rand/v2"
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
	centos7  = &extract.OS{ID: "centos", VersionID: "7", PrettyName: "CentOS Linux 7 (Core)"}
	rhel86   = &extract.OS{ID: "rhel", VersionID: "8.6", PrettyName: "Red Hat Enterprise Linux 8.6 (Ootpa)"}
	rhel88   = &extract.OS{ID: "rhel", VersionID: "8.8", PrettyName: "Red Hat Enterprise Linux 8.8 (Ootpa)"}
	fedora35 = &extract.OS{ID: "fedora", VersionID: "35", PrettyName: "Fedora Linux 35 (Container Image)"}
	sles153  = &extract.OS{ID: "sles", VersionID: "15.3", PrettyName: "SUSE Linux Enterprise Server 15 SP3"}
	rocky93  = &extract.OS{ID: "rocky", VersionID: "9.3", PrettyName: "Rocky Linux 9.3 (Blue Onyx)"}
)

// fixtures are the real databases in testdata (see README.md), each with
// the path and OS of the image it came from.
var fixtures = []struct {
	file string
	path string
	os   *extract.OS
	n    int // packages, without gpg-pubkey
}{
	{"centos7/Packages", "var/lib/rpm/Packages", centos7, 7},
	{"ubi8-s390x/Packages", "var/lib/rpm/Packages", rhel86, 5},
	{"libuuid/Packages", "var/lib/rpm/Packages", rhel88, 1},
	{"fedora35/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite", fedora35, 7},
	{"sle15-bci/Packages.db", "usr/lib/sysimage/rpm/Packages.db", sles153, 35},
}

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{"var/lib/rpm/Packages", 0o644, true},
		{"var/lib/rpm/Packages.db", 0o644, true},
		{"var/lib/rpm/rpmdb.sqlite", 0o644, true},
		{"usr/lib/sysimage/rpm/Packages", 0o644, true},
		{"usr/lib/sysimage/rpm/Packages.db", 0o644, true},
		{"usr/lib/sysimage/rpm/rpmdb.sqlite", 0o644, true},
		{"var/lib/rpm/rpmdb.sqlite-wal", 0o644, false},
		{"var/lib/rpm/rpmdb.sqlite-shm", 0o644, false},
		{"var/lib/rpm/Name", 0o644, false},
		{"var/lib/rpm/Index.db", 0o644, false},
		{"var/lib/rpm/Packages", fs.ModeSymlink | 0o777, false},
		{"var/lib/rpm/Packages", fs.ModeDir | 0o755, false},
		{"/var/lib/rpm/Packages", 0o644, false},
		{"opt/var/lib/rpm/Packages", 0o644, false},
		{"var/lib/rpm/packages", 0o644, false},
	}
	e := New()
	for _, tt := range tests {
		if got := e.Required(tt.path, tt.mode, 1000); got != tt.want {
			t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
		}
	}
}

func TestExtractFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []model.Package
	}{
		{
			// Berkeley DB, little-endian.
			file: "centos7/Packages",
			want: []model.Package{
				{
					Name: "bind-license", Version: "32:9.9.4-73.el7_6",
					SourceName: "bind", SourceVersion: "32:9.9.4-73.el7_6",
					PURL: "pkg:rpm/centos/bind-license@9.9.4-73.el7_6?arch=noarch&distro=centos-7&epoch=32",
					Path: "var/lib/rpm/Packages", Extractor: Name,
				},
				{
					Name: "openssl-libs", Version: "1:1.0.2k-16.el7_6.1",
					SourceName: "openssl", SourceVersion: "1:1.0.2k-16.el7_6.1",
					PURL: "pkg:rpm/centos/openssl-libs@1.0.2k-16.el7_6.1?arch=x86_64&distro=centos-7&epoch=1",
					Path: "var/lib/rpm/Packages", Extractor: Name,
				},
				{
					Name: "httpd24-httpd", Version: "2.4.34-7.el7",
					SourceName: "httpd24-httpd", SourceVersion: "2.4.34-7.el7",
					PURL: "pkg:rpm/centos/httpd24-httpd@2.4.34-7.el7?arch=x86_64&distro=centos-7",
					Path: "var/lib/rpm/Packages", Extractor: Name,
				},
			},
		},
		{
			// Berkeley DB, big-endian.
			file: "ubi8-s390x/Packages",
			want: []model.Package{
				{
					Name: "openssl-libs", Version: "1:1.1.1k-6.el8_5", Ecosystem: "Red Hat",
					SourceName: "openssl", SourceVersion: "1:1.1.1k-6.el8_5",
					PURL: "pkg:rpm/redhat/openssl-libs@1.1.1k-6.el8_5?arch=s390x&distro=rhel-8.6&epoch=1",
					Path: "var/lib/rpm/Packages", Extractor: Name,
				},
				{
					Name: "redhat-release", Version: "8.6-0.1.el8", Ecosystem: "Red Hat",
					SourceName: "redhat-release", SourceVersion: "8.6-0.1.el8",
					PURL: "pkg:rpm/redhat/redhat-release@8.6-0.1.el8?arch=s390x&distro=rhel-8.6",
					Path: "var/lib/rpm/Packages", Extractor: Name,
				},
			},
		},
		{
			// Berkeley DB as rpm wrote it.
			file: "libuuid/Packages",
			want: []model.Package{{
				Name: "libuuid", Version: "2.32.1-42.el8_8", Ecosystem: "Red Hat",
				SourceName: "util-linux", SourceVersion: "2.32.1-42.el8_8",
				PURL: "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rhel-8.8",
				Path: "var/lib/rpm/Packages", Extractor: Name,
			}},
		},
		{
			// SQLite, in WAL mode.
			file: "fedora35/rpmdb.sqlite",
			want: []model.Package{
				{
					Name: "shadow-utils", Version: "2:4.9-7.fc35",
					SourceName: "shadow-utils", SourceVersion: "2:4.9-7.fc35",
					PURL: "pkg:rpm/fedora/shadow-utils@4.9-7.fc35?arch=x86_64&distro=fedora-35&epoch=2",
					Path: "usr/lib/sysimage/rpm/rpmdb.sqlite", Extractor: Name,
				},
				{
					Name: "fedora-release-identity-container", Version: "35-35",
					SourceName: "fedora-release", SourceVersion: "35-35",
					PURL: "pkg:rpm/fedora/fedora-release-identity-container@35-35?arch=noarch&distro=fedora-35",
					Path: "usr/lib/sysimage/rpm/rpmdb.sqlite", Extractor: Name,
				},
			},
		},
		{
			// NDB.
			file: "sle15-bci/Packages.db",
			want: []model.Package{
				{
					Name: "libstdc++6", Version: "11.2.1+git610-1.3.9", Ecosystem: "SUSE:Linux Enterprise Server 15 SP3",
					SourceName: "gcc11", SourceVersion: "11.2.1+git610-1.3.9",
					PURL: "pkg:rpm/suse/libstdc%2B%2B6@11.2.1%2Bgit610-1.3.9?arch=x86_64&distro=sles-15.3",
					Path: "usr/lib/sysimage/rpm/Packages.db", Extractor: Name,
				},
				{
					Name: "libreadline7", Version: "7.0-19.6.1", Ecosystem: "SUSE:Linux Enterprise Server 15 SP3",
					SourceName: "bash", SourceVersion: "4.4-19.6.1",
					PURL: "pkg:rpm/suse/libreadline7@7.0-19.6.1?arch=x86_64&distro=sles-15.3",
					Path: "usr/lib/sysimage/rpm/Packages.db", Extractor: Name,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var fx = fixtures[0]
			for _, f := range fixtures {
				if f.file == tt.file {
					fx = f
				}
			}
			if !New().Required(fx.path, 0o644, 1) {
				t.Fatalf("Required(%q) = false", fx.path)
			}
			pkgs, err := New().Extract(context.Background(), extracttest.FileOn(fx.path, extracttest.Fixture(t, fx.file), fx.os))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(pkgs) != fx.n {
				t.Errorf("Extract found %d packages, want %d", len(pkgs), fx.n)
			}
			byName := make(map[string]model.Package)
			for _, p := range pkgs {
				if p.Name == "gpg-pubkey" {
					t.Errorf("Extract returned %+v, want gpg-pubkey skipped", p)
				}
				byName[p.Name] = p
			}
			for _, w := range tt.want {
				if diff := cmp.Diff(w, byName[w.Name]); diff != "" {
					t.Errorf("package %s mismatch (-want +got):\n%s", w.Name, diff)
				}
			}
		})
	}
}

// TestExtractGolden checks every package of every fixture.
func TestExtractGolden(t *testing.T) {
	got := make(map[string][]model.Package)
	for _, fx := range fixtures {
		pkgs, err := New().Extract(context.Background(), extracttest.FileOn(fx.path, extracttest.Fixture(t, fx.file), fx.os))
		if err != nil {
			t.Fatalf("Extract(%s): %v", fx.file, err)
		}
		got[fx.file] = pkgs
	}
	golden := filepath.Join("testdata", "extract.golden.json")
	if *update {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(got); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want map[string][]model.Package
	if err := json.Unmarshal(extracttest.Fixture(t, "extract.golden.json"), &want); err != nil {
		t.Fatalf("reading %s: %v", golden, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract mismatch with %s (-want +got):\n%s", golden, diff)
	}
}

func TestExtractOS(t *testing.T) {
	tests := []struct {
		name          string
		os            *extract.OS
		wantEcosystem string
		wantPURL      string
	}{
		{"rocky", rocky93, "Rocky Linux:9", "pkg:rpm/rocky/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rocky-9.3"},
		{"almalinux", &extract.OS{ID: "almalinux", VersionID: "9.4"}, "AlmaLinux:9", "pkg:rpm/almalinux/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=almalinux-9.4"},
		{"rhel", rhel88, "Red Hat", "pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rhel-8.8"},
		{"centos", centos7, "", "pkg:rpm/centos/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=centos-7"},
		{"fedora", fedora35, "", "pkg:rpm/fedora/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=fedora-35"},
		{"amazon linux", &extract.OS{ID: "amzn", VersionID: "2023"}, "", "pkg:rpm/amzn/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=amzn-2023"},
		{"opensuse leap", &extract.OS{ID: "opensuse-leap", VersionID: "15.5"}, "openSUSE:Leap 15.5", "pkg:rpm/opensuse/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=opensuse-leap-15.5"},
		{"opensuse tumbleweed", &extract.OS{ID: "opensuse-tumbleweed", VersionID: "20240501"}, "openSUSE:Tumbleweed", "pkg:rpm/opensuse/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=opensuse-tumbleweed-20240501"},
		{"sles", &extract.OS{ID: "sles", VersionID: "15.5"}, "SUSE:Linux Enterprise Server 15 SP5", "pkg:rpm/suse/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=sles-15.5"},
		{"sles without a service pack", &extract.OS{ID: "sles", VersionID: "15"}, "SUSE:Linux Enterprise Server 15", "pkg:rpm/suse/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=sles-15"},
		{"no release", &extract.OS{ID: "rocky"}, "Rocky Linux", "pkg:rpm/rocky/libuuid@2.32.1-42.el8_8?arch=x86_64"},
		{"other rpm distribution", &extract.OS{ID: "ol", VersionID: "9.3"}, "", "pkg:rpm/ol/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=ol-9.3"},
		// An rpm database on a Debian root holds no Debian packages.
		{"not an rpm distribution", &extract.OS{ID: "debian", VersionID: "12"}, "", "pkg:rpm/debian/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=debian-12"},
		{"unknown", nil, "", "pkg:rpm/libuuid@2.32.1-42.el8_8?arch=x86_64"},
		{"hostile id", &extract.OS{ID: "x/../y&distro=z", VersionID: "1"}, "", "pkg:rpm/libuuid@2.32.1-42.el8_8?arch=x86_64"},
		{"upper-case id", &extract.OS{ID: "Rocky", VersionID: "9.3"}, "Rocky Linux:9", "pkg:rpm/rocky/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rocky-9.3"},
	}
	b := extracttest.Fixture(t, "libuuid/Packages")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/rpm/Packages", b, tt.os))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(pkgs) != 1 {
				t.Fatalf("Extract found %d packages, want 1", len(pkgs))
			}
			if got := pkgs[0].Ecosystem; got != tt.wantEcosystem {
				t.Errorf("Ecosystem = %q, want %q", got, tt.wantEcosystem)
			}
			if got := pkgs[0].PURL; got != tt.wantPURL {
				t.Errorf("PURL = %q, want %q", got, tt.wantPURL)
			}
		})
	}
}

// TestExtractOSFile reads the database from an *os.File, as a scan
// passes it, and checks that nothing is written next to it: SQLite in WAL
// mode otherwise creates -wal and -shm files.
func TestExtractOSFile(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "content")
			if err := os.WriteFile(path, extracttest.Fixture(t, fx.file), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			pkgs, err := New().Extract(context.Background(), &extract.File{Path: fx.path, Size: fi.Size(), Content: f, OS: fx.os})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if len(pkgs) != fx.n {
				t.Errorf("Extract found %d packages, want %d", len(pkgs), fx.n)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("directory holds %d files after Extract, want only the database", len(entries))
			}
		})
	}
}

// TestExtractBDBUnsorted reads the hash pages of Berkeley DB before 4.6
// (CentOS 5), which differ from later ones only in their page type.
func TestExtractBDBUnsorted(t *testing.T) {
	b := extracttest.Fixture(t, "centos7/Packages")
	const pageSize = 4096
	changed := 0
	for off := pageSize; off+pageSize <= len(b); off += pageSize {
		if b[off+25] == bdbPageHash {
			b[off+25] = bdbPageHashUnsorted
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("fixture has no hash pages")
	}
	pkgs, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/rpm/Packages", b, centos7))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if len(pkgs) != 7 {
		t.Errorf("Extract found %d packages, want 7", len(pkgs))
	}
}

func TestExtractBuilt(t *testing.T) {
	headers := [][]byte{
		pkgHeader("zlib", "1.2.11", "40.el9", 0),
		pkgHeader("openssl-libs", "3.0.7", "27.el9", 1),
		makeHeader(stringTag(tagName, "gpg-pubkey"), stringTag(tagVersion, "fd431d51"), stringTag(tagRelease, "4ae0493b"), stringTag(tagSourceRPM, "(none)")),
		makeHeader(stringTag(tagName, "nosource"), stringTag(tagVersion, "1"), stringTag(tagRelease, "1"), stringTag(tagSourceRPM, "(none)")),
	}
	want := []model.Package{
		{
			Name: "zlib", Version: "1.2.11-40.el9", Ecosystem: "Rocky Linux:9",
			SourceName: "zlib", SourceVersion: "1.2.11-40.el9",
			PURL: "pkg:rpm/rocky/zlib@1.2.11-40.el9?arch=x86_64&distro=rocky-9.3",
			Path: "var/lib/rpm/Packages", Extractor: Name,
		},
		{
			Name: "openssl-libs", Version: "1:3.0.7-27.el9", Ecosystem: "Rocky Linux:9",
			SourceName: "openssl-libs", SourceVersion: "1:3.0.7-27.el9",
			PURL: "pkg:rpm/rocky/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rocky-9.3&epoch=1",
			Path: "var/lib/rpm/Packages", Extractor: Name,
		},
		{
			Name: "nosource", Version: "1-1", Ecosystem: "Rocky Linux:9",
			PURL: "pkg:rpm/rocky/nosource@1-1?distro=rocky-9.3",
			Path: "var/lib/rpm/Packages", Extractor: Name,
		},
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"bdb little-endian", makeBDB(binary.LittleEndian, 512, headers...)},
		{"bdb big-endian", makeBDB(binary.BigEndian, 1024, headers...)},
		{"ndb", makeNDB(headers...)},
		{"sqlite", makeSQLite(t, "", headers)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/rpm/Packages", tt.b, rocky93))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Extract mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractHostile(t *testing.T) {
	good := pkgHeader("good", "1.0", "1", 0)
	bad := makeHeader(stringTag(tagName, "bad"), stringTag(tagVersion, "1 0"), stringTag(tagRelease, "1"))
	ndb := makeNDB(good, good)
	// The second slot points at the first blob.
	ndbShared := bytes.Clone(ndb)
	copy(ndbShared[3*ndbSlotSize+8:3*ndbSlotSize+16], ndbShared[2*ndbSlotSize+8:2*ndbSlotSize+16])
	// Every slot points at the one blob.
	ndbClaims := makeNDB(good)
	for s := 3; s < ndbSlotPageSize/ndbSlotSize; s++ {
		copy(ndbClaims[s*ndbSlotSize:(s+1)*ndbSlotSize], ndbClaims[2*ndbSlotSize:3*ndbSlotSize])
	}
	// An overflow chain that loops back on itself.
	bdbLoop := makeBDB(binary.LittleEndian, 512, make([]byte, 600))
	binary.LittleEndian.PutUint32(bdbLoop[3*512+16:], 2)
	// A hash item offset past the end of the page, which crashes
	// go-rpmdb.
	bdbOffset := makeBDB(binary.LittleEndian, 512, good)
	binary.LittleEndian.PutUint16(bdbOffset[512+26+2:], 510)
	bdbOffset[512+510] = bdbItemOffPage
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	sqlite := extracttest.Fixture(t, "fedora35/rpmdb.sqlite")
	centos := extracttest.Fixture(t, "centos7/Packages")
	sle := extracttest.Fixture(t, "sle15-bci/Packages.db")

	goodPkg := model.Package{
		Name: "good", Version: "1.0-1", SourceName: "good", SourceVersion: "1.0-1",
		PURL: "pkg:rpm/good@1.0-1?arch=x86_64", Path: "var/lib/rpm/Packages", Extractor: Name,
	}
	tests := []struct {
		name  string
		input []byte
		// wantN is how many packages are returned.
		wantN int
		// wantMsg is a substring of the error.
		wantMsg string
	}{
		{"empty file", nil, 0, "empty file"},
		{"random bytes", random, 0, "not an rpm database"},
		{"text", []byte("Package: bash\nVersion: 5.2\n"), 0, "not an rpm database"},
		{"sqlite magic, junk after", append([]byte("SQLite format 3\x00"), random...), 0, "malformed rpm database"},
		{"truncated sqlite", sqlite[:64<<10], 0, "malformed rpm database"},
		{"sqlite without Packages", makeSQLite(t, "CREATE TABLE Other (x)", nil), 0, "no Packages table"},
		{"sqlite Packages view", makeSQLite(t, "CREATE VIEW Packages AS WITH RECURSIVE c(hnum, blob) AS (SELECT 1, x'00' UNION ALL SELECT hnum+1, blob FROM c) SELECT * FROM c", nil), 0, "is not a table"},
		{"sqlite Packages without blob", makeSQLite(t, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, x)", nil), 0, "no such column: blob"},
		{"sqlite bad headers", makeSQLite(t, "", [][]byte{good, []byte("junk"), bad, good}), 2, `record 2: header of 4 bytes is too short; record 3: package "bad": invalid VERSION "1 0"`},
		{
			"sqlite generated blobs",
			makeSQLite(t, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, n, blob AS (zeroblob(n)))", nil,
				"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c LIMIT 100) INSERT INTO Packages (n) SELECT 1000000 FROM c"),
			0, "holds more than the file",
		},
		{"sqlite blob too big", makeSQLite(t, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, n, blob AS (zeroblob(n)))", nil, "INSERT INTO Packages (n) VALUES (100000000)"), 0, "too big"},
		{"truncated bdb", centos[:len(centos)/2], 3, "Berkeley DB database has 157 pages, the file holds 78"},
		{"bdb magic, junk after", append(append(make([]byte, 12), 0x61, 0x15, 0x06, 0x00), random...), 0, "Berkeley DB page size"},
		{"bdb loop", bdbLoop, 0, "overflow page 2 is used twice"},
		{"bdb item outside the page", bdbOffset, 0, "page 1: entry 0 lies outside the page"},
		{"bdb short", centos[:100], 0, "holds no page"},
		{"truncated ndb", sle[:len(sle)/2], 16, "lies outside the file's blob area"},
		{"ndb magic, junk after", append([]byte("RpmP\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00"), random...), 0, "slot 2: bad magic number"},
		{"ndb magic only", []byte("RpmP"), 0, "shorter than a slot page"},
		{"ndb slots share a blob", ndbShared, 1, "record 2: blob at 4096 overlaps another"},
		{"ndb slots all point at one blob", ndbClaims, 1, "record 1: blob at 4096 overlaps another; record 1: blob at 4096 overlaps another"},
		{"bad header in bdb", makeBDB(binary.BigEndian, 512, good, bad, good), 2, `record 2: package "bad": invalid VERSION`},
		{"bad header in ndb", makeNDB(good, bad, []byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}), 1, "record 3: header data of 4294967295 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/rpm/Packages", tt.input, nil))
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, extract.ErrMalformed) {
				t.Fatalf("Extract error = %v, want ErrMalformed", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "var/lib/rpm/Packages: ") || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("Extract error = %q, want it to name the file and contain %q", msg, tt.wantMsg)
			}
			if len(got) != tt.wantN {
				t.Errorf("Extract returned %d packages, want %d", len(got), tt.wantN)
			}
			for _, p := range got {
				if p.Name == "good" {
					if diff := cmp.Diff(goodPkg, p); diff != "" {
						t.Errorf("Extract mismatch (-want +got):\n%s", diff)
					}
				}
			}
		})
	}
}

func TestExtractTooLarge(t *testing.T) {
	f := &extract.File{Path: "var/lib/rpm/Packages", Size: MaxFileSize + 1, Content: bytes.NewReader(nil)}
	_, err := New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) || !strings.Contains(err.Error(), "var/lib/rpm/Packages") {
		t.Errorf("Extract error = %v, want ErrTooLarge naming the file", err)
	}
}

func TestExtractHeaderTooLarge(t *testing.T) {
	huge := pkgHeader("huge", "1", "1", 0)
	huge = append(huge, make([]byte, MaxHeaderSize)...)
	tests := []struct {
		name string
		b    []byte
	}{
		{"bdb", makeBDB(binary.LittleEndian, 64<<10, huge)},
		{"ndb", makeNDB(huge)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/rpm/Packages", tt.b, nil))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "limit 67108864") {
				t.Errorf("Extract error = %v, want the header refused", err)
			}
		})
	}
}

// failAfter serves n bytes of b and fails after them.
type failAfter struct {
	b []byte
	n int64
}

func (r failAfter) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.n {
		return 0, errors.New("layer blob truncated")
	}
	return copy(p, r.b[off:]), nil
}

func TestExtractReadError(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			b := extracttest.Fixture(t, fx.file)
			f := &extract.File{Path: fx.path, Size: int64(len(b)), Content: failAfter{b: b, n: int64(len(b)) * 3 / 4}, OS: fx.os}
			_, err := New().Extract(context.Background(), f)
			if err == nil || !strings.Contains(err.Error(), "layer blob truncated") || !strings.HasPrefix(err.Error(), fx.path+": ") {
				t.Errorf("Extract error = %v, want the read error naming the file", err)
			}
		})
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			got, err := New().Extract(ctx, extracttest.FileOn(fx.path, extracttest.Fixture(t, fx.file), fx.os))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Extract error = %v, want context.Canceled", err)
			}
			if got != nil {
				t.Errorf("Extract = %d packages, want none", len(got))
			}
		})
	}
}

func BenchmarkExtract(b *testing.B) {
	for _, fx := range fixtures {
		b.Run(fx.file, func(b *testing.B) {
			data := extracttest.Fixture(b, fx.file)
			e := New()
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Extract(ctx, extracttest.FileOn(fx.path, data, fx.os)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzExtract(f *testing.F) {
	// Small databases rather than the fixtures: the fuzzer works and
	// minimises far faster on small inputs. The headers are real ones.
	libuuid := extracttest.Fixture(f, "libuuid/Packages")
	real, err := firstHeader(libuuid)
	if err != nil {
		f.Fatal(err)
	}
	small := pkgHeader("openssl-libs", "3.0.7", "27.el9", 1)
	f.Add(makeBDB(binary.LittleEndian, 512, small, real))
	f.Add(makeBDB(binary.BigEndian, 512, small))
	f.Add(makeNDB(small, real))
	f.Add(makeNDB(small))
	f.Add(makeSQLite(f, "", [][]byte{small}))
	f.Fuzz(func(t *testing.T, b []byte) {
		pkgs, err := New().Extract(context.Background(), extracttest.FileOn("var/lib/rpm/Packages", b, rocky93))
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Extract error %v does not wrap ErrMalformed", err)
		}
		for _, p := range pkgs {
			if !validName(p.Name) || p.Name == "gpg-pubkey" || !strings.HasPrefix(p.PURL, "pkg:rpm/rocky/") {
				t.Errorf("Extract returned invalid package %+v", p)
			}
		}
	})
}

// firstHeader returns the first package header in a database.
func firstHeader(b []byte) ([]byte, error) {
	read, err := detect(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	var h []byte
	err = read(context.Background(), bytes.NewReader(b), int64(len(b)), &problems{}, func(_ int64, header []byte) {
		if h == nil {
			h = bytes.Clone(header)
		}
	})
	return h, err
}
