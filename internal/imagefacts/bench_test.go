package imagefacts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// BenchmarkImage reads the facts of an image with 200 open findings by
// tag: cached, and from the store (the first review after a scan).
func BenchmarkImage(b *testing.B) {
	db, err := store.OpenSQLite(context.Background(), b.TempDir()+"/bulwark.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	id, err := db.SeeImage(ctx, digestA, store.ImageRef{Host: "r.example", Repository: "team/app", Tag: "1"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var pkgs []model.Package
	var fs []model.Finding
	for i := range 200 {
		p := model.Package{Name: fmt.Sprintf("pkg-%d", i), Version: "1", Ecosystem: "Debian:12"}
		pkgs = append(pkgs, p)
		fs = append(fs, model.Finding{VulnerabilityID: fmt.Sprintf("CVE-2026-%04d", i), Severity: model.SeverityHigh, FixedVersion: "2", Package: p})
	}
	if _, err := db.SaveResult(ctx, id, store.Result{At: time.Now(), DBBuilt: time.Now(), Packages: pkgs, Findings: fs}); err != nil {
		b.Fatal(err)
	}
	p, err := New(Options{Store: db})
	if err != nil {
		b.Fatal(err)
	}
	for _, cached := range []bool{true, false} {
		b.Run(fmt.Sprintf("cached=%v", cached), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !cached {
					p.Forget(digestA)
				}
				f, err := p.Image(ctx, "r.example/team/app:1")
				if err != nil || len(f.Vulnerabilities) != 200 {
					b.Fatalf("%d vulnerabilities, %v", len(f.Vulnerabilities), err)
				}
			}
		})
	}
}
