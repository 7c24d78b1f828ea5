package report

import (
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/bulwarkhq/bulwark/internal/model"
)

const (
	spdxNamespaceBase = "https://bulwark.dev/spdx/"
	noAssertion       = "NOASSERTION"
	// Element IDs, without the "SPDXRef-" every ID is written with.
	spdxDocumentID = "DOCUMENT"
	spdxTargetID   = "Target"
	spdxOSID       = "OperatingSystem"
)

// errNoCreationTime is returned for a report without CreatedAt: SPDX
// requires a creation time, and a made-up one would be a lie.
var errNoCreationTime = errors.New("report has no creation time, which SPDX requires")

// writeSPDX writes r as an SPDX 2.3 document: the target as the package the
// document describes, containing one package per installed package. SPDX
// 2.3 has no vulnerability section; each finding is an advisory reference
// on its package.
func writeSPDX(w io.Writer, r *model.Report, opts Options) error {
	created := timestamp(r.CreatedAt)
	if created == "" {
		return errNoCreationTime
	}
	creator := toolName
	if opts.ToolVersion != "" {
		creator += "-" + opts.ToolVersion
	}
	name := r.Target.Name
	if name == "" {
		name = "unnamed-target"
	}

	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    spdxDocumentID,
		DocumentName:      name,
		DocumentNamespace: spdxNamespaceBase + spdxIDPart(name) + "-" + documentUUID(r).String(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: creator}},
			Created:  created,
		},
		Packages: []*spdx.Package{spdxTarget(r.Target, name)},
		Relationships: []*spdx.Relationship{
			spdxRelationship(spdxDocumentID, common.TypeRelationshipDescribe, spdxTargetID),
		},
	}
	contain := func(p *spdx.Package) {
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships,
			spdxRelationship(spdxTargetID, common.TypeRelationshipContains, p.PackageSPDXIdentifier))
	}
	if r.OS != nil {
		contain(spdxOS(r.OS))
	}

	// A finding whose package the report does not list still gets a
	// package, so every advisory has a home.
	byID := map[common.ElementID]*spdx.Package{}
	packageFor := func(p model.Package) *spdx.Package {
		id := spdxPackageID(p)
		if sp, ok := byID[id]; ok {
			return sp
		}
		sp := spdxPackage(p, id)
		byID[id] = sp
		contain(sp)
		return sp
	}
	for _, p := range sortedPackages(r.Packages) {
		packageFor(p)
	}
	for _, f := range sortedFindings(r.Findings) {
		sp := packageFor(f.Package)
		advisory := osvURL + url.PathEscape(f.VulnerabilityID)
		if !slices.ContainsFunc(sp.PackageExternalReferences, func(ref *spdx.PackageExternalReference) bool {
			return ref.Locator == advisory
		}) {
			sp.PackageExternalReferences = append(sp.PackageExternalReferences, &spdx.PackageExternalReference{
				Category: common.CategorySecurity,
				RefType:  common.TypeSecurityAdvisory,
				Locator:  advisory,
			})
		}
	}

	return spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false))
}

// spdxTarget is the package for what was scanned.
func spdxTarget(t model.Target, name string) *spdx.Package {
	p := &spdx.Package{
		PackageSPDXIdentifier:   spdxTargetID,
		PackageName:             name,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "APPLICATION",
	}
	if t.Kind == model.TargetImage || t.Kind == model.TargetArchive {
		p.PrimaryPackagePurpose = "CONTAINER"
		p.PackageVersion = t.Digest
	}
	return p
}

func spdxOS(o *model.OS) *spdx.Package {
	return &spdx.Package{
		PackageSPDXIdentifier:   spdxOSID,
		PackageName:             o.ID,
		PackageVersion:          o.VersionID,
		PackageDescription:      o.PrettyName,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "OPERATING-SYSTEM",
	}
}

func spdxPackage(p model.Package, id common.ElementID) *spdx.Package {
	sp := &spdx.Package{
		PackageSPDXIdentifier:   id,
		PackageName:             p.Name,
		PackageVersion:          p.Version,
		PackageDownloadLocation: noAssertion,
		// Bulwark does not read licenses; saying so is what SPDX asks.
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PrimaryPackagePurpose:   "LIBRARY",
	}
	if p.Path != "" {
		sp.PackageSourceInfo = "acquired package info from " + p.Path
		if p.Layer != "" {
			sp.PackageSourceInfo += " in layer " + p.Layer
		}
	}
	if p.PURL != "" {
		sp.PackageExternalReferences = []*spdx.PackageExternalReference{{
			Category: common.CategoryPackageManager,
			RefType:  common.TypePackageManagerPURL,
			Locator:  p.PURL,
		}}
	}
	return sp
}

// spdxPackageID is a package's element ID: its name for people, made
// unique by an ID for the package at its path.
func spdxPackageID(p model.Package) common.ElementID {
	return common.ElementID("Package-" + spdxIDPart(p.Name) + "-" + packageID(p))
}

func spdxRelationship(from, kind string, to common.ElementID) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.DocElementID{ElementRefID: common.ElementID(from)},
		RefB:         common.DocElementID{ElementRefID: to},
		Relationship: kind,
	}
}

// spdxIDPart keeps the characters SPDX allows in an element ID (letters,
// digits, '.' and '-') and turns the others into '-'; it is used for the
// document namespace too, where it keeps the URI readable and valid.
func spdxIDPart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, s)
}
