package report

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const testToolVersion = "1.2.3"

// testReport is a scan of a Debian-based image with a Go binary and an npm
// application: findings in several ecosystems and at every severity, a
// vulnerability in two packages, one suppressed finding, one package
// without findings, one that could not be checked and a warning.
func testReport() *model.Report {
	libc6 := model.Package{
		Name: "libc6", Version: "2.36-9+deb12u4", Ecosystem: "Debian:12",
		SourceName: "glibc", SourceVersion: "2.36-9+deb12u4",
		PURL:      "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
		Path:      "var/lib/dpkg/status",
		Layer:     "sha256:5d0aeceef7eeb0c4a8bb6b4d3c6a7d2f4e3e0b8d1c6f9a2b7e4d3c2b1a0f9e8d",
		Extractor: "os/dpkg",
	}
	libcBin := libc6
	libcBin.Name = "libc-bin"
	libcBin.PURL = "pkg:deb/debian/libc-bin@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
	libssl := model.Package{
		Name: "libssl3", Version: "3.0.11-1~deb12u2", Ecosystem: "Debian:12",
		SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2",
		PURL:  "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
		Path:  "var/lib/dpkg/status",
		Layer: libc6.Layer, Extractor: "os/dpkg",
	}
	zlib := model.Package{
		Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Ecosystem: "Debian:12",
		SourceName: "zlib", SourceVersion: "1:1.2.13.dfsg-1",
		PURL:  "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12",
		Path:  "var/lib/dpkg/status",
		Layer: libc6.Layer, Extractor: "os/dpkg",
	}
	lodash := model.Package{
		Name: "lodash", Version: "4.17.20", Ecosystem: "npm",
		PURL:      "pkg:npm/lodash@4.17.20",
		Path:      "srv/shop/package-lock.json",
		Layer:     "sha256:9b2f6c1e0d3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
		Extractor: "language/npm",
	}
	stdlib := model.Package{
		Name: "stdlib", Version: "1.21.0", Ecosystem: "Go",
		PURL:      "pkg:golang/stdlib@1.21.0",
		Path:      "usr/local/bin/shop-api",
		Layer:     lodash.Layer,
		Extractor: "language/gobinary",
	}

	iconv := model.Finding{
		Package: libc6, VulnerabilityID: "CVE-2024-2961",
		Summary:   "The iconv() function in the GNU C Library versions 2.39 and older may overflow the output buffer passed to it by up to 4 bytes when converting strings to the ISO-2022-CN-EXT character set",
		Severity:  model.SeverityHigh,
		CVSSScore: 7.3, CVSSVector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", SeveritySource: "NVD",
		FixedVersion: "2.36-9+deb12u7",
		References:   []string{"https://security-tracker.debian.org/tracker/CVE-2024-2961"},
	}
	iconvBin := iconv
	iconvBin.Package = libcBin

	return &model.Report{
		SchemaVersion: model.ReportSchemaVersion,
		CreatedAt:     time.Date(2025, 3, 14, 9, 26, 53, 589000000, time.UTC),
		Target: model.Target{
			Kind:     model.TargetImage,
			Name:     "registry.example.com/shop/api:1.4.2",
			Digest:   "sha256:3f4e1a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f",
			Platform: "linux/amd64",
			Layers:   []string{libc6.Layer, lodash.Layer},
		},
		OS:       &model.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Ecosystem: "Debian:12"},
		Packages: []model.Package{stdlib, lodash, zlib, libssl, libcBin, libc6},
		Findings: []model.Finding{
			iconvBin,
			{
				Package: lodash, VulnerabilityID: "GHSA-35jh-r3h4-6jhm", Aliases: []string{"CVE-2021-23337"},
				Summary:   "Command Injection in lodash",
				Severity:  model.SeverityHigh,
				CVSSScore: 7.2, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", SeveritySource: "GitHub",
				FixedVersion: "4.17.21",
				References: []string{
					"https://github.com/advisories/GHSA-35jh-r3h4-6jhm",
					"https://nvd.nist.gov/vuln/detail/CVE-2021-23337",
				},
			},
			{
				Package: stdlib, VulnerabilityID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"},
				Summary:      "HTTP/2 CONTINUATION flood in net/http",
				Severity:     model.SeverityUnknown,
				FixedVersion: "1.21.9",
				References:   []string{"https://go.dev/issue/65051"},
			},
			{
				Package: libc6, VulnerabilityID: "CVE-2010-4756",
				Summary:  "The glob implementation in the GNU C Library allows remote authenticated users to cause a denial of service (CPU and memory consumption) via crafted glob expressions",
				Severity: model.SeverityLow, SeveritySource: "Debian",
			},
			iconv,
			{
				Package: libssl, VulnerabilityID: "CVE-2024-5535",
				Summary:   "SSL_select_next_proto buffer overread",
				Severity:  model.SeverityCritical,
				CVSSScore: 9.1, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H", SeveritySource: "NVD",
				FixedVersion: "3.0.14-1~deb12u1",
				References:   []string{"https://www.openssl.org/news/secadv/20240627.txt"},
			},
			{
				Package: lodash, VulnerabilityID: "GHSA-29mw-wpgm-hmr9", Aliases: []string{"CVE-2020-28500"},
				Summary:   "Regular Expression Denial of Service (ReDoS) in lodash",
				Severity:  model.SeverityMedium,
				CVSSScore: 5.3, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", SeveritySource: "GitHub",
				FixedVersion: "4.17.21",
				References:   []string{"https://github.com/advisories/GHSA-29mw-wpgm-hmr9"},
			},
		},
		Suppressed: []model.Suppressed{{
			Finding: model.Finding{
				Package: libc6, VulnerabilityID: "CVE-2023-4911",
				Summary:  "A buffer overflow in the GNU C Library's dynamic loader ld.so (Looney Tunables)",
				Severity: model.SeverityHigh, CVSSScore: 7.8, FixedVersion: "2.36-9+deb12u3",
			},
			Source: "ignore-file",
			Reason: "no setuid binaries in this image",
		}},
		Unmatched: []model.Unmatched{{
			Package: model.Package{Name: "left-pad", Ecosystem: "npm", Path: "srv/shop/node_modules/left-pad/package.json", Extractor: "language/npm"},
			Reason:  "no installed version",
		}},
		Warnings: []string{`skipped tar entry "../../etc/shadow": path leaves the root`},
		Database: model.Database{Built: time.Date(2025, 3, 14, 6, 0, 0, 0, time.UTC)},
	}
}

// emptyReport is a scan that found nothing at all, not even packages.
func emptyReport() *model.Report {
	return &model.Report{
		SchemaVersion: model.ReportSchemaVersion,
		CreatedAt:     time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC),
		Target:        model.Target{Kind: model.TargetFS, Name: "./empty"},
		Database:      model.Database{Built: time.Date(2025, 3, 14, 6, 0, 0, 0, time.UTC)},
	}
}

// write writes r in format and fails the test on an error.
func write(t testing.TB, format string, r *model.Report, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, format, r, opts); err != nil {
		t.Fatalf("Write(%q) = %v", format, err)
	}
	return buf.Bytes()
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got), run with -update if the change is intended:\n%s", path, diff)
	}
}

func TestWriteGolden(t *testing.T) {
	tests := []struct {
		golden string
		format string
		report *model.Report
		opts   Options
	}{
		{"report.table", Table, testReport(), Options{ToolVersion: testToolVersion}},
		{"report.color.table", Table, testReport(), Options{Color: true, ToolVersion: testToolVersion}},
		{"report.json", JSON, testReport(), Options{ToolVersion: testToolVersion}},
		{"report.sarif.json", SARIF, testReport(), Options{ToolVersion: testToolVersion}},
		{"report.cdx.json", CycloneDX, testReport(), Options{ToolVersion: testToolVersion}},
		{"report.spdx.json", SPDX, testReport(), Options{ToolVersion: testToolVersion}},
		{"empty.table", Table, emptyReport(), Options{}},
		{"empty.json", JSON, emptyReport(), Options{}},
		{"empty.sarif.json", SARIF, emptyReport(), Options{}},
		{"empty.cdx.json", CycloneDX, emptyReport(), Options{}},
		{"empty.spdx.json", SPDX, emptyReport(), Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := write(t, tt.format, tt.report, tt.opts)
			checkGolden(t, tt.golden, got)
			// Writing is deterministic: no clock, no random IDs, no map
			// order.
			if again := write(t, tt.format, tt.report, tt.opts); !bytes.Equal(got, again) {
				t.Errorf("second Write gave different output")
			}
		})
	}
}

func TestFormats(t *testing.T) {
	want := []string{Table, JSON, SARIF, CycloneDX, SPDX}
	if diff := cmp.Diff(want, Formats()); diff != "" {
		t.Errorf("Formats() mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, "xml", testReport(), Options{})
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("Write(xml) = %v, want ErrUnknownFormat", err)
	}
	for _, f := range Formats() {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not list format %q", err, f)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("Write(xml) wrote %q, want nothing", buf.String())
	}
}

func TestWriteEmptyFormatIsTable(t *testing.T) {
	r := testReport()
	if diff := cmp.Diff(string(write(t, Table, r, Options{})), string(write(t, "", r, Options{}))); diff != "" {
		t.Errorf("format \"\" differs from table (-table +empty):\n%s", diff)
	}
}

func TestWriteNilReport(t *testing.T) {
	for _, format := range Formats() {
		if err := Write(&bytes.Buffer{}, format, nil, Options{}); err == nil {
			t.Errorf("Write(%s, nil) succeeded, want an error", format)
		}
	}
}

// TestWriteLeavesReportAlone checks that no writer sorts or fills in the
// caller's report.
func TestWriteLeavesReportAlone(t *testing.T) {
	for _, format := range Formats() {
		for _, r := range []*model.Report{testReport(), emptyReport()} {
			want := *r
			want.Packages = append([]model.Package(nil), r.Packages...)
			want.Findings = append([]model.Finding(nil), r.Findings...)
			write(t, format, r, Options{})
			if diff := cmp.Diff(&want, r); diff != "" {
				t.Errorf("Write(%s) changed the report (-before +after):\n%s", format, diff)
			}
		}
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestWriteReportsWriterError(t *testing.T) {
	for _, format := range Formats() {
		err := Write(failingWriter{}, format, testReport(), Options{})
		if !errors.Is(err, errDiskFull) {
			t.Errorf("Write(%s) to a failing writer = %v, want it to wrap %v", format, err, errDiskFull)
		}
		if err != nil && !strings.Contains(err.Error(), format) {
			t.Errorf("Write(%s) error %q does not name the format", format, err)
		}
	}
}

func TestDocumentUUID(t *testing.T) {
	r := testReport()
	later := testReport()
	later.CreatedAt = later.CreatedAt.Add(time.Second)
	other := testReport()
	other.Target.Name = "registry.example.com/shop/api:1.4.3"

	if documentUUID(r) != documentUUID(testReport()) {
		t.Errorf("documentUUID differs for equal reports")
	}
	if documentUUID(r) == documentUUID(later) {
		t.Errorf("documentUUID is the same for scans at different times")
	}
	if documentUUID(r) == documentUUID(other) {
		t.Errorf("documentUUID is the same for different targets")
	}
	if v := documentUUID(r).Version(); v != 5 {
		t.Errorf("documentUUID version = %d, want 5", v)
	}
}

// benchReport is a large scan: 400 packages with 5 findings each.
func benchReport() *model.Report {
	r := testReport()
	r.Packages, r.Findings = nil, nil
	severities := []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow, model.SeverityUnknown}
	for i := range 400 {
		p := model.Package{
			Name: fmt.Sprintf("pkg-%03d", i), Version: "1.0." + fmt.Sprint(i), Ecosystem: "npm",
			PURL: fmt.Sprintf("pkg:npm/pkg-%03d@1.0.%d", i, i), Path: "srv/app/package-lock.json",
			Extractor: "language/npm",
		}
		r.Packages = append(r.Packages, p)
		for j, sev := range severities {
			r.Findings = append(r.Findings, model.Finding{
				Package: p, VulnerabilityID: fmt.Sprintf("GHSA-%04d-%04d-%04d", i, j, i+j),
				Aliases:  []string{fmt.Sprintf("CVE-2024-%05d", i*5+j)},
				Summary:  "Prototype pollution in a widely used helper allows attackers to change object behaviour",
				Severity: sev, CVSSScore: 5.5, CVSSVector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N",
				FixedVersion: "2.0.0",
				References:   []string{"https://github.com/advisories/GHSA-0000-0000-0000"},
			})
		}
	}
	return r
}

func benchmarkWrite(b *testing.B, format string) {
	r := benchReport()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, format, r, Options{ToolVersion: testToolVersion}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
}

func BenchmarkWriteTable(b *testing.B)     { benchmarkWrite(b, Table) }
func BenchmarkWriteJSON(b *testing.B)      { benchmarkWrite(b, JSON) }
func BenchmarkWriteSARIF(b *testing.B)     { benchmarkWrite(b, SARIF) }
func BenchmarkWriteCycloneDX(b *testing.B) { benchmarkWrite(b, CycloneDX) }
func BenchmarkWriteSPDX(b *testing.B)      { benchmarkWrite(b, SPDX) }
