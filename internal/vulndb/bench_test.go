package vulndb

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// BenchmarkOpen measures opening the database built from all fixtures.
func BenchmarkOpen(b *testing.B) {
	fixtureDB(b)
	for b.Loop() {
		db, err := Open(fixtureDir)
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}

// BenchmarkMatch10k matches 10,000 packages, named after packages the Go,
// PyPI and crates.io data covers (so every lookup finds records to
// evaluate), against the database of all fixtures.
func BenchmarkMatch10k(b *testing.B) {
	db := fixtureDB(b)
	pkgs := samplePackages(b, db, 10000, "Go", "PyPI", "crates.io")
	b.ResetTimer()
	var findings int
	for b.Loop() {
		res, err := db.Match(context.Background(), pkgs)
		if err != nil {
			b.Fatal(err)
		}
		findings = len(res.Findings)
	}
	b.ReportMetric(float64(findings), "findings/op")
}

// samplePackages lists n packages cycling through the names indexed in the
// given ecosystems, at versions that are both affected and not.
func samplePackages(b *testing.B, db *DB, n int, ecosystems ...string) []model.Package {
	var names []model.Package
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIndex).Cursor()
		for _, eco := range ecosystems {
			prefix := []byte(eco + "\x00")
			last := ""
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				name := string(bytes.SplitN(k, []byte{0}, 3)[1])
				if name != last {
					names = append(names, model.Package{Name: name, Ecosystem: eco})
					last = name
				}
			}
		}
		return nil
	})
	if err != nil || len(names) == 0 {
		b.Fatalf("sampling package names: %v (%d names)", err, len(names))
	}
	versions := []string{"0.1.0", "1.0.0", "2.3.4", "0.0.1"}
	pkgs := make([]model.Package, n)
	for i := range pkgs {
		p := names[i%len(names)]
		p.Version = versions[i%len(versions)]
		pkgs[i] = p
	}
	return pkgs
}

// BenchmarkImportGo imports the Go export (4,291 records) into a new
// database.
func BenchmarkImportGo(b *testing.B) {
	for b.Loop() {
		w, err := Create(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if err := Import(context.Background(), w, "../../testdata/osv/Go/all.zip"); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch10kTypical matches 10,000 packages of which one in twenty
// has records in the database, closer to a real image, where most
// packages have no known vulnerability.
func BenchmarkMatch10kTypical(b *testing.B) {
	db := fixtureDB(b)
	known := samplePackages(b, db, 500, "Go", "PyPI", "crates.io")
	pkgs := make([]model.Package, 0, 10000)
	for i := range 10000 {
		if i%20 == 0 {
			pkgs = append(pkgs, known[i/20])
			continue
		}
		pkgs = append(pkgs, model.Package{Name: fmt.Sprintf("example.com/module%d", i), Version: "1.0.0", Ecosystem: []string{"Go", "PyPI", "crates.io"}[i%3]})
	}
	b.ResetTimer()
	var findings int
	for b.Loop() {
		res, err := db.Match(context.Background(), pkgs)
		if err != nil {
			b.Fatal(err)
		}
		findings = len(res.Findings)
	}
	b.ReportMetric(float64(findings), "findings/op")
}
