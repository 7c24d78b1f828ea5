package report

import (
	"bytes"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
)

func decodeCycloneDX(t *testing.T, data []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("decoding CycloneDX: %v", err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("bomFormat, specVersion = %q, %v, want CycloneDX 1.6", bom.BOMFormat, bom.SpecVersion)
	}
	if bom.JSONSchema != "http://cyclonedx.org/schema/bom-1.6.schema.json" {
		t.Errorf("$schema = %q", bom.JSONSchema)
	}
	return &bom
}

func TestCycloneDX(t *testing.T) {
	r := testReport()
	bom := decodeCycloneDX(t, write(t, CycloneDX, r, Options{ToolVersion: testToolVersion}))

	if want := "urn:uuid:" + documentUUID(r).String(); bom.SerialNumber != want {
		t.Errorf("serialNumber = %q, want %q", bom.SerialNumber, want)
	}
	if bom.Metadata.Timestamp != "2025-03-14T09:26:53Z" {
		t.Errorf("timestamp = %q, want the report's creation time", bom.Metadata.Timestamp)
	}
	target := bom.Metadata.Component
	if target.Type != cdx.ComponentTypeContainer || target.Name != r.Target.Name || target.Version != r.Target.Digest {
		t.Errorf("metadata.component = %s %q %q, want the image", target.Type, target.Name, target.Version)
	}
	tools := *bom.Metadata.Tools.Components
	if len(tools) != 1 || tools[0].Name != "bulwark" || tools[0].Version != testToolVersion {
		t.Errorf("tools = %+v, want bulwark %s", tools, testToolVersion)
	}

	// Every package and the OS are components with unique refs.
	refs := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		if _, dup := refs[c.BOMRef]; dup {
			t.Errorf("bom-ref %q used twice", c.BOMRef)
		}
		refs[c.BOMRef] = c
	}
	if got, want := len(refs), len(r.Packages)+1; got != want {
		t.Errorf("%d components, want %d packages and the OS", got, want)
	}

	vulns := map[string]cdx.Vulnerability{}
	for _, v := range *bom.Vulnerabilities {
		vulns[v.ID] = v
		for _, a := range *v.Affects {
			if _, ok := refs[a.Ref]; !ok {
				t.Errorf("%s affects %q, which is no component", v.ID, a.Ref)
			}
		}
	}
	if got, want := len(vulns), 6; got != want {
		t.Errorf("%d vulnerabilities, want one per ID, %d", got, want)
	}

	// One vulnerability in two packages is listed once, affecting both.
	iconv := vulns["CVE-2024-2961"]
	var affected []string
	for _, a := range *iconv.Affects {
		affected = append(affected, refs[a.Ref].Name)
	}
	if diff := cmp.Diff([]string{"libc-bin", "libc6"}, affected); diff != "" {
		t.Errorf("CVE-2024-2961 affects (-want +got):\n%s", diff)
	}
	if iconv.Recommendation != "Upgrade to 2.36-9+deb12u7" {
		t.Errorf("recommendation = %q", iconv.Recommendation)
	}

	lodash := vulns["GHSA-35jh-r3h4-6jhm"]
	score := 7.2
	wantRatings := []cdx.VulnerabilityRating{{
		Source:   &cdx.Source{Name: "GitHub"},
		Score:    &score,
		Severity: cdx.SeverityHigh,
		Method:   cdx.ScoringMethodCVSSv31,
		Vector:   "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
	}}
	if diff := cmp.Diff(wantRatings, *lodash.Ratings); diff != "" {
		t.Errorf("lodash ratings (-want +got):\n%s", diff)
	}
	if lodash.Source == nil || lodash.Source.Name != "OSV" {
		t.Errorf("lodash source = %+v, want OSV", lodash.Source)
	}
	if refs := *lodash.References; len(refs) != 1 || refs[0].ID != "CVE-2021-23337" {
		t.Errorf("lodash references = %+v, want its CVE alias", refs)
	}
	if len(*lodash.Advisories) != 2 {
		t.Errorf("lodash advisories = %+v, want its 2 references", *lodash.Advisories)
	}

	if got := vulns["CVE-2010-4756"].Recommendation; got != "" {
		t.Errorf("recommendation without a fix = %q, want none", got)
	}
	if got := *vulns["GO-2024-2687"].Ratings; len(got) != 1 || got[0].Severity != cdx.SeverityUnknown || got[0].Score != nil {
		t.Errorf("GO-2024-2687 ratings = %+v, want one of unknown severity without a score", got)
	}
}

// TestCycloneDXRecommendationPerPackage covers one vulnerability fixed in
// different versions of the packages it affects.
func TestCycloneDXRecommendationPerPackage(t *testing.T) {
	r := testReport()
	for i, f := range r.Findings {
		if f.VulnerabilityID == "CVE-2024-2961" && f.Package.Name == "libc-bin" {
			r.Findings[i].FixedVersion = "2.36-9+deb12u8"
		}
	}
	bom := decodeCycloneDX(t, write(t, CycloneDX, r, Options{}))
	for _, v := range *bom.Vulnerabilities {
		if v.ID != "CVE-2024-2961" {
			continue
		}
		if want := "Upgrade libc-bin to 2.36-9+deb12u8; libc6 to 2.36-9+deb12u7"; v.Recommendation != want {
			t.Errorf("recommendation = %q, want %q", v.Recommendation, want)
		}
	}
}

// TestCycloneDXUnlistedPackage checks that a finding whose package the
// report does not list still points at a component.
func TestCycloneDXUnlistedPackage(t *testing.T) {
	r := testReport()
	r.Packages = nil
	bom := decodeCycloneDX(t, write(t, CycloneDX, r, Options{}))
	refs := map[string]bool{}
	for _, c := range *bom.Components {
		refs[c.BOMRef] = true
	}
	for _, v := range *bom.Vulnerabilities {
		for _, a := range *v.Affects {
			if !refs[a.Ref] {
				t.Errorf("%s affects %q, which is no component", v.ID, a.Ref)
			}
		}
	}
}

func TestCycloneDXEmpty(t *testing.T) {
	bom := decodeCycloneDX(t, write(t, CycloneDX, emptyReport(), Options{}))
	if bom.Metadata.Component.Type != cdx.ComponentTypeApplication {
		t.Errorf("directory target type = %q, want application", bom.Metadata.Component.Type)
	}
	if bom.Components != nil || bom.Vulnerabilities != nil {
		t.Errorf("components, vulnerabilities = %v, %v; want neither", bom.Components, bom.Vulnerabilities)
	}
}

func TestScoringMethod(t *testing.T) {
	tests := map[string]cdx.ScoringMethod{
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N": cdx.ScoringMethodCVSSv4,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H":                    cdx.ScoringMethodCVSSv31,
		"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H":                    cdx.ScoringMethodCVSSv3,
		"AV:N/AC:L/Au:N/C:P/I:P/A:P":                                      cdx.ScoringMethodCVSSv2,
		"":                                                                cdx.ScoringMethodOther,
	}
	for vector, want := range tests {
		if got := scoringMethod(vector); got != want {
			t.Errorf("scoringMethod(%q) = %q, want %q", vector, got, want)
		}
	}
}
