package rulefiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// lines parses a file into its lines, failing on a line "bad".
func lines(data []byte, source string) ([]string, error) {
	var out []string
	for _, l := range strings.Fields(string(data)) {
		if l == "bad" {
			return nil, errors.New(source + ": bad line")
		}
		out = append(out, l)
	}
	return out, nil
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"b.yaml": "b1 b2", "a.yml": "a1", "c.txt": "ignored", "sub.yaml/x.yaml": "nested"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadDir(dir, "rules", lines)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a1", "b1", "b2"}, got); diff != "" {
		t.Errorf("ReadDir (-want +got):\n%s", diff)
	}
	// Every broken file is reported, not only the first.
	for _, n := range []string{"d.yaml", "e.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("bad"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ReadDir(dir, "rules", lines)
	if err == nil || !strings.Contains(err.Error(), "d.yaml") || !strings.Contains(err.Error(), "e.yaml") {
		t.Errorf("err = %v, want both broken files named", err)
	}
	if _, err := ReadDir(filepath.Join(dir, "missing"), "rules", lines); err == nil || !strings.Contains(err.Error(), "rules directory") {
		t.Errorf("missing directory: err = %v", err)
	}
}

func TestReadEmbedded(t *testing.T) {
	fsys := fstest.MapFS{"r/b.yaml": {Data: []byte("b1")}, "r/a.yaml": {Data: []byte("a1 a2")}, "r/x.txt": {Data: []byte("no")}}
	var sources []string
	got, err := ReadEmbedded(fsys, "r/*.yaml", "builtin", func(data []byte, source string) ([]string, error) {
		sources = append(sources, source)
		return lines(data, source)
	}, func(x *string, source string) { *x = source + "/" + *x }, func(x string) string { return x })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"builtin/a1", "builtin/a2", "builtin/b1"}, got); diff != "" {
		t.Errorf("ReadEmbedded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"builtin:a.yaml", "builtin:b.yaml"}, sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
}

func TestParseItems(t *testing.T) {
	var doc struct {
		Items []yaml.Node `yaml:"items"`
	}
	if err := yaml.Unmarshal([]byte("items:\n  - id: a\n  - id: bad\n  - x: 1\n  - id: c\n"), &doc); err != nil {
		t.Fatal(err)
	}
	var names []string
	got, err := ParseItems(doc.Items, "f.yaml", func(n *yaml.Node, source string, i int) (string, error) {
		name := ItemName(n, "rule", i)
		names = append(names, name)
		if name == "rule bad" || name == "rule #3 (line 4)" {
			return "", errors.New(source + ": " + name)
		}
		return name, nil
	})
	if err == nil || !strings.Contains(err.Error(), "rule bad") || !strings.Contains(err.Error(), "rule #3 (line 4)") || got != nil {
		t.Errorf("ParseItems = %v, %v; want both failures reported", got, err)
	}
	if diff := cmp.Diff([]string{"rule a", "rule bad", "rule #3 (line 4)", "rule c"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
}
