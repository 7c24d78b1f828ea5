package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// TestJSONRoundTrip checks that the JSON report is model.Report's own
// schema: it decodes back to the report it was written from.
func TestJSONRoundTrip(t *testing.T) {
	want := testReport()
	var got model.Report
	if err := json.Unmarshal(write(t, JSON, want, Options{}), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, &got); diff != "" {
		t.Errorf("decoded report mismatch (-want +got):\n%s", diff)
	}
}

func TestJSONEmptyListsAreArrays(t *testing.T) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(write(t, JSON, emptyReport(), Options{}), &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"packages", "findings"} {
		if got := string(doc[key]); got != "[]" {
			t.Errorf("%s = %s, want []", key, got)
		}
	}
}

func TestJSONFillsSchemaVersion(t *testing.T) {
	r := testReport()
	r.SchemaVersion = 0
	var got model.Report
	if err := json.Unmarshal(write(t, JSON, r, Options{}), &got); err != nil {
		t.Fatal(err)
	}
	if got.SchemaVersion != model.ReportSchemaVersion {
		t.Errorf("schemaVersion = %d, want %d", got.SchemaVersion, model.ReportSchemaVersion)
	}
}

func TestJSONDoesNotEscapeHTML(t *testing.T) {
	r := testReport()
	r.Findings[0].Summary = "versions < 2.37 & > 2.30"
	if out := string(write(t, JSON, r, Options{})); !strings.Contains(out, `"versions < 2.37 & > 2.30"`) {
		t.Errorf("summary escaped in JSON output")
	}
}
