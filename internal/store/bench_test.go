package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// BenchmarkFindingsList lists the first page of findings from an SQLite
// store holding 100,000 (100 images × 1,000), with the filters the API
// offers, and reports the 99th percentile as p99-ms.
func BenchmarkFindingsList(b *testing.B) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), SQLiteFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	seedFindings(b, db, 100, 1000)
	b.Logf("seeded 100,000 findings in %v", time.Since(start).Round(time.Millisecond))
	yes := true
	for _, tc := range []struct {
		name string
		f    FindingFilter
		deep bool
	}{
		{"all", FindingFilter{}, false},
		{"all-page50", FindingFilter{}, true},
		{"critical-fixable", FindingFilter{Severities: []model.Severity{model.SeverityCritical}, Fixable: &yes}, false},
		{"package", FindingFilter{Package: "pkg7"}, false},
		{"vulnerability", FindingFilter{Vulnerability: "CVE-V-77"}, false},
		{"repository", FindingFilter{Repository: "repo2", MinSeverity: model.SeverityHigh}, false},
		{"first-seen", FindingFilter{Sort: "-first_seen"}, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cur := ""
			if tc.deep {
				for i := 0; i < 49; i++ {
					_, next, err := db.Findings(ctx, tc.f, Page{Limit: 100, Cursor: cur})
					if err != nil {
						b.Fatal(err)
					}
					cur = next
				}
			}
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				page, _, err := db.Findings(ctx, tc.f, Page{Limit: 100, Cursor: cur})
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
				if len(page) == 0 {
					b.Fatal("empty page")
				}
			}
			slices.Sort(times)
			p99 := times[len(times)*99/100]
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkSaveResult stores a 1,000-finding scan result over the last
// one, as every re-match does.
func BenchmarkSaveResult(b *testing.B) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), SQLiteFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	id, err := db.SeeImage(ctx, "sha256:bench", ImageRef{}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var fs []model.Finding
	for j := 0; j < 1000; j++ {
		fs = append(fs, finding(fmt.Sprintf("V-%d", j), fmt.Sprintf("pkg%d", j%50), "1", "2", model.SeverityHigh))
	}
	for b.Loop() {
		if _, err := db.SaveResult(ctx, id, Result{Findings: fs, At: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}
