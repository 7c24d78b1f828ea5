package report

import (
	"cmp"
	"io"
	"net/url"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// osvURL is where a vulnerability ID is looked up; Bulwark's database is
// built from OSV records.
const osvURL = "https://osv.dev/vulnerability/"

// writeCycloneDX writes r as a CycloneDX 1.6 BOM with vulnerabilities: the
// target as the BOM's subject, one component per package and one
// vulnerability per ID, affecting every package it was found in.
func writeCycloneDX(w io.Writer, r *model.Report, opts Options) error {
	target := cdxTarget(r.Target)
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + documentUUID(r).String()
	bom.Metadata = &cdx.Metadata{
		Timestamp: timestamp(r.CreatedAt),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type:               cdx.ComponentTypeApplication,
			Name:               toolName,
			Version:            opts.ToolVersion,
			ExternalReferences: &[]cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: toolURI}},
		}}},
		Component: &target,
	}

	var components []cdx.Component
	if r.OS != nil {
		components = append(components, cdxOS(r.OS))
	}
	// Findings name their package in full; one whose package the report
	// does not list still gets a component, so every affects ref resolves.
	refs := map[string]bool{}
	addPackage := func(p model.Package) string {
		ref := packageRef(p)
		if !refs[ref] {
			refs[ref] = true
			components = append(components, cdxPackage(p, ref))
		}
		return ref
	}
	for _, p := range sortedPackages(r.Packages) {
		addPackage(p)
	}
	vulns := cdxVulnerabilities(sortedFindings(r.Findings), addPackage)

	// Empty lists are left out: the encoder drops them anyway.
	if len(components) > 0 {
		bom.Components = &components
	}
	if len(vulns) > 0 {
		bom.Vulnerabilities = &vulns
	}
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true).SetEscapeHTML(false)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

// cdxTarget describes what was scanned: an image or an image archive is a
// container, a directory an application.
func cdxTarget(t model.Target) cdx.Component {
	c := cdx.Component{
		BOMRef: "target:" + t.Name,
		Type:   cdx.ComponentTypeApplication,
		Name:   t.Name,
	}
	if t.Kind == model.TargetImage || t.Kind == model.TargetArchive {
		c.Type = cdx.ComponentTypeContainer
		c.Version = t.Digest
	}
	var props []cdx.Property
	props = appendProperty(props, "bulwark:target:kind", t.Kind)
	props = appendProperty(props, "bulwark:target:platform", t.Platform)
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func cdxOS(o *model.OS) cdx.Component {
	return cdx.Component{
		BOMRef:      "os:" + o.ID + "@" + o.VersionID,
		Type:        cdx.ComponentTypeOS,
		Name:        o.ID,
		Version:     o.VersionID,
		Description: o.PrettyName,
	}
}

func cdxPackage(p model.Package, ref string) cdx.Component {
	var props []cdx.Property
	props = appendProperty(props, "bulwark:ecosystem", p.Ecosystem)
	props = appendProperty(props, "bulwark:path", p.Path)
	props = appendProperty(props, "bulwark:layer", p.Layer)
	props = appendProperty(props, "bulwark:source-name", p.SourceName)
	props = appendProperty(props, "bulwark:source-version", p.SourceVersion)
	props = appendProperty(props, "bulwark:extractor", p.Extractor)
	c := cdx.Component{
		BOMRef:     ref,
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
	}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func appendProperty(props []cdx.Property, name, value string) []cdx.Property {
	if value == "" {
		return props
	}
	return append(props, cdx.Property{Name: name, Value: value})
}

// packageRef is a package's bom-ref: its package URL, which is readable,
// made unique by an ID for the package at its path, since the same
// package can be installed in several places.
func packageRef(p model.Package) string {
	base := p.PURL
	if base == "" {
		base = p.Ecosystem + "/" + p.Name + "@" + p.Version
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "package-id=" + packageID(p)
}

// packageID is a short stable ID for what makes an installed package
// distinct: the same package at the same path has the same ID in every
// document, whatever else the report holds.
func packageID(p model.Package) string {
	return shortHash(p.Ecosystem, p.Name, p.Version, p.Path)
}

// cdxVulnerabilities turns findings, in report order, into one
// vulnerability per ID that affects every package it was found in; ref
// returns a finding's package's bom-ref.
func cdxVulnerabilities(findings []model.Finding, ref func(model.Package) string) []cdx.Vulnerability {
	type upgrade struct{ name, version string }
	// ratingKey is what makes two ratings differ; ratings themselves hold
	// pointers and do not compare.
	type ratingKey struct {
		severity       model.Severity
		score          float64
		vector, source string
	}
	type entry struct {
		vuln       cdx.Vulnerability
		affects    []cdx.Affects
		ratings    []cdx.VulnerabilityRating
		ratingKeys []ratingKey
		upgrades   []upgrade
	}
	byID := map[string]*entry{}
	for _, f := range findings {
		e := byID[f.VulnerabilityID]
		if e == nil {
			e = &entry{vuln: cdxVulnerability(f)}
			byID[f.VulnerabilityID] = e
		}
		pkgRef := ref(f.Package)
		if !slices.ContainsFunc(e.affects, func(a cdx.Affects) bool { return a.Ref == pkgRef }) {
			e.affects = append(e.affects, cdx.Affects{
				Ref:   pkgRef,
				Range: &[]cdx.AffectedVersions{{Version: f.Package.Version, Status: cdx.VulnerabilityStatusAffected}},
			})
		}
		if key := (ratingKey{severity(f.Severity), f.CVSSScore, f.CVSSVector, f.SeveritySource}); !slices.Contains(e.ratingKeys, key) {
			e.ratingKeys = append(e.ratingKeys, key)
			e.ratings = append(e.ratings, cdxRating(f))
		}
		if up := (upgrade{f.Package.Name, f.FixedVersion}); f.Fixable() && !slices.Contains(e.upgrades, up) {
			e.upgrades = append(e.upgrades, up)
		}
	}

	vulns := make([]cdx.Vulnerability, 0, len(byID))
	for _, e := range byID {
		v := e.vuln
		v.Affects = &e.affects
		v.Ratings = &e.ratings
		versions := map[string]bool{}
		var steps []string
		for _, up := range e.upgrades {
			versions[up.version] = true
			steps = append(steps, up.name+" to "+up.version)
		}
		switch {
		case len(versions) == 1:
			v.Recommendation = "Upgrade to " + e.upgrades[0].version
		case len(versions) > 1:
			v.Recommendation = "Upgrade " + strings.Join(steps, "; ")
		}
		vulns = append(vulns, v)
	}
	slices.SortFunc(vulns, func(a, b cdx.Vulnerability) int { return cmp.Compare(a.ID, b.ID) })
	return vulns
}

// cdxVulnerability describes f's vulnerability, leaving out what depends
// on the package it was found in.
func cdxVulnerability(f model.Finding) cdx.Vulnerability {
	v := cdx.Vulnerability{
		ID:          f.VulnerabilityID,
		Source:      osvSource(f.VulnerabilityID),
		Description: f.Summary,
	}
	if len(f.Aliases) > 0 {
		refs := make([]cdx.VulnerabilityReference, 0, len(f.Aliases))
		for _, alias := range f.Aliases {
			refs = append(refs, cdx.VulnerabilityReference{ID: alias, Source: osvSource(alias)})
		}
		v.References = &refs
	}
	if len(f.References) > 0 {
		advisories := make([]cdx.Advisory, 0, len(f.References))
		for _, u := range f.References {
			advisories = append(advisories, cdx.Advisory{URL: u})
		}
		v.Advisories = &advisories
	}
	return v
}

func osvSource(id string) *cdx.Source {
	return &cdx.Source{Name: "OSV", URL: osvURL + url.PathEscape(id)}
}

// cdxRating is f's severity, with the CVSS score and vector it came from
// when there is one.
func cdxRating(f model.Finding) cdx.VulnerabilityRating {
	rating := cdx.VulnerabilityRating{
		Severity: cdx.Severity(strings.ToLower(string(severity(f.Severity)))),
		Method:   scoringMethod(f.CVSSVector),
		Vector:   f.CVSSVector,
	}
	if f.SeveritySource != "" {
		rating.Source = &cdx.Source{Name: f.SeveritySource}
	}
	if f.CVSSScore > 0 {
		score := f.CVSSScore
		rating.Score = &score
	}
	return rating
}

// scoringMethod names the CVSS version of a vector; a severity without one
// (a distribution's own rating) is "other".
func scoringMethod(vector string) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		return cdx.ScoringMethodCVSSv4
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		return cdx.ScoringMethodCVSSv3
	case strings.HasPrefix(vector, "AV:"), strings.HasPrefix(vector, "(AV:"):
		return cdx.ScoringMethodCVSSv2
	}
	return cdx.ScoringMethodOther
}
