package dpkg

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract/textdb"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// stanza holds the fields of one database entry that Extract uses; the
// others are skipped without being kept.
type stanza struct {
	pkg     string
	version string
	source  string
	status  string
	arch    string
	seen    fieldSet
	line    int  // the stanza's first line
	dropped bool // already reported as unusable
}

// fieldSet records which of the used fields a stanza has.
type fieldSet uint8

const (
	fieldPackage fieldSet = 1 << iota
	fieldVersion
	fieldSource
	fieldArch
	fieldStatus
)

// parser reads the stanzas of a dpkg database (deb822: "Field: value"
// lines, continuation lines starting with a space or tab, stanzas
// separated by blank lines).
type parser struct {
	lines    *textdb.Reader
	problems textdb.Problems
}

func newParser(r io.Reader, path string) *parser {
	return &parser{
		lines:    textdb.NewReader(r, MaxLineSize),
		problems: textdb.Problems{Path: path, Kind: ErrMalformed},
	}
}

// ctxEvery is how many lines are read between checks of the context.
const ctxEvery = 4096

// next returns the next stanza with at least one field, or nil at the end
// of the input.
func (p *parser) next(ctx context.Context) (*stanza, error) {
	var (
		st      *stanza
		size    int
		inField bool // the last line was a field or its continuation
	)
	for {
		if p.lines.Line()%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line, tooLong, err := p.lines.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return nil, err
		}
		n := p.lines.Line()
		if tooLong {
			p.problems.Add(n, "line longer than %d bytes", MaxLineSize)
			size += MaxLineSize
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if st != nil {
				return st, nil
			}
			continue
		}
		if st == nil {
			st = &stanza{line: n}
		}
		size += len(line) + 1
		if size > MaxStanzaSize && !st.dropped {
			// An oversized stanza yields no package: which of its
			// fields to trust is anyone's guess.
			p.problems.Add(st.line, "stanza longer than %d bytes", MaxStanzaSize)
			st.dropped = true
		}
		if st.dropped {
			continue
		}
		switch line[0] {
		case ' ', '\t':
			if !inField {
				p.problems.Add(n, "continuation line outside a field")
			}
			continue
		case '#':
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validFieldName(name) {
			p.problems.Add(n, "not a field: %q", truncate(line))
			inField = false
			continue
		}
		inField = true
		p.setField(st, n, name, bytes.TrimSpace(value))
	}
}

// setField records the fields Extract uses. Field names are
// case-insensitive in deb822.
func (p *parser) setField(st *stanza, n int, name, value []byte) {
	var (
		dst   *string
		field fieldSet
	)
	switch {
	case bytes.EqualFold(name, []byte("Package")):
		dst, field = &st.pkg, fieldPackage
	case bytes.EqualFold(name, []byte("Version")):
		dst, field = &st.version, fieldVersion
	case bytes.EqualFold(name, []byte("Source")):
		dst, field = &st.source, fieldSource
	case bytes.EqualFold(name, []byte("Architecture")):
		dst, field = &st.arch, fieldArch
	case bytes.EqualFold(name, []byte("Status")):
		dst, field = &st.status, fieldStatus
	default:
		return
	}
	if st.seen&field != 0 {
		// dpkg refuses such a database; the first value is kept so that
		// a later line cannot quietly override what came before.
		p.problems.Add(n, "duplicate %s field", name)
		return
	}
	st.seen |= field
	*dst = string(value)
}

// onDisk lists the dpkg states in which a package's files are on disk:
// everything but "not-installed" and "config-files". Besides "installed"
// this keeps packages whose installation or removal did not finish; their
// (possibly vulnerable) files are present all the same.
var onDisk = map[string]bool{
	"installed":        true,
	"half-installed":   true,
	"unpacked":         true,
	"half-configured":  true,
	"triggers-awaited": true,
	"triggers-pending": true,
	"not-installed":    false,
	"config-files":     false,
}

// pkg turns a stanza into a package. It reports false for packages that
// are not installed, and for malformed stanzas, which it records as
// problems.
func (p *parser) pkg(st *stanza) (model.Package, bool) {
	if st.dropped {
		return model.Package{}, false
	}
	// status.d entries have no Status field: everything there is installed.
	if st.seen&fieldStatus != 0 {
		fields := strings.Fields(st.status)
		if len(fields) != 3 {
			p.problems.Add(st.line, "Status %q is not \"want flag state\"", truncate([]byte(st.status)))
			return model.Package{}, false
		}
		installed, known := onDisk[fields[2]]
		if !known {
			p.problems.Add(st.line, "Status %q has an unknown state", truncate([]byte(st.status)))
			return model.Package{}, false
		}
		if !installed {
			return model.Package{}, false
		}
	}
	switch {
	case st.pkg == "":
		p.problems.Add(st.line, "stanza has no Package field")
		return model.Package{}, false
	case !validName(st.pkg):
		p.problems.Add(st.line, "invalid Package %q", truncate([]byte(st.pkg)))
		return model.Package{}, false
	case st.version == "":
		p.problems.Add(st.line, "package %s has no Version field", st.pkg)
		return model.Package{}, false
	case !validVersion(st.version):
		p.problems.Add(st.line, "package %s has an invalid Version %q", st.pkg, truncate([]byte(st.version)))
		return model.Package{}, false
	}
	if st.arch != "" && !validArch(st.arch) {
		p.problems.Add(st.line, "package %s has an invalid Architecture %q", st.pkg, truncate([]byte(st.arch)))
		st.arch = ""
	}
	srcName, srcVersion := st.pkg, st.version
	if st.source != "" {
		name, version, err := parseSource(st.source)
		if err != nil {
			p.problems.Add(st.line, "package %s: %v", st.pkg, err)
		}
		if name != "" {
			srcName = name
		}
		if version != "" {
			srcVersion = version
		}
	}
	return model.Package{
		Name:          st.pkg,
		Version:       st.version,
		SourceName:    srcName,
		SourceVersion: srcVersion,
	}, true
}

// parseSource parses a Source field: "name" or "name (version)", the
// latter when the source version differs from the binary's. It returns
// what it could validate along with an error for the rest.
func parseSource(s string) (name, version string, err error) {
	name, rest, _ := strings.Cut(s, " ")
	if !validName(name) {
		return "", "", fmt.Errorf("invalid Source %q", truncate([]byte(s)))
	}
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return name, "", nil
	}
	if len(rest) < 3 || rest[0] != '(' || rest[len(rest)-1] != ')' || !validVersion(strings.TrimSpace(rest[1:len(rest)-1])) {
		return name, "", fmt.Errorf("invalid Source version in %q", truncate([]byte(s)))
	}
	return name, strings.TrimSpace(rest[1 : len(rest)-1]), nil
}

// maxValue bounds the names and versions taken from a file.
const maxValue = 256

// validName accepts dpkg package names: an alphanumeric followed by
// alphanumerics and "+-.", plus "_" which dpkg tolerates.
func validName(s string) bool {
	if s == "" || len(s) > maxValue || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '+' && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

// validVersion accepts the characters of deb-version(7):
// [epoch:]upstream[-revision].
func validVersion(s string) bool {
	if s == "" || len(s) > maxValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune(".+~:-", rune(c)) {
			return false
		}
	}
	return true
}

func validArch(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// validFieldName accepts deb822 field names: printable US-ASCII other than
// space and colon, not starting with "-".
func validFieldName(b []byte) bool {
	if len(b) == 0 || b[0] == '-' {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// truncate shortens b for an error message.
func truncate(b []byte) string {
	const limit = 60
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}
