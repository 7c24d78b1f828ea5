package java

import (
	"archive/zip"
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

const manifestName = "META-INF/MANIFEST.MF"

// fromManifest returns the package an archive without pom.properties is
// taken to be, from its file name and the manifest entry f (nil when there
// is none).
func (w *walker) fromManifest(src *source, f *zip.File, archive string) (model.Package, bool) {
	var attrs map[string]string
	if f != nil {
		name := archive + "!/" + manifestName
		n := min(f.UncompressedSize64, maxManifestSize)
		if !w.take(n, name) {
			return model.Package{}, false
		}
		data, err := readEntry(src, f, int64(n), "manifest", name)
		if err != nil {
			w.fail(err)
		} else {
			var complete bool
			attrs, complete = parseManifest(data, n == f.UncompressedSize64)
			if !complete {
				w.fail(fmt.Errorf("%q: main section not within the first %d bytes; read in part: %w", name, maxManifestSize, extract.ErrTooLarge))
			}
		}
	}
	group, artifact, version, ok := coordinates(attrs, path.Base(archive))
	if !ok {
		return model.Package{}, false
	}
	return newPackage(group, artifact, version, archive), true
}

// parseManifest returns the attributes of a manifest's main section, the
// names lower-cased (they are case-insensitive), the first value of a name
// winning. whole says data is the whole manifest; when it is not, the main
// section may be cut short, and complete is false if it was.
//
// The format is the JAR File Specification's: "Name: value" lines of at
// most 72 bytes, longer values continued on lines starting with a space,
// sections separated by blank lines.
func parseManifest(data []byte, whole bool) (attrs map[string]string, complete bool) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	attrs = make(map[string]string)
	var key string
	var value strings.Builder
	flush := func() {
		if key != "" {
			if _, ok := attrs[key]; !ok {
				attrs[key] = strings.TrimSpace(value.String())
			}
		}
		key = ""
		value.Reset()
	}
	for len(data) > 0 {
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			if !whole {
				// A line cut off by the read limit. Unless it continues
				// the attribute before, that attribute is whole.
				if data[0] != ' ' {
					flush()
				}
				return attrs, false
			}
			i = len(data)
		}
		line := data[:i]
		data = data[i:]
		if len(data) > 1 && data[0] == '\r' && data[1] == '\n' {
			data = data[2:]
		} else if len(data) > 0 {
			data = data[1:]
		}
		switch {
		case len(line) == 0:
			flush()
			return attrs, true
		case line[0] == ' ':
			if key != "" {
				value.Write(line[1:])
			}
		default:
			flush()
			k, v, ok := bytes.Cut(line, []byte(":"))
			if ok {
				key = strings.ToLower(strings.TrimSpace(string(k)))
				value.Write(v)
			}
		}
	}
	flush()
	return attrs, whole
}

// coordinates infers the Maven coordinates of an archive that has no
// pom.properties from its file name and manifest attributes. It is a
// heuristic, and knowingly wrong at times:
//
//   - Maven tools name files artifactId-version[-classifier].jar. The name
//     splits before a "-" followed by a digit: the split leaving the
//     version the manifest states (Implementation-Version,
//     Bundle-Version), or else the last one ("log4j-1.2-api-2.17.1" is
//     log4j-1.2-api 2.17.1, "guava-31.1-jre" guava 31.1-jre). A file name
//     without a version is taken as the artifactId, and the version from
//     the manifest.
//   - The groupId is known for the bundles in knownBundles, by their OSGi
//     Bundle-SymbolicName. Otherwise it is read back out of the symbolic
//     name that maven-bundle-plugin derives from groupId and artifactId
//     ("com.fasterxml.jackson.core.jackson-databind",
//     "io.netty.codec-http" for io.netty:netty-codec-http), or else it is
//     the Implementation-Vendor-Id that maven-jar-plugin writes. Without
//     any of these it is unknown, and empty.
//
// ok is false when no artifactId or version was found.
func coordinates(attrs map[string]string, fileName string) (group, artifact, version string, ok bool) {
	base := fileName
	if ext := path.Ext(base); isArchive(base) {
		base = strings.TrimSuffix(base, ext)
	}
	var stated []string
	for _, k := range []string{"implementation-version", "bundle-version"} {
		// Some versions carry notes: "1.4 1855 April 22 2006".
		v, _, _ := strings.Cut(attrs[k], " ")
		if validVersion(v) {
			stated = append(stated, v)
		}
	}

	artifact = base
	for i := len(base) - 2; i > 0; i-- {
		if base[i] != '-' || !isDigit(base[i+1]) {
			continue
		}
		if version == "" {
			artifact, version = base[:i], base[i+1:]
		}
		for _, v := range stated {
			if base[i+1:] == v {
				artifact, version = base[:i], v
			}
		}
	}
	if version == "" && len(stated) > 0 {
		version = stated[0]
	}

	bsn, _, _ := strings.Cut(attrs["bundle-symbolicname"], ";")
	bsn = strings.TrimSpace(bsn)
	if known, found := knownBundles[bsn]; found {
		group, artifact, _ = strings.Cut(known, ":")
	} else if g := groupFromSymbolicName(bsn, artifact); g != "" {
		group = g
	} else if validID(attrs["implementation-vendor-id"]) {
		group = attrs["implementation-vendor-id"]
	}
	if !validID(artifact) || !validVersion(version) {
		return "", "", "", false
	}
	return group, artifact, version, true
}

// groupFromSymbolicName returns the groupId from which maven-bundle-plugin
// made the Bundle-SymbolicName bsn of artifact: bsn is groupId.artifactId,
// or, when artifactId starts with the last part of groupId and a "-",
// groupId.rest-of-artifactId.
func groupFromSymbolicName(bsn, artifact string) string {
	for i := strings.LastIndexByte(bsn, '.'); i > 0; i = strings.LastIndexByte(bsn[:i], '.') {
		group, rest := bsn[:i], bsn[i+1:]
		last := group[strings.LastIndexByte(group, '.')+1:]
		if (rest == artifact || last+"-"+rest == artifact) && validID(group) {
			return group
		}
	}
	return ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// knownBundles maps the Bundle-SymbolicName of widely deployed bundles
// whose groupId cannot be read back from it to their groupId:artifactId.
// Distributions ship these jars without Maven's metadata. Apache Commons
// components of the old one-part groupIds are named
// org.apache.commons.COMPONENT by the Commons parent POM; log4j 1.2 and
// Guava set their names by hand.
var knownBundles = map[string]string{
	"org.apache.log4j":               "log4j:log4j",
	"org.apache.commons.io":          "commons-io:commons-io",
	"org.apache.commons.codec":       "commons-codec:commons-codec",
	"org.apache.commons.collections": "commons-collections:commons-collections",
	"org.apache.commons.lang":        "commons-lang:commons-lang",
	"org.apache.commons.beanutils":   "commons-beanutils:commons-beanutils",
	"org.apache.commons.fileupload":  "commons-fileupload:commons-fileupload",
	"com.google.guava":               "com.google.guava:guava",
}
