package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// backends runs a test against SQLite and, unless -short, a real
// PostgreSQL server: the same suite for both implementations.
func backends(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), SQLiteFile), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pg := testenv.SharedPostgres(t)
		db, err := OpenPostgres(context.Background(), pg.Database(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, db)
	})
}

// clock is a settable clock for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(db *DB) *clock {
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	db.SetClock(c.now)
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), SQLiteFile)
	for i := 0; i < 2; i++ {
		db, err := OpenSQLite(context.Background(), path, nil)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		db.Close()
	}
}

func TestOpenRejectsUnknownURL(t *testing.T) {
	_, err := Open(context.Background(), "mysql://user:secret@host/db", "", nil)
	if err == nil {
		t.Fatal("Open accepted a mysql URL")
	}
	if got := err.Error(); strings.Contains(got, "secret") {
		t.Errorf("error leaks the password: %s", got)
	}
}

func TestRegistries(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		newClock(db)
		r := &Registry{Name: "hub", Type: "oci", URL: "localhost:5000", Credentials: []byte{1, 2, 3},
			Settings: RegistrySettings{Repositories: []string{"team/*"}, PollInterval: Duration(time.Minute), Insecure: true}}
		if err := db.CreateRegistry(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateRegistry(ctx, &Registry{Name: "hub", Type: "oci", URL: "x"}); !errors.Is(err, ErrConflict) {
			t.Errorf("second registry named hub: err = %v, want ErrConflict", err)
		}
		got, err := db.RegistryByName(ctx, "hub")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r.Settings, got.Settings); diff != "" {
			t.Errorf("settings (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(r.Credentials, got.Credentials); diff != "" {
			t.Errorf("credentials (-want +got):\n%s", diff)
		}
		got.URL = "localhost:5001"
		if err := db.UpdateRegistry(ctx, got); err != nil {
			t.Fatal(err)
		}
		if again, _ := db.Registry(ctx, r.ID); again.URL != "localhost:5001" {
			t.Errorf("URL after update = %q", again.URL)
		}
		if err := db.SeeRepositories(ctx, r.ID, []string{"team/a", "team/b"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := db.SeeRepositories(ctx, r.ID, []string{"team/a"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		repos, err := db.Repositories(ctx, r.ID)
		if err != nil || len(repos) != 2 {
			t.Fatalf("repositories = %v, %v; want 2", repos, err)
		}
		if _, err := db.Registry(ctx, 999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing registry: err = %v", err)
		}
		if err := db.DeleteRegistry(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteRegistry(ctx, r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: err = %v", err)
		}
	})
}

func TestClaimPollIsExclusive(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		r := &Registry{Name: "r", Type: "oci", URL: "x"}
		if err := db.CreateRegistry(ctx, r); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		var wins int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := db.ClaimPoll(ctx, r.ID, now, now.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d replicas claimed the same poll, want 1", wins)
		}
	})
}

func finding(id, pkg, version, fixed string, sev model.Severity) model.Finding {
	return model.Finding{VulnerabilityID: id, Aliases: []string{"CVE-" + id}, Severity: sev, FixedVersion: fixed,
		Package: model.Package{Name: pkg, Version: version, Ecosystem: "Debian:12"}}
}

func TestFindingHistory(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		id, err := db.SeeImage(ctx, "sha256:aa", ImageRef{Host: "localhost:5000", Repository: "app", Tag: "v1"}, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		if id2, err := db.SeeImage(ctx, "sha256:aa", ImageRef{Host: "localhost:5000", Repository: "app", Tag: "latest"}, clk.now()); err != nil || id2 != id {
			t.Fatalf("same digest under another tag: id %d, %v; want %d", id2, err, id)
		}
		pkgs := []model.Package{{Name: "libc6", Version: "2.36-9", Ecosystem: "Debian:12"}, {Name: "curl", Version: "7.88"}}
		first := []model.Finding{
			finding("A", "libc6", "2.36-9", "2.36-10", model.SeverityCritical),
			finding("B", "curl", "7.88", "", model.SeverityHigh),
			finding("B", "curl", "7.88", "", model.SeverityHigh), // duplicates collapse
		}
		sum, err := db.SaveResult(ctx, id, Result{Packages: pkgs, Findings: first, Platform: "linux/amd64", OS: "debian 12", At: clk.now(), DBBuilt: clk.now()})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Summary{Critical: 1, High: 1, Fixable: 1}, sum); diff != "" {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
		gotPkgs, err := db.Packages(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(pkgs, gotPkgs); diff != "" {
			t.Errorf("stored SBOM (-want +got):\n%s", diff)
		}

		firstSeen := clk.now()
		clk.add(time.Hour)
		// A re-match where A is gone and C is new.
		if _, err := db.SaveResult(ctx, id, Result{Findings: []model.Finding{first[1], finding("C", "curl", "7.88", "8.0", model.SeverityLow)}, At: clk.now()}); err != nil {
			t.Fatal(err)
		}
		all, _, err := db.Findings(ctx, FindingFilter{ImageID: id, State: StateAll, Sort: "vulnerability"}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		type row struct {
			ID           string
			First, Fixed time.Time
		}
		var got []row
		for _, f := range all {
			got = append(got, row{f.VulnID, f.FirstSeenAt, f.FixedAt})
		}
		want := []row{{"A", firstSeen, clk.now()}, {"B", firstSeen, time.Time{}}, {"C", clk.now(), time.Time{}}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("history after re-match (-want +got):\n%s", diff)
		}
		// The SBOM survives a re-match.
		if again, err := db.Packages(ctx, id); err != nil || len(again) != 2 {
			t.Errorf("SBOM after re-match: %d packages, %v", len(again), err)
		}
		// A comes back: reopened, first seen kept.
		clk.add(time.Hour)
		if _, err := db.SaveResult(ctx, id, Result{Findings: first[:1], At: clk.now()}); err != nil {
			t.Fatal(err)
		}
		open, _, err := db.Findings(ctx, FindingFilter{ImageID: id}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(open) != 1 || open[0].VulnID != "A" || !open[0].FirstSeenAt.Equal(firstSeen) || !open[0].FixedAt.IsZero() {
			t.Errorf("open after A came back = %+v", open)
		}
		im, err := db.Image(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Refs) != 2 || im.Summary.Critical != 1 || im.Summary.High != 0 || im.Platform != "linux/amd64" || im.Packages != 2 {
			t.Errorf("image = %+v", im)
		}
	})
}

func TestHostileText(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		id, err := db.SeeImage(ctx, "sha256:bb", ImageRef{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f := finding("X\x00Y", "pkg\xff\xfe", "1\x00", "", model.SeverityMedium)
		f.Summary = string(make([]byte, 5000))
		f.Package.Path = "/a/\x00b"
		if _, err := db.SaveResult(ctx, id, Result{Packages: []model.Package{f.Package}, Findings: []model.Finding{f}, At: time.Now()}); err != nil {
			t.Fatalf("storing hostile text: %v", err)
		}
		got, _, err := db.Findings(ctx, FindingFilter{ImageID: id}, Page{})
		if err != nil || len(got) != 1 {
			t.Fatalf("findings = %v, %v", got, err)
		}
		if got[0].VulnID != "XY" || got[0].PackageName != "pkg\uFFFD" {
			t.Errorf("stored id %q, package %q", got[0].VulnID, got[0].PackageName)
		}
	})
}

// seedFindings stores n findings spread over images, severities and
// packages.
func seedFindings(t testing.TB, db *DB, images, perImage int) {
	t.Helper()
	ctx := context.Background()
	sevs := []model.Severity{model.SeverityCritical, model.SeverityHigh, model.SeverityMedium, model.SeverityLow, model.SeverityUnknown}
	for i := 0; i < images; i++ {
		id, err := db.SeeImage(ctx, fmt.Sprintf("sha256:%064x", i), ImageRef{Host: "localhost:5000", Repository: fmt.Sprintf("repo%d", i%3), Tag: "v1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var fs []model.Finding
		for j := 0; j < perImage; j++ {
			fixed := ""
			if j%2 == 0 {
				fixed = "9"
			}
			fs = append(fs, finding(fmt.Sprintf("V-%d", j), fmt.Sprintf("pkg%d", j%17), "1", fixed, sevs[j%len(sevs)]))
		}
		if _, err := db.SaveResult(ctx, id, Result{Packages: []model.Package{}, Findings: fs, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindingsPagingAndFilters(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		seedFindings(t, db, 6, 50)
		for _, sortName := range FindingSorts {
			t.Run(sortName, func(t *testing.T) {
				var ids []int64
				seen := map[int64]bool{}
				cur := ""
				var prev *Finding
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatal("paging does not end")
					}
					page, next, err := db.Findings(ctx, FindingFilter{Sort: sortName}, Page{Limit: 7, Cursor: cur})
					if err != nil {
						t.Fatal(err)
					}
					for i := range page {
						f := page[i]
						if seen[f.ID] {
							t.Fatalf("finding %d on two pages", f.ID)
						}
						seen[f.ID] = true
						ids = append(ids, f.ID)
						if prev != nil && !ordered(sortName, *prev, f) {
							t.Fatalf("%v before %v breaks order %s", prev, f, sortName)
						}
						prev = &page[i]
					}
					if next == "" {
						break
					}
					cur = next
				}
				if len(ids) != 300 {
					t.Errorf("paged through %d findings, want 300", len(ids))
				}
			})
		}
		yes := true
		for _, tc := range []struct {
			name string
			f    FindingFilter
			want int
		}{
			{"critical", FindingFilter{Severities: []model.Severity{model.SeverityCritical}}, 60},
			{"at least high", FindingFilter{MinSeverity: model.SeverityHigh}, 120},
			{"fixable", FindingFilter{Fixable: &yes}, 150},
			{"package", FindingFilter{Package: "pkg3"}, 18},
			{"vulnerability by alias", FindingFilter{Vulnerability: "CVE-V-7"}, 6},
			{"vulnerability by id", FindingFilter{Vulnerability: "V-7"}, 6},
			{"repository", FindingFilter{Repository: "repo1"}, 100},
			{"fixed", FindingFilter{State: StateFixed}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, _, err := db.Findings(ctx, tc.f, Page{Limit: MaxPageSize})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tc.want {
					t.Errorf("%d findings, want %d", len(got), tc.want)
				}
			})
		}
		if _, _, err := db.Findings(ctx, FindingFilter{Sort: "nope"}, Page{}); err == nil {
			t.Error("unknown sort accepted")
		}
		_, next, err := db.Findings(ctx, FindingFilter{}, Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Findings(ctx, FindingFilter{Sort: "package"}, Page{Cursor: next}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor of another sort: err = %v", err)
		}
		if _, _, err := db.Findings(ctx, FindingFilter{}, Page{Cursor: "!!!"}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("garbage cursor: err = %v", err)
		}
	})
}

func ordered(sortName string, a, b Finding) bool {
	switch sortName {
	case "severity":
		return a.SeverityRank > b.SeverityRank || (a.SeverityRank == b.SeverityRank && a.ID > b.ID)
	case "-severity":
		return a.SeverityRank < b.SeverityRank || (a.SeverityRank == b.SeverityRank && a.ID < b.ID)
	case "first_seen":
		return a.FirstSeenAt.Before(b.FirstSeenAt) || (a.FirstSeenAt.Equal(b.FirstSeenAt) && a.ID < b.ID)
	case "-first_seen":
		return a.FirstSeenAt.After(b.FirstSeenAt) || (a.FirstSeenAt.Equal(b.FirstSeenAt) && a.ID > b.ID)
	case "package":
		return a.PackageName < b.PackageName || (a.PackageName == b.PackageName && a.ID < b.ID)
	case "vulnerability":
		return a.VulnID < b.VulnID || (a.VulnID == b.VulnID && a.ID < b.ID)
	}
	return false
}

func TestImagesListing(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		seedFindings(t, db, 5, 3)
		if _, err := db.SeeImage(ctx, "sha256:unscanned", ImageRef{Host: "h", Repository: "repo9"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		var all []Image
		cur := ""
		for {
			page, next, err := db.Images(ctx, ImageFilter{}, Page{Limit: 2, Cursor: cur})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			cur = next
		}
		if len(all) != 6 {
			t.Errorf("%d images, want 6", len(all))
		}
		no := false
		un, _, err := db.Images(ctx, ImageFilter{Scanned: &no}, Page{})
		if err != nil || len(un) != 1 || un[0].Digest != "sha256:unscanned" || len(un[0].Refs) != 1 {
			t.Errorf("unscanned images = %+v, %v", un, err)
		}
		crit, _, err := db.Images(ctx, ImageFilter{MinSeverity: model.SeverityCritical, Repository: "repo0"}, Page{})
		if err != nil || len(crit) != 2 {
			t.Errorf("critical images in repo0 = %d, %v; want 2", len(crit), err)
		}
		var visited []string
		if err := db.ScannedImages(ctx, func(id int64, digest string) error { visited = append(visited, digest); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(visited) != 5 {
			t.Errorf("scanned images visited: %d, want 5", len(visited))
		}
	})
}

func TestQueue(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		j := &Scan{Kind: ScanPull, Reason: "poll", Reference: "localhost:5000/app@sha256:aa", MaxAttempts: 2}
		added, err := db.Enqueue(ctx, j)
		if err != nil || !added {
			t.Fatalf("enqueue: %v, %v", added, err)
		}
		dup := &Scan{Kind: ScanPull, Reason: "notification", Reference: j.Reference}
		if added, err := db.Enqueue(ctx, dup); err != nil || added || dup.ID != j.ID {
			t.Errorf("duplicate enqueue: added %v, id %d (want %d), %v", added, dup.ID, j.ID, err)
		}
		got, err := db.Claim(ctx, "a", time.Minute)
		if err != nil || got == nil || got.ID != j.ID || got.Attempts != 1 {
			t.Fatalf("claim = %+v, %v", got, err)
		}
		if again, err := db.Claim(ctx, "b", time.Minute); err != nil || again != nil {
			t.Errorf("second claim while leased = %+v, %v", again, err)
		}
		// a dies; its lease runs out and b takes the job.
		clk.add(2 * time.Minute)
		got, err = db.Claim(ctx, "b", time.Minute)
		if err != nil || got == nil || got.ID != j.ID || got.Attempts != 2 {
			t.Fatalf("claim after lease expiry = %+v, %v", got, err)
		}
		if err := db.Succeed(ctx, j.ID, "a", 0, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("a finishing b's job: err = %v", err)
		}
		retried, err := db.Fail(ctx, j.ID, "b", errors.New("registry down"), clk.now().Add(time.Minute))
		if err != nil || retried {
			t.Fatalf("fail at max attempts: retried %v, %v", retried, err)
		}
		done, err := db.ScanJob(ctx, j.ID)
		if err != nil || done.Status != ScanFailed || done.Error != "registry down" {
			t.Errorf("failed job = %+v, %v", done, err)
		}
		// A failed job no longer blocks a new one for the same reference.
		k := &Scan{Kind: ScanPull, Reason: "manual", Reference: j.Reference}
		if added, err := db.Enqueue(ctx, k); err != nil || !added {
			t.Fatalf("enqueue after failure: %v, %v", added, err)
		}
		c, _ := db.Claim(ctx, "a", time.Minute)
		retried, err = db.Fail(ctx, c.ID, "a", errors.New("timeout"), clk.now().Add(time.Hour))
		if err != nil || !retried {
			t.Fatalf("first failure: retried %v, %v", retried, err)
		}
		if early, _ := db.Claim(ctx, "a", time.Minute); early != nil {
			t.Errorf("job claimed before its backoff: %+v", early)
		}
		clk.add(time.Hour)
		c, _ = db.Claim(ctx, "a", time.Minute)
		if c == nil || c.Error != "timeout" {
			t.Fatalf("retry claim = %+v", c)
		}
		if err := db.Succeed(ctx, c.ID, "a", 0, 3); err != nil {
			t.Fatal(err)
		}
		depth, err := db.QueueDepth(ctx)
		if err != nil || depth[ScanQueued] != 0 || depth[ScanRunning] != 0 {
			t.Errorf("queue depth = %v, %v", depth, err)
		}
		list, _, err := db.Scans(ctx, ScanFilter{Status: ScanFailed}, Page{})
		if err != nil || len(list) != 1 {
			t.Errorf("failed scans = %v, %v", list, err)
		}
	})
}

func TestQueueConcurrentClaims(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		const jobs = 40
		for i := 0; i < jobs; i++ {
			if _, err := db.Enqueue(ctx, &Scan{Kind: ScanRematch, Reason: "db-update", Reference: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var claimed []int64
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprint("worker", w)
				for {
					j, err := db.Claim(ctx, owner, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if j == nil {
						return
					}
					mu.Lock()
					claimed = append(claimed, j.ID)
					mu.Unlock()
					if err := db.Succeed(ctx, j.ID, owner, 0, 0); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		sort.Slice(claimed, func(i, j int) bool { return claimed[i] < claimed[j] })
		for i := 1; i < len(claimed); i++ {
			if claimed[i] == claimed[i-1] {
				t.Fatalf("job %d claimed twice", claimed[i])
			}
		}
		if len(claimed) != jobs {
			t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
		}
	})
}

func TestTokensAndAudit(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		if n, err := db.CountAdmins(ctx); err != nil || n != 0 {
			t.Fatalf("admins on a new store = %d, %v", n, err)
		}
		tok := &Token{Name: "first-admin", Role: RoleAdmin, Hash: "h1", Prefix: "bwk_ab"}
		if err := db.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateToken(ctx, &Token{Name: "first-admin", Role: RoleViewer, Hash: "h2"}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate token name: %v", err)
		}
		got, err := db.TokenByHash(ctx, "h1")
		if err != nil || got.ID != tok.ID || got.Role != RoleAdmin {
			t.Fatalf("token by hash = %+v, %v", got, err)
		}
		if err := db.TouchToken(ctx, tok.ID, clk.now()); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.CountAdmins(ctx); n != 1 {
			t.Errorf("admins = %d, want 1", n)
		}
		if err := db.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.CountAdmins(ctx); n != 0 {
			t.Errorf("admins after revoke = %d, want 0", n)
		}
		for i := 0; i < 3; i++ {
			if err := db.Audit(ctx, AuditEntry{Actor: "first-admin", Action: "registry.create", Target: fmt.Sprint("r", i), Status: 201,
				Detail: map[string]any{"name": fmt.Sprint("r", i)}}); err != nil {
				t.Fatal(err)
			}
		}
		entries, next, err := db.AuditLog(ctx, AuditFilter{Actor: "first-admin"}, Page{Limit: 2})
		if err != nil || len(entries) != 2 || next == "" || entries[0].Target != "r2" || entries[0].Detail["name"] != "r2" {
			t.Errorf("audit page = %+v, %q, %v", entries, next, err)
		}
		clk.add(100 * 24 * time.Hour)
		pruned, err := db.Prune(ctx, DefaultRetention())
		if err != nil || pruned["audit_log"] != 3 {
			t.Errorf("pruned = %v, %v", pruned, err)
		}
	})
}

func TestSettings(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, err := db.Setting(ctx, "db.built"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unset setting: %v", err)
		}
		if ok, err := db.CompareAndSetSetting(ctx, "db.built", "", "1"); err != nil || !ok {
			t.Fatalf("first set: %v, %v", ok, err)
		}
		if ok, _ := db.CompareAndSetSetting(ctx, "db.built", "", "1"); ok {
			t.Error("second first-set won")
		}
		if ok, _ := db.CompareAndSetSetting(ctx, "db.built", "1", "2"); !ok {
			t.Error("compare-and-set from the current value lost")
		}
		if v, _ := db.Setting(ctx, "db.built"); v != "2" {
			t.Errorf("value = %q", v)
		}
	})
}

func TestPruneImages(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		seedFindings(t, db, 1, 2)
		r := &Registry{Name: "r", Type: "oci", URL: "x"}
		if err := db.CreateRegistry(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := db.SeeRepositories(ctx, r.ID, []string{"gone"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		// seedFindings saw the image at the wall clock's now.
		clk.t = time.Now().Add(31 * 24 * time.Hour)
		pruned, err := db.Prune(ctx, DefaultRetention())
		if err != nil || pruned["images"] != 1 || pruned["repositories"] != 1 {
			t.Fatalf("pruned = %v, %v", pruned, err)
		}
		left, _, _ := db.Findings(ctx, FindingFilter{State: StateAll}, Page{})
		if len(left) != 0 {
			t.Errorf("%d findings left after their image was pruned", len(left))
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(cursor{Sort: "severity", Num: 5, ID: 9}.encode())
	f.Add("")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s, "severity")
		if err == nil && c != nil && c.Sort != "severity" {
			t.Fatalf("accepted a cursor of sort %q", c.Sort)
		}
	})
}
