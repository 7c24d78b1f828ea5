package java_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/extracttest"
	"github.com/bulwarkhq/bulwark/internal/extract/language/java"
	"github.com/bulwarkhq/bulwark/internal/model"
)

var _ extract.Extractor = java.New()

func TestRequired(t *testing.T) {
	tests := []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{path: "opt/java/log4j-1.2-1.2.17.jar", want: true},
		{path: "usr/share/java/netty-codec-http.jar", want: true},
		{path: "app.jar", want: true},
		{path: "usr/local/tomcat/webapps/ROOT.war", want: true},
		{path: "opt/jboss/app.ear", want: true},
		{path: "var/jenkins_home/plugins/git.jpi", want: true},
		{path: "var/jenkins_home/plugins/git.hpi", want: true},
		{path: "opt/app/module.par", want: true},
		{path: "opt/app/UPPER.JAR", want: true},
		{path: "opt/app/.jar", want: false},
		{path: "opt/app/app.jar.sha1", want: false},
		{path: "opt/app/app.zip", want: false},
		{path: "opt/app/jar", want: false},
		{path: "opt/app/app.jar", mode: fs.ModeDir, want: false},
		{path: "usr/share/java/log4j.jar", mode: fs.ModeSymlink, want: false},
	}
	e := java.New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := e.Required(tt.path, tt.mode|0o644, 100); got != tt.want {
				t.Errorf("Required(%q, %v) = %v, want %v", tt.path, tt.mode, got, tt.want)
			}
		})
	}
}

// TestExtractSlim reads the jars of the slim fixture image: one Maven
// built with its pom.properties, one Debian repackaged without.
func TestExtractSlim(t *testing.T) {
	tests := []struct {
		file string
		want []model.Package
	}{
		{
			file: "netty-codec-http-4.1.48.Final.jar",
			want: []model.Package{pkg("io.netty:netty-codec-http", "4.1.48.Final", "opt/java/netty-codec-http-4.1.48.Final.jar",
				"pkg:maven/io.netty/netty-codec-http@4.1.48.Final")},
		},
		{
			// Named by its Bundle-SymbolicName, org.apache.log4j.
			file: "log4j-1.2-1.2.17.jar",
			want: []model.Package{pkg("log4j:log4j", "1.2.17", "opt/java/log4j-1.2-1.2.17.jar", "pkg:maven/log4j/log4j@1.2.17")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := java.New().Extract(context.Background(), extracttest.File("opt/java/"+tt.file, readFixture(t, tt.file)))
			if err != nil {
				t.Fatalf("Extract() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExtractNested reads an ear holding a war holding jars, compressed
// and stored, the way application servers and Spring Boot lay them out.
func TestExtractNested(t *testing.T) {
	netty := readFixture(t, "netty-codec-http-4.1.48.Final.jar")
	log4j := readFixture(t, "log4j-1.2-1.2.17.jar")
	shaded := buildZip(
		entry{name: "META-INF/MANIFEST.MF", data: "Manifest-Version: 1.0\r\nImplementation-Version: 9.9\r\n\r\n"},
		pomProps("com.example", "shaded", "2.0.0"),
		pomProps("org.yaml", "snakeyaml", "1.33"),
		// The same artifact twice is one package.
		entry{name: "META-INF/maven/org.yaml/snakeyaml-copy/pom.properties", data: "groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n"},
	)
	war := buildZip(
		pomProps("com.example", "webapp", "1.0.0"),
		entry{name: "WEB-INF/lib/", data: ""},
		entry{name: "WEB-INF/lib/netty-codec-http-4.1.48.Final.jar", data: string(netty)},
		entry{name: "WEB-INF/lib/log4j-1.2-1.2.17.jar", data: string(log4j), store: true},
		entry{name: "WEB-INF/lib/shaded-2.0.0.jar", data: string(shaded)},
		entry{name: "WEB-INF/classes/app.properties", data: "version=1\n"},
	)
	bootJar := buildZip(
		entry{name: "META-INF/MANIFEST.MF", data: "Manifest-Version: 1.0\nImplementation-Title: boot\nImplementation-Version: 3.1.0\nImplementation-Vendor-Id: com.example\n\n"},
		entry{name: "BOOT-INF/lib/netty-codec-http-4.1.48.Final.jar", data: string(netty), store: true},
	)
	ear := buildZip(
		entry{name: "META-INF/application.xml", data: "<application/>"},
		entry{name: "webapp.war", data: string(war)},
		entry{name: "lib/boot-3.1.0.jar", data: string(bootJar), store: true},
	)

	const path = "opt/jboss/deployments/app.ear"
	got, err := java.New().Extract(context.Background(), extracttest.File(path, ear))
	if err != nil {
		t.Fatalf("Extract() error: %v", err)
	}
	const war1 = path + "!/webapp.war"
	want := []model.Package{
		pkg("com.example:webapp", "1.0.0", war1, "pkg:maven/com.example/webapp@1.0.0"),
		pkg("io.netty:netty-codec-http", "4.1.48.Final", war1+"!/WEB-INF/lib/netty-codec-http-4.1.48.Final.jar",
			"pkg:maven/io.netty/netty-codec-http@4.1.48.Final"),
		pkg("log4j:log4j", "1.2.17", war1+"!/WEB-INF/lib/log4j-1.2-1.2.17.jar", "pkg:maven/log4j/log4j@1.2.17"),
		pkg("com.example:shaded", "2.0.0", war1+"!/WEB-INF/lib/shaded-2.0.0.jar", "pkg:maven/com.example/shaded@2.0.0"),
		pkg("org.yaml:snakeyaml", "1.33", war1+"!/WEB-INF/lib/shaded-2.0.0.jar", "pkg:maven/org.yaml/snakeyaml@1.33"),
		pkg("com.example:boot", "3.1.0", path+"!/lib/boot-3.1.0.jar", "pkg:maven/com.example/boot@3.1.0"),
		pkg("io.netty:netty-codec-http", "4.1.48.Final", path+"!/lib/boot-3.1.0.jar!/BOOT-INF/lib/netty-codec-http-4.1.48.Final.jar",
			"pkg:maven/io.netty/netty-codec-http@4.1.48.Final"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
	}
}

func TestExtractFromManifest(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		manifest string // no manifest when empty
		want     []model.Package
	}{
		{
			name:     "symbolic name is groupId.artifactId",
			path:     "lib/jackson-databind-2.13.4.2.jar",
			manifest: "Manifest-Version: 1.0\nBundle-SymbolicName: com.fasterxml.jackson.core.jackson-databind\nBundle-Version: 2.13.4.2\n",
			want: []model.Package{pkg("com.fasterxml.jackson.core:jackson-databind", "2.13.4.2", "lib/jackson-databind-2.13.4.2.jar",
				"pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.13.4.2")},
		},
		{
			name:     "symbolic name drops the groupId's last part from the artifactId",
			path:     "lib/commons-lang3-3.12.0.jar",
			manifest: "Manifest-Version: 1.0\nImplementation-Vendor-Id: org.apache\nBundle-SymbolicName: org.apache.commons.lang3\nImplementation-Version: 3.12.0\n",
			want: []model.Package{pkg("org.apache.commons:commons-lang3", "3.12.0", "lib/commons-lang3-3.12.0.jar",
				"pkg:maven/org.apache.commons/commons-lang3@3.12.0")},
		},
		{
			name:     "known bundle over a misleading vendor id",
			path:     "lib/commons-io-2.5.jar",
			manifest: "Manifest-Version: 1.0\nImplementation-Vendor-Id: org.apache\nBundle-SymbolicName: org.apache.commons.io\nImplementation-Version: 2.5\n",
			want:     []model.Package{pkg("commons-io:commons-io", "2.5", "lib/commons-io-2.5.jar", "pkg:maven/commons-io/commons-io@2.5")},
		},
		{
			name:     "classifier kept in the version, OSGi version ignored",
			path:     "lib/guava-31.1-jre.jar",
			manifest: "Manifest-Version: 1.0\nBundle-SymbolicName: com.google.guava\nBundle-Version: 31.1.0.jre\n",
			want:     []model.Package{pkg("com.google.guava:guava", "31.1-jre", "lib/guava-31.1-jre.jar", "pkg:maven/com.google.guava/guava@31.1-jre")},
		},
		{
			name:     "vendor id",
			path:     "lib/log4j-1.2-api-2.17.1.jar",
			manifest: "Manifest-Version: 1.0\r\nImplementation-Vendor-Id: org.apache.logging.log4j\r\nImplementation-Version: 2.17.1\r\n\r\n",
			want: []model.Package{pkg("org.apache.logging.log4j:log4j-1.2-api", "2.17.1", "lib/log4j-1.2-api-2.17.1.jar",
				"pkg:maven/org.apache.logging.log4j/log4j-1.2-api@2.17.1")},
		},
		{
			name:     "version from the manifest",
			path:     "app/lib/tool.jar",
			manifest: "Manifest-Version: 1.0\nImplementation-Version: 1.4 1855 April 22 2006\n",
			want:     []model.Package{pkg("tool", "1.4", "app/lib/tool.jar", "")},
		},
		{
			name: "file name only",
			path: "app/lib/mystery-lib-0.9.1.jar",
			want: []model.Package{pkg("mystery-lib", "0.9.1", "app/lib/mystery-lib-0.9.1.jar", "")},
		},
		{
			name:     "no version anywhere",
			path:     "app/app.jar",
			manifest: "Manifest-Version: 1.0\nMain-Class: com.example.Main\nImplementation-Version: ${project.version}\n",
		},
		{name: "no version and no manifest", path: "app/app.jar"},
		{name: "name not an artifactId", path: "app/My App-1.0.jar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []entry
			if tt.manifest != "" {
				entries = append(entries, entry{name: "META-INF/MANIFEST.MF", data: tt.manifest})
			}
			entries = append(entries, entry{name: "com/example/Main.class", data: "\xca\xfe\xba\xbe"})
			got, err := java.New().Extract(context.Background(), extracttest.File(tt.path, buildZip(entries...)))
			if err != nil {
				t.Fatalf("Extract() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExtractHostile(t *testing.T) {
	good := pomProps("com.example", "good", "1.0")
	goodPkg := func(path string) model.Package {
		return pkg("com.example:good", "1.0", path, "pkg:maven/com.example/good@1.0")
	}
	const path = "app/app.war"
	tests := []struct {
		name    string
		content []byte
		want    []model.Package
		wantErr error // nil: no error; errAny: any error
		// inErr must be in the error's text.
		inErr string
	}{
		{
			name: "nested zip bomb claiming a small size",
			content: buildZip(good,
				bomb("WEB-INF/lib/bomb.jar", 1000, 64<<20)),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrMalformed,
			inErr:   path + "!/WEB-INF/lib/bomb.jar",
		},
		{
			name: "nested archive claiming more than deflate can give",
			content: buildZip(good,
				bomb("WEB-INF/lib/liar.jar", 60<<20, 1000)),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrMalformed,
			inErr:   "claims 62914560 bytes deflated from",
		},
		{
			name: "nested archive claiming a huge size",
			content: buildZip(good,
				bomb("WEB-INF/lib/huge.jar", 1<<40, 1<<20)),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrTooLarge,
			inErr:   path + "!/WEB-INF/lib/huge.jar",
		},
		{
			name: "pom.properties bomb",
			content: buildZip(good,
				bomb("META-INF/maven/x/y/pom.properties", 100, 16<<20)),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrMalformed,
			inErr:   "pom.properties",
		},
		{
			name:    "pom.properties too large",
			content: buildZip(good, entry{name: "META-INF/maven/x/y/pom.properties", data: strings.Repeat("#", 65<<10)}),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrTooLarge,
		},
		{
			name: "pom.properties without a version",
			content: buildZip(good,
				entry{name: "META-INF/maven/x/y/pom.properties", data: "groupId=x\nartifactId=y\nversion=${project.version}\n"}),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrMalformed,
		},
		{
			name:    "nested 6 deep",
			content: nest(6),
			want: []model.Package{
				pkg("com.example:level0", "1.0", path, "pkg:maven/com.example/level0@1.0"),
				pkg("com.example:level1", "1.0", path+"!/lib/level1.jar", "pkg:maven/com.example/level1@1.0"),
				pkg("com.example:level2", "1.0", path+"!/lib/level1.jar!/lib/level2.jar", "pkg:maven/com.example/level2@1.0"),
				pkg("com.example:level3", "1.0", path+"!/lib/level1.jar!/lib/level2.jar!/lib/level3.jar", "pkg:maven/com.example/level3@1.0"),
			},
			wantErr: extract.ErrTooLarge,
			inErr:   "lib/level3.jar!/lib/level4.jar",
		},
		{
			name: "corrupt nested archive",
			content: buildZip(good,
				entry{name: "WEB-INF/lib/corrupt.jar", data: "PK\x03\x04 this is not a zip file"}),
			want:    []model.Package{goodPkg(path)},
			wantErr: extract.ErrMalformed,
			inErr:   path + "!/WEB-INF/lib/corrupt.jar",
		},
		{
			name: "huge manifest line",
			content: buildZip(entry{name: "META-INF/MANIFEST.MF",
				data: "Manifest-Version: 1.0\nExport-Package: " + strings.Repeat("a", 2<<20) + "\nImplementation-Vendor-Id: com.example\n\n"}),
			wantErr: extract.ErrTooLarge,
			inErr:   "MANIFEST.MF",
		},
		{
			name:    "control characters in entry names",
			content: buildZip(entry{name: "lib/\x1b[31mred\n.jar", data: "not a zip"}),
			wantErr: extract.ErrMalformed,
			inErr:   "lib/\ufffd[31mred\ufffd.jar",
		},
		{name: "not a zip", content: []byte("#!/bin/sh\necho hello\n"), wantErr: extract.ErrMalformed},
		{name: "empty", content: nil, wantErr: extract.ErrMalformed},
		{name: "truncated", content: readFixture(t, "netty-codec-http-4.1.48.Final.jar")[:300000], wantErr: extract.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := java.New().Extract(context.Background(), extracttest.File(path, tt.content))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Extract() error: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Extract() = %v, want an error", got)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Extract() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("Extract() error %q does not name the file", err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.inErr) {
				t.Errorf("Extract() error %q does not contain %q", err, tt.inErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Extract() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// nest returns a jar holding a jar, depth deep, each with its own
// pom.properties.
func nest(depth int) []byte {
	var inner []byte
	for i := depth - 1; i >= 0; i-- {
		n := strconv.Itoa(i)
		entries := []entry{pomProps("com.example", "level"+n, "1.0")}
		if inner != nil {
			entries = append(entries, entry{name: "lib/level" + strconv.Itoa(i+1) + ".jar", data: string(inner)})
		}
		inner = buildZip(entries...)
	}
	return inner
}

func TestExtractTooLarge(t *testing.T) {
	f := &extract.File{Path: "app/app.jar", Size: 1<<30 + 1, Content: bytes.NewReader(nil)}
	_, err := java.New().Extract(context.Background(), f)
	if !errors.Is(err, extract.ErrTooLarge) {
		t.Errorf("Extract() error = %v, want %v", err, extract.ErrTooLarge)
	}
}

// errReadAt fails every read, as a layer that cannot be read does.
func TestExtractReadError(t *testing.T) {
	f := &extract.File{Path: "app/app.jar", Size: 4096, Content: extracttest.FailingContent{}}
	_, err := java.New().Extract(context.Background(), f)
	if !errors.Is(err, extracttest.ErrLayer) {
		t.Errorf("Extract() error = %v, want %v", err, extracttest.ErrLayer)
	}
	if errors.Is(err, extract.ErrMalformed) {
		t.Errorf("Extract() error = %v, a read failure taken for damage", err)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := java.New().Extract(ctx, extracttest.File("app/app.jar", nest(2)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract() error = %v, want %v", err, context.Canceled)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(nest(3))
	f.Add(buildZip(
		entry{name: "META-INF/MANIFEST.MF", data: "Manifest-Version: 1.0\r\nBundle-SymbolicName: a.b.c;singleton:=true\r\n Bundle-Version: 1\r\n\r\n"},
		entry{name: "lib/x-1.0.jar", data: string(buildZip(pomProps("a", "b", "1"))), store: true},
	))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00"))
	e := java.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		got, _ := e.Extract(context.Background(), extracttest.File("app/x-1.0.jar", data))
		for _, p := range got {
			if p.Name == "" || p.Version == "" || p.Ecosystem != "Maven" || !strings.HasPrefix(p.Path, "app/x-1.0.jar") {
				t.Errorf("Extract() returned %+v", p)
			}
			if strings.Contains(p.Name, ":") != strings.HasPrefix(p.PURL, "pkg:maven/") {
				t.Errorf("Extract() returned %+v: a package URL without a groupId or the reverse", p)
			}
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	content := readFixture(b, "netty-codec-http-4.1.48.Final.jar")
	e := java.New()
	f := extracttest.File("opt/java/netty-codec-http-4.1.48.Final.jar", content)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Extract(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
}

type entry struct {
	name, data string
	store      bool
	// raw, when set, is the header of data already compressed.
	raw *zip.FileHeader
}

func pomProps(group, artifact, version string) entry {
	return entry{
		name: "META-INF/maven/" + group + "/" + artifact + "/pom.properties",
		data: "#Created by Apache Maven 3.8.6\ngroupId=" + group + "\nartifactId=" + artifact + "\nversion=" + version + "\n",
	}
}

// bomb returns an entry whose header claims size bytes and whose data
// inflates to n zero bytes.
func bomb(name string, size uint64, n int) entry {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		panic(err)
	}
	zeros := make([]byte, n)
	if _, err := fw.Write(zeros); err != nil {
		panic(err)
	}
	if err := fw.Close(); err != nil {
		panic(err)
	}
	return entry{name: name, data: buf.String(), raw: &zip.FileHeader{
		Name:               name,
		Method:             zip.Deflate,
		CRC32:              crc32.ChecksumIEEE(zeros),
		CompressedSize64:   uint64(buf.Len()),
		UncompressedSize64: size,
	}}
}

// buildZip returns a zip archive of entries, in order.
func buildZip(entries ...entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		var w io.Writer
		var err error
		if e.raw != nil {
			w, err = zw.CreateRaw(e.raw)
		} else {
			method := zip.Deflate
			if e.store {
				method = zip.Store
			}
			w, err = zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		}
		if err == nil {
			_, err = io.WriteString(w, e.data)
		}
		if err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pkg(name, version, path, purl string) model.Package {
	return model.Package{Name: name, Version: version, Ecosystem: "Maven", PURL: purl, Path: path, Extractor: java.Name}
}
