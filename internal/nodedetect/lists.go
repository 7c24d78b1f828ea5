package nodedetect

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Names of the embedded domain lists (lists/<name>.txt).
const (
	ListMinerPools     = "miner-pools"
	ListUnusualTLDs    = "unusual-tlds"
	ListOASTDomains    = "oast-domains"
	ListTunnelServices = "tunnel-services"
	ListEntropyExempt  = "entropy-exempt"
)

// Bounds of a domain list.
const (
	maxListEntries = 100_000
	maxListBytes   = 8 << 20
)

// ErrInvalidList is wrapped by every error about a malformed domain list.
var ErrInvalidList = errors.New("invalid domain list")

var (
	listNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	labelPattern    = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)
)

// ParseList parses a domain list: one domain per line, '#' starts a
// comment. Entries are lower-cased; a leading "*." or "." and a trailing
// "." are dropped, since an entry always matches its subdomains too. An
// entry may start with "!" to take a domain out of the list it extends
// (see Options.Lists). source names the list in errors.
func ParseList(data []byte, source string) ([]string, error) {
	if len(data) > maxListBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, at most %d", source, ErrInvalidList, len(data), maxListBytes)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 4096)
	for line := 1; sc.Scan(); line++ {
		entry, _, _ := strings.Cut(sc.Text(), "#")
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if len(out) == maxListEntries {
			return nil, fmt.Errorf("%s: %w: more than %d entries", source, ErrInvalidList, maxListEntries)
		}
		norm, err := normalizeEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", source, line, err)
		}
		out = append(out, norm)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", source, ErrInvalidList, err)
	}
	return out, nil
}

// normalizeEntry checks one list entry and returns it in canonical form.
func normalizeEntry(entry string) (string, error) {
	remove := strings.HasPrefix(entry, "!")
	d := strings.ToLower(strings.TrimPrefix(entry, "!"))
	d = strings.TrimPrefix(strings.TrimPrefix(d, "*."), ".")
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 {
		return "", fmt.Errorf("%w: %q is not a domain name", ErrInvalidList, clip(entry))
	}
	for l := range strings.SplitSeq(d, ".") {
		if !labelPattern.MatchString(l) {
			return "", fmt.Errorf("%w: %q is not a domain name (label %q)", ErrInvalidList, clip(entry), clip(l))
		}
	}
	if remove {
		return "!" + d, nil
	}
	return d, nil
}

// LoadLists reads every <name>.txt file of dir (not recursively) as the
// domain list <name>, for Options.Lists. All files' errors are returned
// together.
func LoadLists(dir string) (map[string][]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the domain list directory %s: %w", dir, err)
	}
	out := map[string][]string{}
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".txt")
		if e.IsDir() || !ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if !listNamePattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: %w: list name %q must be lower-case letters, digits and '-'", p, ErrInvalidList, name))
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading domain list: %w", err))
			continue
		}
		l, err := ParseList(data, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = l
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

//go:embed lists/*.txt
var listFS embed.FS

var builtinLists = sync.OnceValues(func() (map[string][]string, error) {
	files, err := fs.Glob(listFS, "lists/*.txt")
	if err != nil {
		return nil, fmt.Errorf("listing embedded domain lists: %w", err)
	}
	out := map[string][]string{}
	for _, f := range files {
		data, err := fs.ReadFile(listFS, f)
		if err != nil {
			return nil, fmt.Errorf("reading embedded %s: %w", f, err)
		}
		if out[strings.TrimSuffix(path.Base(f), ".txt")], err = ParseList(data, "builtin:"+path.Base(f)); err != nil {
			return nil, err
		}
	}
	return out, nil
})

// BuiltinLists returns the embedded domain lists by name.
func BuiltinLists() (map[string][]string, error) {
	m, err := builtinLists()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out, nil
}

// domainSet matches a name or any of its parent domains.
type domainSet map[string]struct{}

// contains reports whether name or one of its parent domains is in s,
// without allocating.
func (s domainSet) contains(name string) bool {
	name = strings.TrimSuffix(name, ".")
	for name != "" {
		if _, ok := s[name]; ok {
			return true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
	}
	return false
}

// buildLists merges the user's lists into the embedded ones: entries add
// to a list of the same name (or make a new list), "!domain" entries take
// a domain out.
func buildLists(user map[string][]string) (map[string]domainSet, error) {
	base, err := builtinLists()
	if err != nil {
		return nil, err
	}
	out := map[string]domainSet{}
	for name, l := range base {
		s := make(domainSet, len(l))
		for _, d := range l {
			s[d] = struct{}{}
		}
		out[name] = s
	}
	names := make([]string, 0, len(user))
	for name := range user {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if !listNamePattern.MatchString(name) {
			errs = append(errs, fmt.Errorf("list %q: %w: name must be lower-case letters, digits and '-'", clip(name), ErrInvalidList))
			continue
		}
		s := out[name]
		if s == nil {
			s = domainSet{}
			out[name] = s
		}
		for _, entry := range user[name] {
			d, err := normalizeEntry(strings.TrimSpace(entry))
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s: %w", name, err))
				continue
			}
			if rest, ok := strings.CutPrefix(d, "!"); ok {
				delete(s, rest)
			} else {
				s[d] = struct{}{}
			}
		}
		if len(s) > maxListEntries {
			errs = append(errs, fmt.Errorf("list %s: %w: more than %d entries", name, ErrInvalidList, maxListEntries))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// clip shortens a hostile value quoted in an error.
func clip(s string) string { return clipString(s, 64) }
