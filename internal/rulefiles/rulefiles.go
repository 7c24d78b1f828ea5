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

// ReadEmbedded parses the files of fsys matching pattern, in name order,
// each with source "<source>:<file name>".
func ReadEmbedded[T any](fsys fs.FS, pattern, source string, parse Parse[T]) ([]T, error) {
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
	return out, nil
}
