package ruby

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// parseLockfile reads the gems of the GEM sections of a Bundler lock file:
//
//	GEM
//	  remote: https://rubygems.org/
//	  specs:
//	    nokogiri (1.13.8-x86_64-linux)
//	      racc (~> 1.4)
//
// Gems are the lines indented four spaces under "specs:"; the lines under
// them, indented six, are their requirements. A version is followed by the
// gem's platform, after a "-", for platform-specific gems. A gem locked
// for several platforms is one package.
func parseLockfile(ctx context.Context, data []byte, path string) ([]model.Package, error) {
	var pkgs []model.Package
	seen := make(map[[2]string]bool)
	var section string
	inSpecs := false
	for n, line := range strings.Split(string(data), "\n") {
		if n%ctxCheckEvery == ctxCheckEvery-1 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line = strings.TrimSuffix(line, "\r")
		switch {
		case line == "":
			continue
		case line[0] != ' ':
			section, inSpecs = line, false
			continue
		case section != "GEM":
			continue
		case !strings.HasPrefix(line, "    "):
			inSpecs = line == "  specs:"
			continue
		case !inSpecs || strings.HasPrefix(line, "      "):
			continue
		}
		name, version, ok := specLine(line[4:])
		if !ok {
			return nil, fmt.Errorf("parsing Bundler lock file %q: line %d: %.64q is not a gem and version: %w",
				path, n+1, line, extract.ErrMalformed)
		}
		key := [2]string{name, version}
		if seen[key] {
			continue
		}
		seen[key] = true
		if pkg, ok := newPackage(name, version, path); ok {
			pkgs = append(pkgs, pkg)
		}
	}
	return pkgs, nil
}

// specLine reads "NAME (VERSION[-PLATFORM])". Gem versions hold no "-":
// RubyGems rewrites "1.0-rc1" as "1.0.pre.rc1".
func specLine(s string) (name, version string, ok bool) {
	name, rest, ok := strings.Cut(s, " (")
	if !ok || !strings.HasSuffix(rest, ")") {
		return "", "", false
	}
	version, _, _ = strings.Cut(strings.TrimSuffix(rest, ")"), "-")
	return name, version, name != "" && version != ""
}
