package ruby

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// parseGemspec reads the name and version of an installed gem from the
// Ruby RubyGems writes for it (Gem::Specification#to_ruby):
//
//	# stub: rack 2.2.4 ruby lib
//
//	Gem::Specification.new do |s|
//	  s.name = "rack".freeze
//	  s.version = "2.2.4"
//
// The Ruby is not run. The name and version are read from assignments to
// the block variable of string literals ("x", 'x', %q{x}, with or without
// .freeze), or from the arguments of Gem::Specification.new("name",
// "version"), and failing both from the "# stub:" comment, which RubyGems
// itself reads to load installed gems without running their
// specifications.
func parseGemspec(ctx context.Context, data []byte, path string) ([]model.Package, error) {
	var name, version, stubName, stubVersion string
	blockVar := "s"
	lines := strings.Split(string(data), "\n")
	for n, line := range lines {
		if n%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if rest, ok := strings.CutPrefix(line, "# stub: "); ok && stubName == "" {
			if f := strings.Fields(rest); len(f) >= 2 {
				stubName, stubVersion = f[0], f[1]
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "Gem::Specification.new"); ok {
			if v := blockVariable(rest); v != "" {
				blockVar = v
			}
			if n, v, ok := constructorArgs(rest); ok && name == "" && version == "" {
				name, version = n, v
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, blockVar+".")
		if !ok {
			continue
		}
		attr, value, ok := strings.Cut(rest, "=")
		if !ok {
			continue
		}
		attr = strings.TrimSpace(attr)
		if attr != "name" && attr != "version" {
			continue
		}
		s, ok := stringLiteral(strings.TrimSpace(value))
		if !ok {
			continue
		}
		if attr == "name" && name == "" {
			name = s
		} else if attr == "version" && version == "" {
			version = s
		}
	}
	if name == "" || version == "" {
		name, version = stubName, stubVersion
	}
	if name == "" || version == "" {
		return nil, fmt.Errorf("gemspec %q has no literal name and version: %w", path, extract.ErrMalformed)
	}
	pkg, ok := newPackage(name, version, path)
	if !ok {
		return nil, fmt.Errorf("gemspec %q has an invalid name %.64q or version %.64q: %w", path, name, version, extract.ErrMalformed)
	}
	return []model.Package{pkg}, nil
}

// blockVariable returns the variable of "... do |s|" or "... { |s|".
func blockVariable(s string) string {
	i := strings.IndexByte(s, '|')
	if i < 0 {
		return ""
	}
	v, _, ok := strings.Cut(s[i+1:], "|")
	if !ok {
		return ""
	}
	v = strings.TrimSpace(v)
	for j := 0; j < len(v); j++ {
		c := v[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return ""
		}
	}
	return v
}

// constructorArgs reads the name and version passed to
// Gem::Specification.new: `("rack", "2.2.4")` or ` "rack", "2.2.4" do`.
func constructorArgs(s string) (name, version string, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "(")
	name, rest, ok := literalPrefix(strings.TrimSpace(s))
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutPrefix(strings.TrimSpace(rest), ",")
	if !ok {
		return "", "", false
	}
	version, _, ok = literalPrefix(strings.TrimSpace(rest))
	return name, version, ok
}

// stringLiteral reads s as a Ruby string literal, optionally frozen, with
// nothing after it but a comment.
func stringLiteral(s string) (string, bool) {
	v, rest, ok := literalPrefix(s)
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if rest != "" && rest[0] != '#' {
		return "", false
	}
	return v, true
}

// literalPrefix reads the string literal s starts with, and a .freeze
// after it: "x", 'x', or %q with any of its delimiters. Literals with
// interpolation ("#{...}") are code, and escapes other than of the
// delimiter and the backslash are not found in names and versions: both
// fail.
func literalPrefix(s string) (value, rest string, ok bool) {
	if len(s) < 2 {
		return "", "", false
	}
	var closing byte
	start := 1
	switch {
	case s[0] == '"' || s[0] == '\'':
		closing = s[0]
	case len(s) >= 4 && s[0] == '%' && (s[1] == 'q' || s[1] == 'Q'):
		switch s[2] {
		case '{':
			closing = '}'
		case '(':
			closing = ')'
		case '[':
			closing = ']'
		case '<':
			closing = '>'
		default:
			return "", "", false
		}
		start = 3
	default:
		return "", "", false
	}
	interpolates := s[0] == '"' || s[0] == '%' && s[1] == 'Q'
	var b strings.Builder
	for i := start; i < len(s); i++ {
		c := s[i]
		switch {
		case c == closing:
			rest = strings.TrimPrefix(s[i+1:], ".freeze")
			return b.String(), rest, true
		case c == '\\':
			if i+1 >= len(s) || (s[i+1] != closing && s[i+1] != '\\') {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		case c == '#' && i+1 < len(s) && s[i+1] == '{' && interpolates:
			return "", "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
