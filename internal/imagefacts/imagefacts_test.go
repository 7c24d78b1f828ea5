package imagefacts

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/scheduler"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func newStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "bulwark.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// scanned stores a scanned image with one critical fixable and one
// unfixed finding under r.example/team/app:1.
func scanned(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	id, err := db.SeeImage(ctx, digestA, store.ImageRef{Host: "r.example", Repository: "team/app", Tag: "1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pkgs := []model.Package{{Name: "libc6", Version: "1", Ecosystem: "Debian:12"}, {Name: "zlib", Version: "1", Ecosystem: "Debian:12"}}
	_, err = db.SaveResult(ctx, id, store.Result{At: time.Now(), DBBuilt: time.Now(), Packages: pkgs, Findings: []model.Finding{
		{VulnerabilityID: "CVE-1", Aliases: []string{"DSA-1"}, Severity: model.SeverityCritical, FixedVersion: "2",
			Package: model.Package{Name: "libc6", Version: "1", Ecosystem: "Debian:12"}},
		{VulnerabilityID: "CVE-2", Severity: model.SeverityLow, Package: model.Package{Name: "zlib", Version: "1", Ecosystem: "Debian:12"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestImage(t *testing.T) {
	db := newStore(t)
	scanned(t, db)
	var asked atomic.Int32
	p, err := New(Options{Store: db, Resolve: func(ctx context.Context, ref name.Tag) (string, error) {
		asked.Add(1)
		if ref.TagStr() == "moved" {
			return digestA, nil
		}
		return "", errors.New("manifest unknown")
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// A tag the store knows: no registry asked.
	f, err := p.Image(ctx, "r.example/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Scanned || f.Digest != digestA || f.Tag != "1" || f.Summary.Critical != 1 || len(f.Vulnerabilities) != 2 || asked.Load() != 0 {
		t.Fatalf("facts = %+v (registry asked %d times)", f, asked.Load())
	}
	var critical bool
	for _, v := range f.Vulnerabilities {
		if v.ID == "CVE-1" && v.Fixable && v.Severity == "CRITICAL" && v.Package == "libc6" {
			critical = true
		}
	}
	if !critical {
		t.Errorf("vulnerabilities = %+v", f.Vulnerabilities)
	}
	// By digest, and under another repository: the same image.
	if f, err := p.Image(ctx, "mirror.example/app@"+digestA); err != nil || !f.Scanned || f.Registry != "mirror.example" {
		t.Errorf("by digest: %+v, %v", f, err)
	}
	// A tag only the registry knows, asked once and cached.
	for range 3 {
		if f, err := p.Image(ctx, "r.example/team/app:moved"); err != nil || f.Digest != digestA || !f.Scanned {
			t.Fatalf("registry-resolved tag: %+v, %v", f, err)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("registry asked %d times for one tag", n)
	}
	// A tag nobody knows: unscanned, no digest, no error.
	if f, err := p.Image(ctx, "r.example/team/app:nope"); err != nil || f.Scanned || f.Digest != "" {
		t.Errorf("unknown tag: %+v, %v", f, err)
	}
	// A digest never seen: unscanned.
	if f, err := p.Image(ctx, "r.example/x@sha256:"+"b"+digestA[8:]); err != nil || f.Scanned {
		t.Errorf("unknown digest: %+v, %v", f, err)
	}
	// Hostile references.
	for _, bad := range []string{"", "UPPER/case:tag", "a@sha256:zz", "::"} {
		if _, err := p.Image(ctx, bad); err == nil {
			t.Errorf("Image(%q) succeeded", bad)
		}
	}
}

func TestResolveFromRegistry(t *testing.T) {
	reg := testenv.InProcessRegistry(t)
	digest := reg.PushTarball(t, "team/slim:1.0", filepath.Join("..", "..", "testdata", "images", "slim.tar"))
	p, err := New(Options{Store: newStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.Image(context.Background(), reg.Host+"/team/slim:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if f.Digest != digest.DigestStr() || f.Scanned {
		t.Errorf("facts = %+v, want digest %s, unscanned", f, digest.DigestStr())
	}
}

// TestScanNow queues a scan of a never-scanned image in a real registry;
// a real scheduler runs it and ScanNow returns its result in time.
func TestScanNow(t *testing.T) {
	reg := testenv.InProcessRegistry(t)
	digest := reg.PushTarball(t, "team/slim:1.0", filepath.Join("..", "..", "testdata", "images", "slim.tar"))
	db := newStore(t)
	dbDir := t.TempDir()
	w, err := vulndb.Create(dbDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := vulndb.Import(context.Background(), w, filepath.Join("..", "..", "testdata", "osv")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	sched, err := scheduler.New(scheduler.Options{Store: db, DBDir: dbDir, Tick: 50 * time.Millisecond, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sched.Close()
	})
	p, err := New(Options{Store: db, Wake: sched.Wake})
	if err != nil {
		t.Fatal(err)
	}
	scanCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	f, err := p.ScanNow(scanCtx, reg.Host+"/team/slim:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Scanned || f.Digest != digest.DigestStr() || f.Summary.Critical == 0 || f.Tag != "1.0" {
		t.Errorf("facts after ScanNow = %+v", f)
	}
	// A budget too short returns what is known, with the deadline error.
	short, stop2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer stop2()
	if _, err := p.ScanNow(short, reg.Host+"/team/other:1"); err == nil {
		t.Error("ScanNow of an unresolvable image succeeded")
	}
}
