package apk

import (
	"bytes"
	"context"
	"io"

	"github.com/bulwarkhq/bulwark/internal/extract/textdb"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// entry holds the fields of one installed package that Extract uses; the
// others (checksums, file lists, dependencies) are skipped without being
// kept.
type entry struct {
	name    string
	version string
	arch    string
	origin  string
	seen    fieldSet
	line    int // the entry's first line
}

// fieldSet records which of the used fields an entry has.
type fieldSet uint8

const (
	fieldName fieldSet = 1 << iota
	fieldVersion
	fieldArch
	fieldOrigin
)

// parser reads the entries of an apk database: "X:value" lines, where X is
// a single letter naming the field, and a blank line after each package.
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

// next returns the next entry with at least one field, or nil at the end
// of the input.
func (p *parser) next(ctx context.Context) (*entry, error) {
	var e *entry
	for {
		if p.lines.Line()%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line, tooLong, err := p.lines.Next()
		if err == io.EOF {
			return e, nil
		}
		if err != nil {
			return nil, err
		}
		n := p.lines.Line()
		if tooLong {
			p.problems.Add(n, "line longer than %d bytes", MaxLineSize)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			if e != nil {
				return e, nil
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			p.problems.Add(n, "not a field: %q", truncate(line))
			continue
		}
		if e == nil {
			e = &entry{line: n}
		}
		p.setField(e, n, line[0], line[2:])
	}
}

func (p *parser) setField(e *entry, n int, key byte, value []byte) {
	var (
		dst   *string
		field fieldSet
	)
	switch key {
	case 'P':
		dst, field = &e.name, fieldName
	case 'V':
		dst, field = &e.version, fieldVersion
	case 'A':
		dst, field = &e.arch, fieldArch
	case 'o':
		dst, field = &e.origin, fieldOrigin
	default:
		return
	}
	if e.seen&field != 0 {
		// Most likely two packages without the blank line between
		// them; the first value is kept so that a later line cannot
		// quietly override what came before.
		p.problems.Add(n, "duplicate %c: field", key)
		return
	}
	e.seen |= field
	*dst = string(value)
}

// pkg turns an entry into a package. It reports false for malformed
// entries, which it records as problems.
func (p *parser) pkg(e *entry) (model.Package, bool) {
	switch {
	case e.name == "":
		p.problems.Add(e.line, "package has no P: (name) field")
		return model.Package{}, false
	case !validName(e.name):
		p.problems.Add(e.line, "invalid package name %q", truncate([]byte(e.name)))
		return model.Package{}, false
	case e.version == "":
		p.problems.Add(e.line, "package %s has no V: (version) field", e.name)
		return model.Package{}, false
	case !validVersion(e.version):
		p.problems.Add(e.line, "package %s has an invalid version %q", e.name, truncate([]byte(e.version)))
		return model.Package{}, false
	}
	if e.arch != "" && !validArch(e.arch) {
		p.problems.Add(e.line, "package %s has an invalid architecture %q", e.name, truncate([]byte(e.arch)))
		e.arch = ""
	}
	source := e.name
	if e.origin != "" {
		if validName(e.origin) {
			source = e.origin
		} else {
			p.problems.Add(e.line, "package %s has an invalid origin %q", e.name, truncate([]byte(e.origin)))
		}
	}
	return model.Package{
		Name:    e.name,
		Version: e.version,
		// An origin's packages are built together, at its version.
		SourceName:    source,
		SourceVersion: e.version,
	}, true
}

// maxValue bounds the names and versions taken from a file.
const maxValue = 256

// validName accepts apk package names: an alphanumeric followed by
// alphanumerics and "+-._".
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

// validVersion accepts the characters of apk versions
// ("1.2.4_git20230717-r4", "2.14.0-r5").
func validVersion(s string) bool {
	if s == "" || len(s) > maxValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' && c != '+' && c != '~' {
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
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
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
