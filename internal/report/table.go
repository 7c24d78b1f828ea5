package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// titleWidth is how many characters of a summary the table shows.
const titleWidth = 60

// ANSI colors for severities. Every code has the same length: tabwriter
// counts their bytes as width, and equal lengths keep the column aligned.
// The header cell gets the terminal's default color for the same reason.
const (
	colorReset  = "\x1b[0m"
	colorHeader = "\x1b[0;39m"
)

var severityColors = map[model.Severity]string{
	model.SeverityCritical: "\x1b[1;31m",
	model.SeverityHigh:     "\x1b[0;31m",
	model.SeverityMedium:   "\x1b[0;33m",
	model.SeverityLow:      "\x1b[0;34m",
	model.SeverityNone:     "\x1b[0;32m",
	model.SeverityUnknown:  "\x1b[0;37m",
}

// writeTable writes r for a person at a terminal: what was scanned, one row
// per finding grouped by package, and the counts.
func writeTable(w io.Writer, r *model.Report, opts Options) error {
	// Everything goes to a buffer first, so a failing w is seen once.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)

	target := clean(r.Target.Name)
	if r.Target.Digest != "" {
		target += " (" + clean(r.Target.Digest) + ")"
	}
	fmt.Fprintf(tw, "Target:\t%s\n", target)
	if r.Target.Platform != "" {
		fmt.Fprintf(tw, "Platform:\t%s\n", clean(r.Target.Platform))
	}
	if r.OS != nil {
		fmt.Fprintf(tw, "OS:\t%s\n", osName(r.OS))
	}
	built := "unknown"
	if !r.Database.Built.IsZero() {
		built = r.Database.Built.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	fmt.Fprintf(tw, "Database:\tbuilt %s\n\n", built)

	if len(r.Findings) == 0 {
		fmt.Fprintln(tw, "No vulnerabilities found.")
	} else {
		writeFindingRows(tw, r.Findings, opts.Color)
		fmt.Fprintf(tw, "\n%s\n", severitySummary(r.Findings))
	}

	if n := len(r.Suppressed); n > 0 {
		fmt.Fprintf(tw, "Suppressed: %d\n", n)
	}
	if n := len(r.Unmatched); n > 0 {
		fmt.Fprintf(tw, "Unmatched: %d %s could not be checked\n", n, plural(n, "package", "packages"))
	}
	if n := len(r.Warnings); n > 0 {
		fmt.Fprintf(tw, "Warnings: %d (listed in the json report)\n", n)
	}

	if err := tw.Flush(); err != nil {
		return fmt.Errorf("formatting table: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// writeFindingRows writes the header and one row per finding. The package
// and ecosystem are shown on the first row of each package only, which
// groups the rows while keeping one aligned table.
func writeFindingRows(tw io.Writer, findings []model.Finding, color bool) {
	sevHeader := "SEVERITY"
	if color {
		sevHeader = colorHeader + sevHeader + colorReset
	}
	fmt.Fprintf(tw, "PACKAGE\tECOSYSTEM\tVULNERABILITY\t%s\tINSTALLED\tFIXED\tTITLE\n", sevHeader)

	var prev *model.Package
	for _, f := range sortedFindings(findings) {
		name, eco := "", ""
		if prev == nil || comparePackages(*prev, f.Package) != 0 {
			name, eco = clean(f.Package.Name), clean(f.Package.Ecosystem)
		}
		prev = &f.Package

		fixed := "-"
		if f.Fixable() {
			fixed = clean(f.FixedVersion)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			name, eco, clean(f.VulnerabilityID), severityCell(f.Severity, color),
			clean(f.Package.Version), fixed, truncate(clean(f.Summary), titleWidth))
	}
}

// severityCell shows s, colored if asked.
func severityCell(s model.Severity, color bool) string {
	s = severity(s)
	if !color {
		return string(s)
	}
	return severityColors[s] + string(s) + colorReset
}

// severitySummary counts findings by severity. NONE, which vulnerability
// records rarely give, is shown only when some finding has it.
func severitySummary(findings []model.Finding) string {
	var counts [6]int // indexed by Severity.Rank
	for _, f := range findings {
		counts[severity(f.Severity).Rank()]++
	}
	line := fmt.Sprintf("Total: %d (CRITICAL: %d, HIGH: %d, MEDIUM: %d, LOW: %d",
		len(findings), counts[5], counts[4], counts[3], counts[2])
	if counts[1] > 0 {
		line += fmt.Sprintf(", NONE: %d", counts[1])
	}
	return line + fmt.Sprintf(", UNKNOWN: %d)", counts[0])
}

func osName(o *model.OS) string {
	if o.PrettyName != "" {
		return clean(o.PrettyName)
	}
	return clean(strings.TrimSpace(o.ID + " " + o.VersionID))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// clean makes text from a scanned image or a vulnerability record safe to
// print on a terminal: a hostile package name must not move the cursor,
// recolor the screen, reorder text with bidi controls or break the table
// with tabs and newlines. Whitespace runs become one space; other control
// characters and invalid UTF-8 become U+FFFD.
func clean(s string) string {
	if isPlainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s { // invalid UTF-8 arrives as utf8.RuneError
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			r = utf8.RuneError
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isPlainASCII reports whether s is printable ASCII without runs of, or
// leading or trailing, spaces: text clean would return unchanged.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		if c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return false
		}
	}
	return true
}

// truncate shortens s to at most n characters, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return strings.TrimRight(string(runes[:n-1]), " ") + "…"
}
