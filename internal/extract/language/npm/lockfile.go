package npm

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// lockfile holds the parts of package-lock.json the extractor reads.
// Version 1 lists packages in the nested "dependencies" tree; versions 2
// and 3 in the flat "packages" map, which version 2 repeats as
// "dependencies" for older npm.
//
// encoding/json refuses documents nested deeper than 10000 levels, which
// bounds the depth of the "dependencies" tree.
type lockfile struct {
	Packages     map[string]lockPackage    `json:"packages"`
	Dependencies map[string]lockDependency `json:"dependencies"`
}

type lockPackage struct {
	// Name is set where the package was installed under an alias, and for
	// the root and workspace entries.
	Name    string `json:"name"`
	Version string `json:"version"`
	// Link marks a symbolic link to a package elsewhere in the tree, such
	// as a workspace; its target has an entry of its own.
	Link bool `json:"link"`
}

type lockDependency struct {
	Version      string                    `json:"version"`
	Dependencies map[string]lockDependency `json:"dependencies"`
}

// ctxCheckEvery is how many entries are read between checks of the context.
const ctxCheckEvery = 1024

func parseLockfile(ctx context.Context, data []byte, path string) ([]model.Package, error) {
	var lock lockfile
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("parsing npm lock file %q: %w", path, err)
	}
	var pkgs []model.Package
	var err error
	if len(lock.Packages) > 0 {
		pkgs, err = fromPackages(ctx, lock.Packages, path)
	} else {
		pkgs, err = fromDependencies(ctx, lock.Dependencies, path)
	}
	if err != nil {
		return nil, err
	}
	// A package installed at several places in the tree is one package to
	// match; the order of JSON objects carries no meaning.
	slices.SortFunc(pkgs, func(a, b model.Package) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	return slices.CompactFunc(pkgs, func(a, b model.Package) bool {
		return a.Name == b.Name && a.Version == b.Version
	}), nil
}

// fromPackages reads lockfileVersion 2 and 3. Keys are install locations
// ("node_modules/a/node_modules/@s/b"); the root project ("") and workspace
// sources ("packages/x") are the project's own code, not installed
// packages.
func fromPackages(ctx context.Context, packages map[string]lockPackage, path string) ([]model.Package, error) {
	pkgs := make([]model.Package, 0, len(packages))
	n := 0
	for key, p := range packages {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		name, installed := installedName(key)
		if !installed || p.Link {
			continue
		}
		if p.Name != "" {
			name = p.Name
		}
		if pkg, ok := newPackage(name, p.Version, path); ok {
			pkgs = append(pkgs, pkg)
		}
	}
	return pkgs, nil
}

// installedName returns the package name of an install location: what
// follows its last node_modules directory.
func installedName(key string) (string, bool) {
	const dir = "node_modules/"
	for end := len(key); ; {
		i := strings.LastIndex(key[:end], dir)
		if i < 0 {
			return "", false
		}
		if i == 0 || key[i-1] == '/' {
			return key[i+len(dir):], true
		}
		end = i
	}
}

// fromDependencies reads lockfileVersion 1, walking the tree without
// recursion.
func fromDependencies(ctx context.Context, deps map[string]lockDependency, path string) ([]model.Package, error) {
	var pkgs []model.Package
	pending := []map[string]lockDependency{deps}
	n := 0
	for len(pending) > 0 {
		level := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		for name, d := range level {
			if n++; n%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			if len(d.Dependencies) > 0 {
				pending = append(pending, d.Dependencies)
			}
			name, version, ok := v1Version(name, d.Version)
			if !ok {
				continue
			}
			if pkg, ok := newPackage(name, version, path); ok {
				pkgs = append(pkgs, pkg)
			}
		}
	}
	return pkgs, nil
}

// v1Version resolves what lockfileVersion 1 records as a version. An alias
// ("string-width-cjs": "npm:string-width@4.2.3") installs another package;
// a "file:" version links a local directory, which is no installed package.
// Git and tarball URLs are kept as they are.
func v1Version(name, version string) (string, string, bool) {
	if strings.HasPrefix(version, "file:") {
		return "", "", false
	}
	if spec, ok := strings.CutPrefix(version, "npm:"); ok {
		at := strings.LastIndexByte(spec, '@')
		if at <= 0 {
			return "", "", false
		}
		return spec[:at], spec[at+1:], true
	}
	return name, version, true
}
