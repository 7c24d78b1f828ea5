// Package rulefiles reads the YAML files Bulwark's rule catalogues are
// kept in — posture checks, detection rules — from a user's directory or
// from the set embedded in the binary. What a file holds is the caller's:
// each passes its own parser.
package rulefiles

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Parse parses one file's content; source names the file in errors.
type Parse[T any] func(data []byte, source string) ([]T, error)

// ReadDir parses every *.yaml and *.yml file of dir (not recursively), in
// name order. Every file is read: the errors of all of them are returned
// together, so a user fixes them in one go. what names the items in errors
// ("checks", "rules").
func ReadDir[T any](dir, what string, parse Parse[T]) ([]T, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the %s directory %s: %w", what, dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if ext := filepath.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var (
		out  []T
		errs []error
	)
	for _, n := range names {
		p := filepath.Join(dir, n)
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", what, err))
			continue
		}
		items, err := parse(data, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, items...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ReadEmbedded parses the files of fsys matching pattern, each with source
// "<source>:<file name>", marks every item as from source (mark), and
// returns them sorted by id.
func ReadEmbedded[T any](fsys fs.FS, pattern, source string, parse Parse[T], mark func(*T, string), id func(T) string) ([]T, error) {
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return nil, fmt.Errorf("listing embedded files %s: %w", pattern, err)
	}
	var out []T
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("reading embedded %s: %w", f, err)
		}
		items, err := parse(data, source+":"+path.Base(f))
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	for i := range out {
		mark(&out[i], source)
	}
	sort.Slice(out, func(i, j int) bool { return id(out[i]) < id(out[j]) })
	return out, nil
}

// ParseItems parses each node of a file's list with parse, reporting the
// errors of all of them together.
func ParseItems[T any](nodes []yaml.Node, source string, parse func(node *yaml.Node, source string, index int) (T, error)) ([]T, error) {
	var (
		out  []T
		errs []error
	)
	for i := range nodes {
		item, err := parse(&nodes[i], source, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, item)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// ItemName names the item a mapping node holds in errors: "<kind> <id>"
// when it has an id, else "<kind> #<n> (line <l>)".
func ItemName(node *yaml.Node, kind string, index int) string {
	if node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(node.Content); i += 2 {
			if k := node.Content[i]; k.Value == "id" && node.Content[i+1].Kind == yaml.ScalarNode {
				return kind + " " + node.Content[i+1].Value
			}
		}
	}
	return fmt.Sprintf("%s #%d (line %d)", kind, index+1, node.Line)
}
