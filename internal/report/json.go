package report

import (
	"encoding/json"
	"io"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// writeJSON writes r in Bulwark's documented JSON schema, which is
// model.Report's own encoding: it is not reshaped here. Packages and
// findings are written as [] when there are none, so consumers can iterate
// without a null check, and a report that left SchemaVersion unset says
// the schema it is written in.
func writeJSON(w io.Writer, r *model.Report, _ Options) error {
	out := *r // a shallow copy: the caller's report is not changed
	if out.SchemaVersion == 0 {
		out.SchemaVersion = model.ReportSchemaVersion
	}
	if out.Packages == nil {
		out.Packages = []model.Package{}
	}
	if out.Findings == nil {
		out.Findings = []model.Finding{}
	}
	return encodeJSON(w, out)
}

// encodeJSON writes v indented, without escaping <, > and & (summaries and
// version ranges are full of them), followed by a newline.
func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
