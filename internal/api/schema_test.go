package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// closeObjects forbids undocumented fields: every object schema with
// properties gets additionalProperties false, unless it says otherwise.
func closeObjects(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["properties"]; ok {
			if _, set := x["additionalProperties"]; !set {
				x["additionalProperties"] = false
			}
		}
		for _, c := range x {
			closeObjects(c)
		}
	case []any:
		for _, c := range x {
			closeObjects(c)
		}
	}
}

// schemas compiles the OpenAPI document's component schemas, closed.
func schemas(t *testing.T) func(name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDocument))
	if err != nil {
		t.Fatal(err)
	}
	components := doc.(map[string]any)["components"].(map[string]any)
	closeObjects(components["schemas"])
	root := map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema", "components": components}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi.json", root); err != nil {
		t.Fatal(err)
	}
	return func(name string) *jsonschema.Schema {
		s, err := c.Compile("openapi.json#/components/schemas/" + name)
		if err != nil {
			t.Fatalf("compiling schema %s: %v", name, err)
		}
		return s
	}
}

// TestResponsesMatchTheirSchemas calls each endpoint with data in the
// store and validates the answer against the schema the OpenAPI document
// gives it, with undocumented fields forbidden.
func TestResponsesMatchTheirSchemas(t *testing.T) {
	f := newFixture(t)
	schema := schemas(t)
	ctx := context.Background()

	_, body := f.call(f.admin, "POST", "/api/v1/registries", map[string]any{"name": "hub", "type": "oci", "url": "localhost:5000",
		"pollInterval": "5m", "repositories": []string{"team/*"}, "credentials": map[string]string{"username": "u", "password": "p"}})
	var reg registryView
	json.Unmarshal(body, &reg)
	f.db.RecordPoll(ctx, reg.ID, time.Now(), "listing failed")
	f.db.SeeRepositories(ctx, reg.ID, []string{"team/app"}, time.Now())
	id, err := f.db.SeeImage(ctx, "sha256:"+strings.Repeat("c", 64), store.ImageRef{RegistryID: reg.ID, Host: "localhost:5000", Repository: "team/app", Tag: "v1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.db.SaveResult(ctx, id, store.Result{Packages: []model.Package{{Name: "curl", Version: "7"}}, Platform: "linux/amd64", OS: "debian 12",
		Warnings: []string{"w"}, DBBuilt: time.Now(), At: time.Now(),
		Findings: []model.Finding{{VulnerabilityID: "CVE-1", Aliases: []string{"DSA-1"}, Severity: model.SeverityHigh, CVSSScore: 7.5, FixedVersion: "8",
			Summary: "s", Package: model.Package{Name: "curl", Version: "7", Ecosystem: "Debian:12", PURL: "pkg:deb/debian/curl@7", Path: "/var/lib/dpkg/status"}}}})
	j := &store.Scan{Kind: store.ScanPull, Reason: "poll", RegistryID: reg.ID, Reference: "localhost:5000/team/app@sha256:x"}
	f.db.Enqueue(ctx, j)
	c, _ := f.db.Claim(ctx, "t", time.Minute)
	f.db.Fail(ctx, c.ID, "t", fmt.Errorf("boom"), time.Now())

	_, tokBody := f.call(f.admin, "POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "viewer", "expiresIn": "24h"})
	clusters := seedClusters(t, f)
	seedDecisions(t, f)
	alertIDs := seedAlerts(t, f)
	_, clusterBody := f.call(f.admin, "POST", "/api/v1/clusters", map[string]any{"name": "edge", "kubeconfig": testKubeconfig(t, nil)})

	for _, tc := range []struct {
		path, schema string
		body         []byte
	}{
		{"POST /api/v1/registries", "Registry", body},
		{"POST /api/v1/tokens", "Token", tokBody},
		{fmt.Sprintf("/api/v1/registries/%d", reg.ID), "Registry", nil},
		{"/api/v1/images/" + fmt.Sprint(id), "Image", nil},
		{"/api/v1/scans/" + fmt.Sprint(c.ID), "Scan", nil},
		{"POST /api/v1/clusters", "Cluster", clusterBody},
		{fmt.Sprintf("/api/v1/clusters/%d", clusters.prod), "Cluster", nil},
		{fmt.Sprintf("/api/v1/workloads/%d", clusters.workloads["prod/shop/web"]), "Workload", nil},
		{fmt.Sprintf("/api/v1/alerts/%d", alertIDs[0]), "Alert", nil},
	} {
		data := tc.body
		if data == nil {
			var code int
			code, data = f.call(f.admin, "GET", tc.path, nil)
			if code != 200 {
				t.Fatalf("GET %s = %d %s", tc.path, code, data)
			}
		}
		validate(t, schema(tc.schema), tc.path, data)
	}
	for _, tc := range []struct{ path, item string }{
		{"/api/v1/registries", "Registry"},
		{fmt.Sprintf("/api/v1/registries/%d/repositories", reg.ID), "Repository"},
		{"/api/v1/images", "Image"},
		{"/api/v1/findings?state=all", "Finding"},
		{"/api/v1/scans", "Scan"},
		{"/api/v1/tokens", "Token"},
		{"/api/v1/audit", "AuditEntry"},
		{"/api/v1/clusters", "Cluster"},
		{fmt.Sprintf("/api/v1/clusters/%d/namespaces", clusters.prod), "Namespace"},
		{"/api/v1/workloads", "Workload"},
		{"/api/v1/vulnerable-workloads?minSeverity=UNKNOWN", "VulnerableWorkload"},
		{"/api/v1/posture/findings?state=all", "PostureFinding"},
		{"/api/v1/posture/checks", "PostureCheck"},
		{"/api/v1/admission/decisions", "AdmissionDecision"},
		{"/api/v1/k8s-audit/events", "AuditEvent"},
		{"/api/v1/alerts", "Alert"},
		{"/api/v1/detection/rules", "DetectionRule"},
	} {
		code, data := f.call(f.admin, "GET", tc.path, nil)
		if code != 200 {
			t.Fatalf("GET %s = %d %s", tc.path, code, data)
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(data, &page); err != nil || len(page.Items) == 0 {
			t.Fatalf("GET %s: no items in %s", tc.path, data)
		}
		for _, item := range page.Items {
			validate(t, schema(tc.item), tc.path, item)
		}
	}
	_, data := f.call("", "GET", "/api/v1/images", nil)
	validate(t, schema("Error"), "an error", data)
}

func validate(t *testing.T, s *jsonschema.Schema, what string, data []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v in %s", what, err, data)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("%s does not match its schema: %v\n%s", what, err, data)
	}
}
