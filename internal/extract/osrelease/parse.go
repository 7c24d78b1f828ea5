package osrelease

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

// maxReported bounds how many bad lines one error lists.
const maxReported = 5

// Parse reads an os-release file: newline-separated KEY=value assignments
// in the shell-compatible subset os-release(5) allows (single and double
// quotes, backslash escapes; "#" comments and blank lines are skipped).
//
// Input past MaxSize is refused with extract.ErrTooLarge. Lines that do not
// parse are skipped and reported in an error wrapping ErrSyntax that names
// their line numbers; the returned OS still holds what the other lines say,
// so one odd line does not hide the distribution.
func Parse(r io.Reader) (*extract.OS, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading os-release: %w", err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("os-release larger than %d bytes: %w", MaxSize, extract.ErrTooLarge)
	}
	vars, err := parseVars(b)
	return &extract.OS{
		ID:         vars["ID"],
		VersionID:  vars["VERSION_ID"],
		PrettyName: vars["PRETTY_NAME"],
	}, err
}

// parseVars returns the assignments in b; a later assignment of a key
// overrides an earlier one, as in a shell.
func parseVars(b []byte) (map[string]string, error) {
	vars := make(map[string]string)
	var bad []string
	nbad := 0
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte("\n"))
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		key, value, err := parseLine(s)
		if err != nil {
			nbad++
			if len(bad) < maxReported {
				bad = append(bad, fmt.Sprintf("line %d: %v", n, err))
			}
			continue
		}
		vars[key] = value
	}
	if nbad == 0 {
		return vars, nil
	}
	if nbad > len(bad) {
		bad = append(bad, fmt.Sprintf("and %d more bad lines", nbad-len(bad)))
	}
	return vars, fmt.Errorf("%w: %s", ErrSyntax, strings.Join(bad, "; "))
}

// parseLine parses one KEY=value line with surrounding space removed.
func parseLine(s string) (key, value string, err error) {
	key, raw, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", errors.New("not a KEY=value assignment")
	}
	if !isKey(key) {
		return "", "", fmt.Errorf("invalid variable name %q", truncate(key))
	}
	value, err = unquote(strings.TrimLeft(raw, " \t"))
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", key, err)
	}
	if !valid(value) {
		return "", "", fmt.Errorf("%s: value is not UTF-8 text without control characters", key)
	}
	return key, value, nil
}

// isKey reports whether s is a shell variable name. os-release(5) asks for
// upper case; lower case is accepted as the shell and systemd accept it.
func isKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// unquote evaluates a value as the shell would: unquoted text with
// backslash escapes, '...' taken literally and "..." in which a backslash
// escapes only $, `, " and \. Adjacent parts concatenate. Whitespace
// outside quotes is kept as written, as systemd's parser does, rather than
// splitting the line into a command.
func unquote(raw string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '\\':
			i++
			if i == len(raw) {
				return "", errors.New("trailing backslash")
			}
			sb.WriteByte(raw[i])
		case '\'':
			end := strings.IndexByte(raw[i+1:], '\'')
			if end < 0 {
				return "", errors.New("unterminated single quote")
			}
			sb.WriteString(raw[i+1 : i+1+end])
			i += 1 + end
		case '"':
			closed := false
			for i++; i < len(raw); i++ {
				c := raw[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' && i+1 < len(raw) && strings.IndexByte("$`\"\\", raw[i+1]) >= 0 {
					i++
					c = raw[i]
				}
				sb.WriteByte(c)
			}
			if !closed {
				return "", errors.New("unterminated double quote")
			}
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String(), nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const limit = 40
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
