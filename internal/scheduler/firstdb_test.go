package scheduler_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/scheduler"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// TestWaitsForTheFirstDatabase starts a scheduler before any
// vulnerability database exists: the registry is listed and its image
// queued, no scan is attempted, and once a database is written the image
// is scanned.
func TestWaitsForTheFirstDatabase(t *testing.T) {
	reg := startRegistry(t)
	digest := reg.PushTarball(t, "app/slim:1.0", slimTar)
	db := openSQLite(t)
	addRegistry(t, db, reg, "local", store.RegistrySettings{}, time.Time{})
	dbDir := filepath.Join(t.TempDir(), "vulndb")
	start(t, scheduler.Options{Store: db, DBDir: dbDir})

	ctx := context.Background()
	var queued []store.Scan
	waitFor(t, "the image to be queued", func() (bool, error) {
		var err error
		queued, _, err = db.Scans(ctx, store.ScanFilter{Status: store.ScanQueued}, store.Page{})
		return len(queued) == 1, err
	})
	if queued[0].Attempts != 0 {
		t.Errorf("a scan was attempted without a database: %+v", queued[0])
	}

	built := newVulnDB(t)
	if err := os.MkdirAll(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(built, vulndb.FileName), filepath.Join(dbDir, vulndb.FileName)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the image to be scanned once the database exists", hasFinding(db, digest.DigestStr(), "CVE-2025-4802"))
}
