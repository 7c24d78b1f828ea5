package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The header tags read, from rpm's include/rpm/rpmtag.h.
const (
	tagName      = 1000
	tagVersion   = 1001
	tagRelease   = 1002
	tagEpoch     = 1003
	tagArch      = 1022
	tagSourceRPM = 1044
)

// The tag data types read.
const (
	typeInt32       = 4
	typeString      = 6
	typeStringArray = 8
	typeI18NString  = 9
)

// Limits rpm itself puts on a header (lib/header.c: hdrchkTags and
// hdrchkData).
const (
	maxIndexEntries = 0xffff
	maxDataLength   = 0x0fffffff
)

const indexEntrySize = 16

// header holds the fields of a package header Extract uses.
type header struct {
	name, version, release string
	epoch                  uint32
	arch                   string
	sourceRPM              string
}

// indexEntry locates one tag's data in a header's data store.
type indexEntry struct {
	typ    uint32
	offset int32
	count  uint32
	found  bool
}

// parseHeader reads a package header as rpm keeps it in its database
// (rpm's "header blob"): an index-entry count and a data length, both
// big-endian 32-bit, then that many 16-byte index entries (tag, type,
// offset into the data store, count) and the data store. Entries rpm
// added after installation ("dribble" entries) follow those of the
// original header and replace them, so the last entry of a tag wins.
func parseHeader(b []byte) (header, error) {
	if len(b) < 8 {
		return header{}, fmt.Errorf("header of %d bytes is too short", len(b))
	}
	il := binary.BigEndian.Uint32(b)
	dl := binary.BigEndian.Uint32(b[4:])
	if il == 0 || il > maxIndexEntries {
		return header{}, fmt.Errorf("header has %d index entries", il)
	}
	if dl > maxDataLength {
		return header{}, fmt.Errorf("header data of %d bytes", dl)
	}
	dataStart := 8 + int64(il)*indexEntrySize
	if need := dataStart + int64(dl); need > int64(len(b)) {
		return header{}, fmt.Errorf("header of %d bytes is cut short, it needs %d", len(b), need)
	}
	index, data := b[8:dataStart], b[dataStart:dataStart+int64(dl)]

	var name, version, release, epoch, arch, sourceRPM indexEntry
	for e := index; len(e) >= indexEntrySize; e = e[indexEntrySize:] {
		var dst *indexEntry
		switch binary.BigEndian.Uint32(e) {
		case tagName:
			dst = &name
		case tagVersion:
			dst = &version
		case tagRelease:
			dst = &release
		case tagEpoch:
			dst = &epoch
		case tagArch:
			dst = &arch
		case tagSourceRPM:
			dst = &sourceRPM
		default:
			continue
		}
		*dst = indexEntry{
			typ:    binary.BigEndian.Uint32(e[4:]),
			offset: int32(binary.BigEndian.Uint32(e[8:])),
			count:  binary.BigEndian.Uint32(e[12:]),
			found:  true,
		}
	}

	var h header
	var errs []error
	str := func(e indexEntry, tag string, required bool) string {
		if !e.found {
			if required {
				errs = append(errs, fmt.Errorf("no %s tag", tag))
			}
			return ""
		}
		s, err := e.string(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s tag: %w", tag, err))
		}
		return s
	}
	h.name = str(name, "NAME", true)
	h.version = str(version, "VERSION", true)
	h.release = str(release, "RELEASE", true)
	h.arch = str(arch, "ARCH", false)
	h.sourceRPM = str(sourceRPM, "SOURCERPM", false)
	if epoch.found {
		var err error
		if h.epoch, err = epoch.int32(data); err != nil {
			errs = append(errs, fmt.Errorf("EPOCH tag: %w", err))
		}
	}
	return h, errors.Join(errs...)
}

// string returns the first string of a string tag.
func (e indexEntry) string(data []byte) (string, error) {
	switch e.typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return "", fmt.Errorf("type %d is not a string", e.typ)
	}
	if e.count == 0 {
		return "", errors.New("no value")
	}
	if e.offset < 0 || int64(e.offset) >= int64(len(data)) {
		return "", fmt.Errorf("offset %d is outside the %d bytes of data", e.offset, len(data))
	}
	s := data[e.offset:]
	end := bytes.IndexByte(s, 0)
	if end < 0 {
		return "", errors.New("string is not terminated")
	}
	return string(s[:end]), nil
}

// int32 returns the first number of an INT32 tag.
func (e indexEntry) int32(data []byte) (uint32, error) {
	if e.typ != typeInt32 {
		return 0, fmt.Errorf("type %d is not INT32", e.typ)
	}
	if e.count == 0 {
		return 0, errors.New("no value")
	}
	if e.offset < 0 || int64(e.offset)+4 > int64(len(data)) {
		return 0, fmt.Errorf("offset %d is outside the %d bytes of data", e.offset, len(data))
	}
	return binary.BigEndian.Uint32(data[e.offset:]), nil
}

// validate checks the fields before they are used in versions and PURLs.
// The character sets are those rpmbuild allows (build/parsePreamble.c),
// with epochs bounded as rpm prints them: signed 32-bit.
func (h header) validate() error {
	switch {
	case !validName(h.name):
		return errors.New("invalid NAME")
	case !validVersion(h.version):
		return fmt.Errorf("invalid VERSION %q", truncate(h.version))
	case !validVersion(h.release):
		return fmt.Errorf("invalid RELEASE %q", truncate(h.release))
	case h.arch != "" && !validArch(h.arch):
		return fmt.Errorf("invalid ARCH %q", truncate(h.arch))
	case h.epoch > 1<<31-1:
		return fmt.Errorf("invalid EPOCH %d", h.epoch)
	}
	return nil
}

// evr is the version as rpm, OSV and Red Hat write it:
// [EPOCH:]VERSION-RELEASE, with no epoch when it is 0.
func (h header) evr() string {
	vr := h.version + "-" + h.release
	if h.epoch == 0 {
		return vr
	}
	return strconv.FormatUint(uint64(h.epoch), 10) + ":" + vr
}

// maxField bounds names, versions and architectures; real ones are well
// under 100 bytes.
const maxField = 255

func validName(s string) bool    { return validChars(s, "._+-%{}") }
func validVersion(s string) bool { return validChars(s, "._+~^%{}") }
func validArch(s string) bool    { return validChars(s, "_") }

// validToken is for os-release IDs used in PURLs.
func validToken(s string) bool { return validChars(s, "._-") }

func validChars(s, punct string) bool {
	if s == "" || len(s) > maxField {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			continue
		}
		if c >= 0x80 || strings.IndexByte(punct, c) < 0 {
			return false
		}
	}
	return true
}

// truncate shortens a value quoted in an error.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
