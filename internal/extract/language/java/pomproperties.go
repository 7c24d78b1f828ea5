package java

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// isPomProperties reports whether an entry is Maven's record of the
// artifact an archive was built as:
// META-INF/maven/GROUP/ARTIFACT/pom.properties.
func isPomProperties(name string) bool {
	return strings.HasPrefix(name, "META-INF/maven/") && strings.HasSuffix(name, "/pom.properties")
}

// pomProperties returns the artifact a pom.properties entry names.
func (w *walker) pomProperties(src *source, f *zip.File, archive string) (model.Package, bool) {
	name := archive + "!/" + displayName(f.Name)
	if f.UncompressedSize64 > maxPomPropertiesSize {
		w.fail(fmt.Errorf("%q is %d bytes, over %d: %w", name, f.UncompressedSize64, maxPomPropertiesSize, extract.ErrTooLarge))
		return model.Package{}, false
	}
	if !w.take(f.UncompressedSize64, name) {
		return model.Package{}, false
	}
	data, err := readEntry(src, f, int64(f.UncompressedSize64), "pom.properties", name)
	if err != nil {
		w.fail(err)
		return model.Package{}, false
	}
	props := parseProperties(data)
	group, artifact, version := props["groupId"], props["artifactId"], props["version"]
	if !validID(group) || !validID(artifact) || !validVersion(version) {
		w.fail(fmt.Errorf("%q has no valid groupId, artifactId and version (%.64q, %.64q, %.64q): %w",
			name, group, artifact, version, extract.ErrMalformed))
		return model.Package{}, false
	}
	return newPackage(group, artifact, version, archive), true
}

// parseProperties reads the key=value lines of a Java properties file as
// Maven writes them; the first value of a key wins. Keys and values with
// escapes or line continuations, which Maven never writes for these keys,
// come out as written and fail validation.
func parseProperties(data []byte) map[string]string {
	props := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxPomPropertiesSize)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		key, value := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		if _, ok := props[key]; !ok {
			props[key] = value
		}
	}
	return props
}

// validID reports whether s can be a groupId or an artifactId: Maven
// allows letters, digits, "_", "-" and ".".
func validID(s string) bool {
	if s == "" || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validVersion reports whether s can be a Maven version: printable ASCII
// without spaces, and not an unexpanded build property ("${version}").
func validVersion(s string) bool {
	if s == "" || len(s) > maxFieldLen || strings.Contains(s, "${") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// maxFieldLen bounds a groupId, artifactId or version; real ones are far
// shorter.
const maxFieldLen = 256
