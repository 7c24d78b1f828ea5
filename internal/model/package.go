// Package model holds the core types shared across Bulwark: what a scan
// finds (packages), what the vulnerability database knows (vulnerabilities)
// and what a match produces (findings). It has no behaviour beyond small
// helpers on those types and imports nothing else of Bulwark.
package model

// Package is one installed package found in an image or a directory.
type Package struct {
	// Name is the package's name in its ecosystem (a dpkg binary package,
	// a Go module path, an npm package name).
	Name string `json:"name"`
	// Version is the installed version; empty when unknown, and then the
	// package is never matched by version.
	Version string `json:"version"`
	// Ecosystem is the OSV ecosystem the package is matched in; for
	// distribution packages it carries the release: "Debian:12",
	// "Alpine:v3.19", "Ubuntu:22.04".
	Ecosystem string `json:"ecosystem"`
	// SourceName and SourceVersion name the source package a distribution
	// built this binary package from; distribution advisories are keyed by
	// it. Empty where the ecosystem has no such notion.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// PURL is the package URL (github.com/package-url/purl-spec).
	PURL string `json:"purl,omitempty"`
	// Path is the file the package was read from, relative to the root.
	Path string `json:"path"`
	// Layer is the digest of the image layer that last wrote Path.
	Layer string `json:"layer,omitempty"`
	// Extractor names the extractor that found the package.
	Extractor string `json:"extractor"`
	// OwnedBy names the OS package that installed the file this language
	// package was read from. Such packages are listed but not matched in
	// their language ecosystem: distributions backport fixes without
	// changing the upstream version, and the OS package's own advisories
	// cover them.
	OwnedBy string `json:"ownedBy,omitempty"`
}

// MatchName is the name vulnerability records use for the package: the
// source package for distribution packages, the name otherwise.
func (p Package) MatchName() string {
	if p.SourceName != "" {
		return p.SourceName
	}
	return p.Name
}

// MatchVersion is the version vulnerability records use for the package.
func (p Package) MatchVersion() string {
	if p.SourceName != "" && p.SourceVersion != "" {
		return p.SourceVersion
	}
	return p.Version
}
