package npm

import (
	"encoding/json"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// manifest holds the fields of an installed package.json the extractor
// reads; npm writes both for every package it installs.
type manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// parseManifest reads an installed package's package.json. One without a
// name or version was not installed from a registry (a directory a package
// ships, a placeholder) and yields no package.
func parseManifest(data []byte, path string) ([]model.Package, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parsing package.json %q: %w", path, err)
	}
	pkg, ok := newPackage(m.Name, m.Version, path)
	if !ok {
		return nil, nil
	}
	return []model.Package{pkg}, nil
}
