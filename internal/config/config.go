// Package config fills a command's flags from the three places a setting can
// come from, in order of precedence: the command line, a BULWARK_* environment
// variable, and a YAML config file. Every subcommand is configured through
// it, so a setting has one name everywhere: the flag --log-level is the
// variable BULWARK_LOG_LEVEL and the file key log-level.
//
// A config file is a YAML mapping. A key names a flag; a key that names a
// subcommand holds a mapping that applies to that subcommand only, and the
// more specific value wins:
//
//	log-level: info
//	db:
//	  db-dir: /var/lib/bulwark/db
//	server:
//	  log-level: debug
//
// Keys that name no flag or subcommand are errors, so a typo is caught
// rather than ignored. The package does not own the flags themselves: each
// command defines its own.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable the loader reads.
const EnvPrefix = "BULWARK_"

// MaxFileSize bounds a config file; anything larger is not a config file.
const MaxFileSize = 1 << 20

// ErrInvalid marks a config file that is not valid YAML of the expected shape.
var ErrInvalid = errors.New("invalid config file")

// EnvName returns the environment variable for a flag name:
// "log-level" becomes "BULWARK_LOG_LEVEL".
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flag))
}

// Section is one level of a config file: flag values and the sections of
// subcommands beneath it.
type Section struct {
	Values   map[string][]string
	Sections map[string]*Section
}

// File is a parsed config file.
type File struct {
	Path string
	Root *Section
}

// ReadFile reads and parses the config file at path.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config file %s: %w: larger than %d bytes", path, ErrInvalid, MaxFileSize)
	}
	file, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	file.Path = path
	return file, nil
}

// Parse parses a config file's contents. An empty document is an empty file.
func Parse(data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxFileSize)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &File{Root: newSection()}, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalid)
	}
	if len(doc.Content) == 0 {
		return &File{Root: newSection()}, nil
	}
	root, err := parseSection(doc.Content[0], "")
	if err != nil {
		return nil, err
	}
	return &File{Root: root}, nil
}

func newSection() *Section {
	return &Section{Values: map[string][]string{}, Sections: map[string]*Section{}}
}

func parseSection(n *yaml.Node, where string) (*Section, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return newSection(), nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: line %d: %s must be a mapping of keys to values", ErrInvalid, n.Line, describe(where))
	}
	s := newSection()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, fmt.Errorf("%w: line %d: keys must be non-empty strings", ErrInvalid, k.Line)
		}
		key := k.Value
		path := joinKey(where, key)
		if _, dup := s.Values[key]; dup {
			return nil, fmt.Errorf("%w: line %d: key %q given twice", ErrInvalid, k.Line, path)
		}
		if _, dup := s.Sections[key]; dup {
			return nil, fmt.Errorf("%w: line %d: key %q given twice", ErrInvalid, k.Line, path)
		}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue
			}
			s.Values[key] = []string{v.Value}
		case yaml.SequenceNode:
			items := make([]string, 0, len(v.Content))
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%w: line %d: %q must be a list of plain values", ErrInvalid, item.Line, path)
				}
				items = append(items, item.Value)
			}
			s.Values[key] = items
		case yaml.MappingNode:
			sub, err := parseSection(v, path)
			if err != nil {
				return nil, err
			}
			s.Sections[key] = sub
		default:
			// Aliases are refused outright: a config file has no use for
			// them, and expanding them is how YAML bombs work.
			return nil, fmt.Errorf("%w: line %d: %q: anchors and aliases are not supported", ErrInvalid, v.Line, path)
		}
	}
	return s, nil
}

func joinKey(where, key string) string {
	if where == "" {
		return key
	}
	return where + "." + key
}

func describe(where string) string {
	if where == "" {
		return "the document"
	}
	return fmt.Sprintf("%q", where)
}

// Validate checks that every key in the file names a flag of the command it
// sits under (or of one of that command's subcommands) or a subcommand.
func (f *File) Validate(root *cobra.Command) error {
	return validate(f.Root, root, "")
}

func validate(s *Section, cmd *cobra.Command, where string) error {
	for key, sub := range s.Sections {
		child := subcommand(cmd, key)
		if child == nil {
			return fmt.Errorf("%w: %q names no subcommand of %q", ErrInvalid, joinKey(where, key), cmd.CommandPath())
		}
		if err := validate(sub, child, joinKey(where, key)); err != nil {
			return err
		}
	}
	for key := range s.Values {
		if !flagInTree(cmd, key) {
			return fmt.Errorf("%w: %q names no flag of %q or its subcommands", ErrInvalid, joinKey(where, key), cmd.CommandPath())
		}
	}
	return nil
}

func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

func flagInTree(cmd *cobra.Command, name string) bool {
	if cmd.Flags().Lookup(name) != nil || cmd.PersistentFlags().Lookup(name) != nil || cmd.InheritedFlags().Lookup(name) != nil {
		return true
	}
	for _, c := range cmd.Commands() {
		if flagInTree(c, name) {
			return true
		}
	}
	return false
}

// Apply sets each of cmd's flags that the command line left unset: first
// from the environment (through lookupEnv), then from file, where file may
// be nil. Within the file, the section of the most specific command wins.
func Apply(cmd *cobra.Command, file *File, lookupEnv func(string) (string, bool)) error {
	fromFile := map[string][]string{}
	if file != nil {
		for _, s := range sectionsFor(file.Root, cmd) {
			for k, v := range s.Values {
				fromFile[k] = v
			}
		}
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		if v, ok := lookupEnv(EnvName(f.Name)); ok {
			if err := cmd.Flags().Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s: %w", EnvName(f.Name), err))
			}
			return
		}
		values, ok := fromFile[f.Name]
		if !ok {
			return
		}
		if err := setValues(cmd.Flags(), f, values); err != nil {
			errs = append(errs, fmt.Errorf("config file %s: key %q: %w", file.Path, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

func setValues(fs *pflag.FlagSet, f *pflag.Flag, values []string) error {
	if _, isSlice := f.Value.(pflag.SliceValue); !isSlice && len(values) != 1 {
		return fmt.Errorf("takes one value, got a list of %d", len(values))
	}
	if sv, isSlice := f.Value.(pflag.SliceValue); isSlice {
		if err := sv.Replace(values); err != nil {
			return err
		}
		f.Changed = true
		return nil
	}
	return fs.Set(f.Name, values[0])
}

// sectionsFor returns the file sections that apply to cmd, least specific
// first: the root, then one per subcommand on the way down to cmd.
func sectionsFor(root *Section, cmd *cobra.Command) []*Section {
	var path []string
	for c := cmd; c.HasParent(); c = c.Parent() {
		path = append([]string{c.Name()}, path...)
	}
	out := []*Section{root}
	s := root
	for _, name := range path {
		next, ok := s.Sections[name]
		if !ok {
			break
		}
		out = append(out, next)
		s = next
	}
	return out
}
