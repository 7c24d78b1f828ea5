package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

func decodeSPDX(t *testing.T, data []byte) *spdx.Document {
	t.Helper()
	var doc spdx.Document
	if err := spdxjson.ReadInto(bytes.NewReader(data), &doc); err != nil {
		t.Fatalf("decoding SPDX: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("spdxVersion, dataLicense, SPDXID = %q, %q, %q", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	checkSPDXRelationships(t, &doc)
	return &doc
}

// checkSPDXRelationships checks that IDs are unique and valid, that every
// relationship joins elements the document has, and that the document
// describes one package.
func checkSPDXRelationships(t *testing.T, doc *spdx.Document) {
	t.Helper()
	ids := map[common.ElementID]bool{doc.SPDXIdentifier: true}
	for _, p := range doc.Packages {
		if ids[p.PackageSPDXIdentifier] {
			t.Errorf("SPDXID %q used twice", p.PackageSPDXIdentifier)
		}
		if id := string(p.PackageSPDXIdentifier); spdxIDPart(id) != id {
			t.Errorf("SPDXID %q has characters SPDX does not allow", id)
		}
		ids[p.PackageSPDXIdentifier] = true
	}
	describes := 0
	for _, rel := range doc.Relationships {
		for _, end := range []common.DocElementID{rel.RefA, rel.RefB} {
			if !ids[end.ElementRefID] {
				t.Errorf("relationship %s %s %s names %q, which is not in the document",
					rel.RefA.ElementRefID, rel.Relationship, rel.RefB.ElementRefID, end.ElementRefID)
			}
		}
		if rel.Relationship == common.TypeRelationshipDescribe {
			describes++
			if rel.RefA.ElementRefID != "DOCUMENT" || rel.RefB.ElementRefID != spdxTargetID {
				t.Errorf("DESCRIBES from %s to %s, want DOCUMENT to the target", rel.RefA.ElementRefID, rel.RefB.ElementRefID)
			}
		}
	}
	if describes != 1 {
		t.Errorf("%d DESCRIBES relationships, want 1", describes)
	}
}

func TestSPDX(t *testing.T) {
	r := testReport()
	doc := decodeSPDX(t, write(t, SPDX, r, Options{ToolVersion: testToolVersion}))

	if want := "https://bulwark.dev/spdx/registry.example.com-shop-api-1.4.2-" + documentUUID(r).String(); doc.DocumentNamespace != want {
		t.Errorf("documentNamespace = %q, want %q", doc.DocumentNamespace, want)
	}
	ci := doc.CreationInfo
	if ci.Created != "2025-03-14T09:26:53Z" || len(ci.Creators) != 1 || ci.Creators[0] != (common.Creator{CreatorType: "Tool", Creator: "bulwark-" + testToolVersion}) {
		t.Errorf("creationInfo = %+v", ci)
	}

	// The target, the OS and one package per installed package, each
	// contained in the target.
	if got, want := len(doc.Packages), len(r.Packages)+2; got != want {
		t.Errorf("%d packages, want %d", got, want)
	}
	contained := map[common.ElementID]bool{}
	for _, rel := range doc.Relationships {
		if rel.Relationship == common.TypeRelationshipContains && rel.RefA.ElementRefID == spdxTargetID {
			contained[rel.RefB.ElementRefID] = true
		}
	}
	var lodash *spdx.Package
	for _, p := range doc.Packages {
		if p.PackageSPDXIdentifier != spdxTargetID && !contained[p.PackageSPDXIdentifier] {
			t.Errorf("package %s is not contained in the target", p.PackageSPDXIdentifier)
		}
		if p.PackageDownloadLocation != "NOASSERTION" {
			t.Errorf("package %s downloadLocation = %q", p.PackageSPDXIdentifier, p.PackageDownloadLocation)
		}
		if p.PackageName == "lodash" {
			lodash = p
		}
	}
	if lodash == nil {
		t.Fatal("no lodash package")
	}
	refs := map[string]string{}
	for _, ref := range lodash.PackageExternalReferences {
		refs[ref.Locator] = ref.Category + " " + ref.RefType
	}
	for locator, want := range map[string]string{
		"pkg:npm/lodash@4.17.20":                            "PACKAGE-MANAGER purl",
		"https://osv.dev/vulnerability/GHSA-35jh-r3h4-6jhm": "SECURITY advisory",
		"https://osv.dev/vulnerability/GHSA-29mw-wpgm-hmr9": "SECURITY advisory",
	} {
		if refs[locator] != want {
			t.Errorf("lodash externalRef %s = %q, want %q", locator, refs[locator], want)
		}
	}
}

func TestSPDXEmpty(t *testing.T) {
	doc := decodeSPDX(t, write(t, SPDX, emptyReport(), Options{}))
	if len(doc.Packages) != 1 || doc.Packages[0].PrimaryPackagePurpose != "APPLICATION" {
		t.Errorf("packages = %+v, want only the target directory", doc.Packages)
	}
	if got := doc.CreationInfo.Creators[0].Creator; got != "bulwark" {
		t.Errorf("creator without a tool version = %q, want bulwark", got)
	}
	if !strings.HasPrefix(doc.DocumentNamespace, "https://bulwark.dev/spdx/.-empty-") {
		t.Errorf("documentNamespace = %q", doc.DocumentNamespace)
	}
}

func TestSPDXNeedsCreationTime(t *testing.T) {
	r := emptyReport()
	r.CreatedAt = time.Time{}
	err := Write(&bytes.Buffer{}, SPDX, r, Options{})
	if !errors.Is(err, errNoCreationTime) {
		t.Errorf("Write(spdx) without a creation time = %v, want %v", err, errNoCreationTime)
	}
}
