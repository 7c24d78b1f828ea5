package gobinary

import (
	"go/version"
	"strings"
)

// stdlibVersion turns the toolchain version a binary records into the
// semantic version OSV records the standard library under, the way the Go
// vulnerability database does: "go1.21.0" is "1.21.0", "go1.20" is
// "1.20.0", "go1.22rc1" is "1.22.0-rc.1".
//
// Text after the version is dropped: GOEXPERIMENT settings
// ("go1.24.0 X:nocoverageredesign"), a vendor's note
// ("go1.20.10 (Red Hat 1.20.10-1.el9)") and a custom toolchain suffix
// ("go1.21.0-bigcorp"), which go/version ignores too. Development
// toolchains ("devel go1.22-1b2c3d4 ...") are not a release, so no version
// describes them and ok is false.
func stdlibVersion(goVersion string) (v string, ok bool) {
	tag, _, _ := strings.Cut(goVersion, " ")
	tag, _, _ = strings.Cut(tag, "-")
	if !version.IsValid(tag) {
		return "", false
	}
	num := tag[len("go"):]
	var pre string
	for _, kind := range []string{"alpha", "beta", "rc"} {
		if before, n, found := strings.Cut(num, kind); found {
			num, pre = before, kind
			if n != "" {
				pre += "." + n
			}
			break
		}
	}
	parts := strings.Split(num, ".")
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	v = strings.Join(parts, ".")
	if pre != "" {
		v += "-" + pre
	}
	return v, true
}
