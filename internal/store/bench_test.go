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

// inventory is a cluster of 2,000 workloads in 40 namespaces with five
// pods each (10,000 pods), every pod running a sidecar and one of images
// distinct images; version changes the images of every tenth workload.
func inventory(images, version int) ClusterInventory {
	var inv ClusterInventory
	for n := 0; n < 40; n++ {
		inv.Namespaces = append(inv.Namespaces, ClusterNamespace{Name: fmt.Sprint("team-", n), Labels: map[string]string{"team": fmt.Sprint(n)}})
	}
	for i := 0; i < 2000; i++ {
		img := i % images
		if i%10 == 0 {
			img += version
		}
		cs := []WorkloadContainer{
			{Name: "app", Kind: ContainerRegular, Image: fmt.Sprintf("registry.example.com/app%d:v1", img), Digest: fmt.Sprintf("sha256:%064x", img)},
			{Name: "proxy", Kind: ContainerRegular, Image: "envoy:1.30", Digest: fmt.Sprintf("sha256:%064x", 1<<20)},
		}
		var exposure []string
		if i%7 == 0 {
			exposure = []string{fmt.Sprintf("Ingress web-%d", i)}
		}
		w := Workload{Namespace: fmt.Sprint("team-", i%40), Kind: "Deployment", Name: fmt.Sprint("app-", i), ServiceAccount: "default", Exposure: exposure}
		for p := 0; p < 5; p++ {
			w.Pods = append(w.Pods, WorkloadPod{Name: fmt.Sprintf("app-%d-%d", i, p), Node: fmt.Sprint("node-", (i+p)%50), Phase: "Running", Containers: cs})
		}
		inv.Workloads = append(inv.Workloads, w)
	}
	return inv
}

// BenchmarkReplaceInventory stores a 2,000-workload, 10,000-pod
// inventory in SQLite: into an empty cluster, over itself unchanged, and
// with a tenth of the workloads changed.
func BenchmarkReplaceInventory(b *testing.B) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), SQLiteFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	inv, changed := inventory(300, 0), inventory(300, 1000)
	b.Run("first", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			c := createCluster(b, db, fmt.Sprint("first-", n))
			if err := db.ReplaceInventory(ctx, c.ID, inv, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := createCluster(b, db, "steady")
	if err := db.ReplaceInventory(ctx, c.ID, inv, time.Now()); err != nil {
		b.Fatal(err)
	}
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if err := db.ReplaceInventory(ctx, c.ID, inv, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tenth-changed", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			next := inv
			if i%2 == 1 {
				next = changed
			}
			if err := db.ReplaceInventory(ctx, c.ID, next, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVulnerableWorkloads lists the first page of vulnerable
// workloads from an SQLite store holding a 2,000-workload cluster that
// runs 300 images, 100 of them scanned with 200 findings each, and
// reports the 99th percentile as p99-ms.
func BenchmarkVulnerableWorkloads(b *testing.B) {
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), SQLiteFile), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sevs := []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow, model.SeverityUnknown}
	for img := 0; img < 100; img++ {
		id, err := db.SeeImage(ctx, fmt.Sprintf("sha256:%064x", img*3), ImageRef{Host: "registry.example.com", Repository: fmt.Sprint("app", img*3)}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		var fs []model.Finding
		for j := 0; j < 200; j++ {
			fixed := ""
			if j%2 == 0 {
				fixed = "9"
			}
			fs = append(fs, finding(fmt.Sprintf("V-%d", (img*7+j)%1000), fmt.Sprintf("pkg%d", j), "1", fixed, sevs[(img+j)%len(sevs)]))
		}
		if _, err := db.SaveResult(ctx, id, Result{Packages: []model.Package{}, Findings: fs, At: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	c := createCluster(b, db, "prod")
	if err := db.ReplaceInventory(ctx, c.ID, inventory(300, 0), time.Now()); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    VulnerableWorkloadFilter
	}{
		{"any", VulnerableWorkloadFilter{}},
		{"critical", VulnerableWorkloadFilter{MinSeverity: model.SeverityCritical}},
		{"critical-fixable-cluster", VulnerableWorkloadFilter{ClusterID: c.ID, MinSeverity: model.SeverityCritical, Fixable: true}},
		{"namespace", VulnerableWorkloadFilter{Namespace: "team-7", MinSeverity: model.SeverityHigh}},
		{"vulnerability", VulnerableWorkloadFilter{Vulnerability: "CVE-V-77"}},
		{"exposed", VulnerableWorkloadFilter{Exposed: true, MinSeverity: model.SeverityCritical, Fixable: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				page, _, err := db.VulnerableWorkloads(ctx, tc.f, Page{Limit: 100})
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
				if len(page) == 0 {
					b.Fatal("empty page")
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
