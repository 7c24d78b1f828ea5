// Package osrelease identifies the operating system of a root filesystem
// from its os-release file (os-release(5)), and from etc/alpine-release
// where an Alpine os-release leaves out VERSION_ID. It owns reading and
// parsing those files; what the operating system means for matching
// (its OSV ecosystem) is extract.OS's business.
//
// The files come from images and are hostile: input is bounded, lines that
// do not parse are reported, never guessed at.
package osrelease

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

// Paths are the os-release files in the order they are consulted, relative
// to the root: etc/os-release wins and usr/lib/os-release is the fallback,
// as os-release(5) specifies.
var Paths = []string{"etc/os-release", "usr/lib/os-release"}

// AlpineReleasePath holds Alpine's full release ("3.19.1").
const AlpineReleasePath = "etc/alpine-release"

// MaxSize bounds the os-release files read. Real ones are well under 1 KiB.
const MaxSize = 64 << 10

// maxAlpineRelease bounds etc/alpine-release, a single short line.
const maxAlpineRelease = 256

// ErrSyntax marks a line that is not a valid os-release assignment.
var ErrSyntax = errors.New("os-release syntax error")

// Detect reads the operating system of the root fsys. It returns nil and no
// error when the root has no os-release (a scratch image). A malformed
// os-release yields what could be read together with the error.
//
// etc/os-release is usually a relative symlink to ../usr/lib/os-release;
// fsys is expected to resolve links within the root, and when
// etc/os-release cannot be opened Detect falls back to usr/lib/os-release.
func Detect(fsys fs.FS) (*extract.OS, error) {
	var (
		osInfo  *extract.OS
		err     error
		openErr error
		found   bool
	)
	for _, p := range Paths {
		f, oerr := fsys.Open(p)
		if oerr != nil {
			if !errors.Is(oerr, fs.ErrNotExist) {
				openErr = errors.Join(openErr, oerr)
			}
			continue
		}
		osInfo, err = parseOpen(f, p)
		found = true
		break
	}
	if !found {
		err = openErr
	}
	if osInfo == nil && err != nil {
		return nil, err
	}
	if osInfo != nil && (osInfo.ID != "alpine" || osInfo.VersionID != "") {
		return osInfo, err
	}

	// Alpine: an os-release without VERSION_ID, or none at all.
	v, aerr := readAlpineRelease(fsys)
	switch {
	case errors.Is(aerr, fs.ErrNotExist):
		return osInfo, err
	case aerr != nil:
		return osInfo, errors.Join(err, aerr)
	}
	if osInfo == nil {
		osInfo = &extract.OS{ID: "alpine", PrettyName: "Alpine Linux"}
	}
	osInfo.VersionID = v
	return osInfo, err
}

func parseOpen(f fs.File, name string) (*extract.OS, error) {
	defer f.Close()
	osInfo, err := Parse(f)
	if err != nil {
		return osInfo, fmt.Errorf("%s: %w", name, err)
	}
	return osInfo, nil
}

func readAlpineRelease(fsys fs.FS) (string, error) {
	f, err := fsys.Open(AlpineReleasePath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAlpineRelease+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", AlpineReleasePath, err)
	}
	if len(b) > maxAlpineRelease {
		return "", fmt.Errorf("%s: %w", AlpineReleasePath, extract.ErrTooLarge)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	v := strings.TrimSpace(string(line))
	if v == "" || !isVersion(v) {
		return "", fmt.Errorf("%s: %w: not a release number: %q", AlpineReleasePath, ErrSyntax, v)
	}
	return v, nil
}

// isVersion reports whether s looks like a release number ("3.19.1",
// "3.20.0_alpha20240329").
func isVersion(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-' || c == '+' || c == '~') {
			return false
		}
	}
	return true
}

// valid reports whether s is fit to show and store: UTF-8 without control
// characters other than tab.
func valid(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return false
		}
	}
	return true
}
