package rust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// The sources Cargo.lock records for crates.io: its git index, and since
// Cargo 1.68 its sparse index.
const (
	cratesIOGit    = "registry+https://github.com/rust-lang/crates.io-index"
	cratesIOSparse = "sparse+https://index.crates.io/"
)

// parseLockfile reads the [[package]] tables of a Cargo.lock, format
// versions 1 to 4. Cargo writes the file, so the parser reads the part of
// TOML Cargo writes: tables, arrays of tables, basic and literal strings,
// arrays and bare values such as numbers. Multi-line strings and inline
// tables, which Cargo never writes, are malformed input here.
func parseLockfile(ctx context.Context, data []byte, path string) ([]model.Package, error) {
	p := &lockParser{}
	if err := p.parse(ctx, data); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("parsing Cargo.lock %q: line %d: %w: %w", path, p.line, err, extract.ErrMalformed)
	}
	var pkgs []model.Package
	for _, lp := range p.pkgs {
		if lp.name == "" || lp.version == "" {
			return nil, fmt.Errorf("parsing Cargo.lock %q: line %d: package without a name or version: %w", path, lp.line, extract.ErrMalformed)
		}
		if lp.source != cratesIOGit && lp.source != cratesIOSparse {
			continue
		}
		if pkg, ok := newPackage(lp.name, lp.version, path); ok {
			pkgs = append(pkgs, pkg)
		}
	}
	return pkgs, nil
}

type lockPackage struct {
	name, version, source string
	// line is where the package's table starts.
	line int
}

type lockParser struct {
	pkgs []lockPackage
	// cur is the [[package]] table being read; nil in other tables.
	cur *lockPackage
	// depth is how deep in an array spanning lines the parser is.
	depth int
	line  int
}

// maxArrayDepth bounds the nesting of arrays; Cargo.lock's are flat.
const maxArrayDepth = 64

var (
	errUnsupported = errors.New("TOML syntax Cargo does not write")
	errSyntax      = errors.New("invalid TOML")
)

func (p *lockParser) parse(ctx context.Context, data []byte) error {
	for len(data) > 0 {
		p.line++
		if p.line%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if !utf8.Valid(line) {
			return errors.New("invalid UTF-8")
		}
		if err := p.parseLine(string(line)); err != nil {
			return err
		}
	}
	if p.depth > 0 {
		return errors.New("unterminated array")
	}
	return nil
}

func (p *lockParser) parseLine(line string) error {
	if p.depth > 0 {
		rest, err := p.skipArray(line)
		if err != nil {
			return err
		}
		return endOfLine(rest)
	}
	s := strings.TrimLeft(line, " \t")
	switch {
	case s == "" || s[0] == '#':
		return nil
	case strings.HasPrefix(s, "[["):
		end := strings.Index(s, "]]")
		if end < 0 {
			return errSyntax
		}
		p.cur = nil
		if strings.TrimSpace(s[2:end]) == "package" {
			p.pkgs = append(p.pkgs, lockPackage{line: p.line})
			p.cur = &p.pkgs[len(p.pkgs)-1]
		}
		return endOfLine(s[end+2:])
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return errSyntax
		}
		p.cur = nil
		return endOfLine(s[end+1:])
	}

	key, rest, err := parseKey(s)
	if err != nil {
		return err
	}
	var value string
	isString := false
	switch {
	case strings.HasPrefix(rest, `"""`) || strings.HasPrefix(rest, "'''") || strings.HasPrefix(rest, "{"):
		return errUnsupported
	case strings.HasPrefix(rest, `"`) || strings.HasPrefix(rest, "'"):
		value, rest, err = parseString(rest)
		isString = true
	case strings.HasPrefix(rest, "["):
		p.depth = 0
		rest, err = p.skipArray(rest)
	default:
		// A number, boolean or date: up to whitespace or a comment.
		if i := strings.IndexAny(rest, " \t#"); i >= 0 {
			rest = rest[i:]
		} else {
			rest = ""
		}
	}
	if err != nil {
		return err
	}
	if err := endOfLine(rest); err != nil {
		return err
	}
	if p.cur == nil {
		return nil
	}
	var field *string
	switch key {
	case "name":
		field = &p.cur.name
	case "version":
		field = &p.cur.version
	case "source":
		field = &p.cur.source
	default:
		return nil
	}
	if !isString {
		return fmt.Errorf("%s is not a string: %w", key, errSyntax)
	}
	if *field != "" {
		return fmt.Errorf("%s given twice: %w", key, errSyntax)
	}
	*field = value
	return nil
}

// parseKey returns the key of a key/value line and what follows the "=",
// without leading whitespace.
func parseKey(s string) (key, rest string, err error) {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "'") {
		key, rest, err = parseString(s)
		if err != nil {
			return "", "", err
		}
	} else {
		i := 0
		for i < len(s) && isBareKeyChar(s[i]) {
			i++
		}
		if i == 0 {
			return "", "", errSyntax
		}
		key, rest = s[:i], s[i:]
	}
	rest = strings.TrimLeft(rest, " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", errSyntax
	}
	return key, strings.TrimLeft(rest[1:], " \t"), nil
}

// isBareKeyChar reports whether c may appear in a bare or dotted key.
func isBareKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// parseString reads the basic ("...") or literal ('...') string s starts
// with, returning its value and what follows it.
func parseString(s string) (value, rest string, err error) {
	if s[0] == '\'' {
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", "", errors.New("unterminated string")
		}
		return s[1 : end+1], s[end+2:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", "", errors.New("unterminated string")
			}
			i++
			switch s[i] {
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\':
				b.WriteByte(s[i])
			case 'u', 'U':
				n := 4
				if s[i] == 'U' {
					n = 8
				}
				if i+n >= len(s) {
					return "", "", errors.New("invalid escape")
				}
				r, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
				if err != nil || !utf8.ValidRune(rune(r)) {
					return "", "", errors.New("invalid escape")
				}
				b.WriteRune(rune(r))
				i += n
			default:
				return "", "", errors.New("invalid escape")
			}
		case c < ' ' && c != '\t' || c == 0x7f:
			return "", "", errors.New("control character in a string")
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated string")
}

// skipArray reads the array s starts with, or continues, up to the end of
// the line or the array, keeping its depth in p.depth. It returns what
// follows the array when it ends on this line.
func (p *lockParser) skipArray(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			if p.depth++; p.depth > maxArrayDepth {
				return "", errors.New("arrays nested too deep")
			}
		case ']':
			if p.depth--; p.depth == 0 {
				return s[i+1:], nil
			}
			if p.depth < 0 {
				return "", errSyntax
			}
		case '"', '\'':
			if strings.HasPrefix(s[i:], `"""`) || strings.HasPrefix(s[i:], "'''") {
				return "", errUnsupported
			}
			_, rest, err := parseString(s[i:])
			if err != nil {
				return "", err
			}
			i = len(s) - len(rest) - 1
		case '#':
			return "", nil
		case '{':
			return "", errUnsupported
		}
	}
	return "", nil
}

// endOfLine checks that nothing but whitespace and a comment is left.
func endOfLine(rest string) error {
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" || rest[0] == '#' {
		return nil
	}
	return fmt.Errorf("unexpected %.32q: %w", rest, errSyntax)
}
