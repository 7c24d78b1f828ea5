package report

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// tableRows returns the vulnerability IDs of the table's rows, in order.
func tableRows(t *testing.T, table string) []string {
	t.Helper()
	var ids []string
	in := false
	for line := range strings.Lines(table) {
		switch {
		case strings.HasPrefix(line, "PACKAGE"):
			in = true
		case in && strings.TrimSpace(line) == "":
			return ids
		case in:
			for _, field := range strings.Fields(line) {
				if strings.HasPrefix(field, "CVE-") || strings.HasPrefix(field, "GHSA-") || strings.HasPrefix(field, "GO-") {
					ids = append(ids, field)
					break
				}
			}
		}
	}
	return ids
}

func TestTableOrder(t *testing.T) {
	got := tableRows(t, string(write(t, Table, testReport(), Options{})))
	// Packages by name; within libc6 the HIGH finding before the LOW one.
	want := []string{
		"CVE-2024-2961",                  // libc-bin
		"CVE-2024-2961", "CVE-2010-4756", // libc6
		"CVE-2024-5535",                              // libssl3
		"GHSA-35jh-r3h4-6jhm", "GHSA-29mw-wpgm-hmr9", // lodash
		"GO-2024-2687", // stdlib
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table rows (-want +got):\n%s", diff)
	}
}

func TestTableLines(t *testing.T) {
	out := string(write(t, Table, testReport(), Options{}))
	for _, want := range []string{
		"Target:    registry.example.com/shop/api:1.4.2 (sha256:3f4e1a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f)\n",
		"OS:        Debian GNU/Linux 12 (bookworm)\n",
		"Database:  built 2025-03-14 06:00:00 UTC\n",
		"Total: 7 (CRITICAL: 1, HIGH: 3, MEDIUM: 1, LOW: 1, UNKNOWN: 1)\n",
		"Suppressed: 1\n",
		"Unmatched: 1 package could not be checked\n",
		"Warnings: 1 (listed in the json report)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The LOW finding has no fix, and its long summary is cut.
	low := regexp.MustCompile(`CVE-2010-4756\s+LOW\s+2\.36-9\+deb12u4\s+-\s+(.*)\n`).FindStringSubmatch(out)
	if low == nil {
		t.Fatalf("no row for CVE-2010-4756 with fixed version \"-\":\n%s", out)
	}
	if title := low[1]; len([]rune(title)) > titleWidth || !strings.HasSuffix(title, "…") {
		t.Errorf("title %q is not cut to %d characters", title, titleWidth)
	}
}

func TestTableEmpty(t *testing.T) {
	out := string(write(t, Table, emptyReport(), Options{}))
	if !strings.Contains(out, "No vulnerabilities found.\n") {
		t.Errorf("empty table lacks the no-vulnerabilities line:\n%s", out)
	}
	for _, unwanted := range []string{"PACKAGE", "Total:", "Suppressed:", "OS:"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("empty table has %q:\n%s", unwanted, out)
		}
	}
}

func TestTableNoneSeverityCounted(t *testing.T) {
	r := testReport()
	r.Findings[0].Severity = model.SeverityNone
	out := string(write(t, Table, r, Options{}))
	if want := "Total: 7 (CRITICAL: 1, HIGH: 2, MEDIUM: 1, LOW: 1, NONE: 1, UNKNOWN: 1)"; !strings.Contains(out, want) {
		t.Errorf("table lacks %q:\n%s", want, out)
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestTableColorAligned checks that colors change nothing but the colors:
// without its escape codes the colored table is the plain one, so the
// columns still line up.
func TestTableColorAligned(t *testing.T) {
	r := testReport()
	plain := string(write(t, Table, r, Options{}))
	colored := string(write(t, Table, r, Options{Color: true}))
	if colored == plain {
		t.Fatal("Color: true wrote no colors")
	}
	if diff := cmp.Diff(plain, ansi.ReplaceAllString(colored, "")); diff != "" {
		t.Errorf("colored table without escapes differs from plain (-plain +colored):\n%s", diff)
	}
}

// TestTableHostileText checks that text from a scanned image cannot drive
// the terminal or break the table.
func TestTableHostileText(t *testing.T) {
	r := testReport()
	r.Findings = r.Findings[:1]
	r.Findings[0].Package.Name = "evil\x1b]0;pwned\x07\x1b[2J\tname\nrow\u202eeman"
	r.Findings[0].Summary = "line one\r\nline two\xff"
	out := string(write(t, Table, r, Options{}))
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\xff", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("table contains %q:\n%q", bad, out)
		}
	}
	if !strings.Contains(out, "line one line two\uFFFD") {
		t.Errorf("summary not flattened to one line:\n%s", out)
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"lodash", "lodash"},
		{"Command Injection in lodash", "Command Injection in lodash"},
		{"  two\t\tspaces \n", "two spaces"},
		{"naïve ünïcode", "naïve ünïcode"},
		{"bell\x07", "bell\uFFFD"},
		{"esc\x1b[31mred", "esc\uFFFD[31mred"},
		{"bidi\u202eevil", "bidi\uFFFDevil"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"cut at space here", 8, "cut at…"},
		{"ünïcödé wörds", 5, "ünïc…"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
