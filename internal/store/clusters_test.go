package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// countRows runs a SELECT COUNT(*) query.
func countRows(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.queryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func createCluster(t testing.TB, db *DB, name string) *Cluster {
	t.Helper()
	c := &Cluster{Name: name, Source: ClusterSourceKubeconfig, Context: "ctx-" + name, Server: "https://" + name + ":6443"}
	if err := db.CreateCluster(context.Background(), c, []byte("sealed-"+name)); err != nil {
		t.Fatal(err)
	}
	return c
}

// container runs image (by digest when digest is set) as a regular
// container named name.
func container(name, image, digest string) WorkloadContainer {
	return WorkloadContainer{Name: name, Kind: ContainerRegular, Image: image, Digest: digest}
}

// deployment is a Deployment with two pods running the same containers.
func deployment(ns, name string, exposure []string, cs ...WorkloadContainer) Workload {
	var pods []WorkloadPod
	for i := 0; i < 2; i++ {
		pods = append(pods, WorkloadPod{Name: fmt.Sprintf("%s-%d", name, i), Node: "node-1", Phase: "Running", Containers: cs})
	}
	return Workload{Namespace: ns, Kind: "Deployment", Name: name, ServiceAccount: "default", Exposure: exposure, Pods: pods}
}

func TestClusters(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		prod := createCluster(t, db, "prod")
		in := &Cluster{Name: "self", Source: ClusterSourceInCluster}
		if err := db.CreateCluster(ctx, in, nil); err != nil {
			t.Fatal(err)
		}
		want := Cluster{ID: prod.ID, Name: "prod", Source: ClusterSourceKubeconfig, Context: "ctx-prod", Server: "https://prod:6443",
			CreatedAt: clk.now(), UpdatedAt: clk.now(), Status: ClusterPending}
		if diff := cmp.Diff(want, *prod); diff != "" {
			t.Errorf("created cluster (-want +got):\n%s", diff)
		}
		if err := db.CreateCluster(ctx, &Cluster{Name: "prod", Source: ClusterSourceInCluster}, nil); !errors.Is(err, ErrConflict) {
			t.Errorf("second cluster named prod: err = %v, want ErrConflict", err)
		}
		if err := db.CreateCluster(ctx, &Cluster{Name: "x", Source: "guess"}, nil); err == nil {
			t.Error("unknown source accepted")
		}
		got, err := db.Cluster(ctx, prod.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("cluster by id (-want +got):\n%s", diff)
		}
		if got, err := db.ClusterByName(ctx, "self"); err != nil || got.ID != in.ID {
			t.Errorf("cluster by name = %+v, %v", got, err)
		}
		if _, err := db.ClusterByName(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing cluster by name: err = %v", err)
		}
		all, err := db.Clusters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range all {
			names = append(names, c.Name)
		}
		if diff := cmp.Diff([]string{"prod", "self"}, names); diff != "" {
			t.Errorf("clusters by name (-want +got):\n%s", diff)
		}
		if cfg, err := db.ClusterConfig(ctx, prod.ID); err != nil || string(cfg) != "sealed-prod" {
			t.Errorf("kubeconfig = %q, %v", cfg, err)
		}
		if cfg, err := db.ClusterConfig(ctx, in.ID); err != nil || cfg != nil {
			t.Errorf("in-cluster kubeconfig = %q, %v; want nil", cfg, err)
		}

		clk.add(time.Minute)
		if err := db.RecordClusterStatus(ctx, prod.ID, ClusterStatus{Status: ClusterConnected, Version: "v1.33.1", SyncedAt: clk.now()}); err != nil {
			t.Fatal(err)
		}
		synced := clk.now()
		clk.add(time.Minute)
		if err := db.RecordClusterStatus(ctx, prod.ID, ClusterStatus{Status: ClusterError, Error: "dial tcp: refused\x00", Version: "v1.33.1"}); err != nil {
			t.Fatal(err)
		}
		got, _ = db.Cluster(ctx, prod.ID)
		if got.Status != ClusterError || got.Error != "dial tcp: refused" || got.Version != "v1.33.1" || !got.SyncedAt.Equal(synced) {
			t.Errorf("status after error = %+v; want the last sync kept", got)
		}
		if err := db.RecordClusterStatus(ctx, 999, ClusterStatus{Status: ClusterConnected}); !errors.Is(err, ErrNotFound) {
			t.Errorf("status of a missing cluster: err = %v", err)
		}

		// Deleting a cluster takes everything of it along but the scans
		// it asked for.
		if err := db.ReplaceInventory(ctx, prod.ID, ClusterInventory{
			Namespaces: []ClusterNamespace{{Name: "shop"}},
			Workloads:  []Workload{deployment("shop", "web", nil, container("web", "nginx:1", "sha256:web"))},
		}, clk.now()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.ReplacePostureFindings(ctx, prod.ID, []PostureFinding{{CheckID: "C1", Severity: "HIGH", ResourceKind: "Deployment", ResourceNamespace: "shop", ResourceName: "web"}}, clk.now()); err != nil {
			t.Fatal(err)
		}
		scan := &Scan{Kind: ScanPull, Reason: "cluster", Reference: "docker.io/library/nginx@sha256:web", ClusterID: prod.ID, PullSecrets: []string{"shop/regcred", "shop/other"}}
		if _, err := db.Enqueue(ctx, scan); err != nil {
			t.Fatal(err)
		}
		job, err := db.ScanJob(ctx, scan.ID)
		if err != nil {
			t.Fatal(err)
		}
		if job.ClusterID != prod.ID || !cmp.Equal(job.PullSecrets, scan.PullSecrets) {
			t.Errorf("queued scan has cluster %d, pull secrets %q", job.ClusterID, job.PullSecrets)
		}
		if listed, _, err := db.Scans(ctx, ScanFilter{ClusterID: prod.ID}, Page{}); err != nil || len(listed) != 1 {
			t.Errorf("scans of the cluster = %+v, %v", listed, err)
		}
		claimed, err := db.Claim(ctx, "w", time.Minute)
		if err != nil || claimed == nil || claimed.ClusterID != prod.ID || len(claimed.PullSecrets) != 2 {
			t.Errorf("claimed scan = %+v, %v", claimed, err)
		}
		if err := db.DeleteCluster(ctx, prod.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteCluster(ctx, prod.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete: err = %v", err)
		}
		for _, table := range []string{"cluster_namespaces", "workloads", "workload_images", "posture_findings"} {
			if n := countRows(t, db, `SELECT COUNT(*) FROM `+table); n != 0 {
				t.Errorf("%d rows left in %s after the cluster was deleted", n, table)
			}
		}
		job, err = db.ScanJob(ctx, scan.ID)
		if err != nil || job.ClusterID != 0 || len(job.PullSecrets) != 2 {
			t.Errorf("scan after its cluster was deleted = %+v, %v", job, err)
		}
	})
}

func TestClaimClusterIsExclusive(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		c := createCluster(t, db, "c")
		for i, step := range []struct {
			owner   string
			advance time.Duration
			release bool
			want    bool
		}{
			{owner: "a", want: true},
			{owner: "b", want: false},
			{owner: "a", advance: 50 * time.Second, want: true}, // renewed until +110s
			{owner: "b", advance: 50 * time.Second, want: false},
			{owner: "b", advance: 11 * time.Second, want: true}, // a's lease ran out
			{owner: "a", want: false},
			{owner: "b", release: true},
			{owner: "a", want: true},
		} {
			clk.add(step.advance)
			if step.release {
				if err := db.ReleaseCluster(ctx, c.ID, step.owner); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := db.ClaimCluster(ctx, c.ID, step.owner, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got != step.want {
				t.Errorf("step %d: claim by %s = %v, want %v", i, step.owner, got, step.want)
			}
		}
		if ok, err := db.ClaimCluster(ctx, 999, "a", time.Minute); err != nil || ok {
			t.Errorf("claim of a missing cluster = %v, %v", ok, err)
		}

		free := createCluster(t, db, "free")
		var mu sync.Mutex
		wins := map[string]int{}
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprint("replica", i)
				ok, err := db.ClaimCluster(ctx, free.ID, owner, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins[owner]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Errorf("replicas holding the lease: %v, want one", wins)
		}
	})
}

// workloadOpts compares workloads leaving out what the store assigns.
var workloadOpts = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Workload{}, "ID", "ClusterID", "Cluster", "FirstSeenAt", "LastSeenAt")}

func TestReplaceInventory(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		c := createCluster(t, db, "prod")
		yes := true
		web := deployment("shop", "web", []string{"LoadBalancer service web"},
			container("web", "nginx:1", "sha256:n1"), container("sidecar", "envoy:1", ""))
		web.Pods[0].Containers = append([]WorkloadContainer{{Name: "init", Kind: ContainerInit, Image: "busybox:1", Digest: "sha256:b1", RunAsNonRoot: &yes}},
			web.Pods[0].Containers...)
		db1 := deployment("shop", "db", nil, container("pg", "postgres:16", "sha256:p16"))
		db1.Kind = "StatefulSet"
		agent := deployment("kube-system", "agent", nil, WorkloadContainer{Name: "agent", Kind: ContainerRegular, Image: "agent:2", Digest: "sha256:a2",
			Privileged: true, Capabilities: []string{"NET_ADMIN"}, HostPorts: []int32{9100}})
		agent.Kind, agent.HostNetwork, agent.HostPID = "DaemonSet", true, true
		first := ClusterInventory{
			Namespaces: []ClusterNamespace{{Name: "shop", Labels: map[string]string{"team": "shop"}}, {Name: "kube-system"}, {Name: "old"}},
			Workloads:  []Workload{web, db1, agent},
		}
		if err := db.ReplaceInventory(ctx, c.ID, first, clk.now()); err != nil {
			t.Fatal(err)
		}
		firstAt := clk.now()
		images := func() []string {
			rows, err := db.query(ctx, `SELECT w.name || ' ' || wi.container || ' ' || wi.container_kind || ' ' || wi.image || ' ' || wi.digest
				FROM workload_images wi JOIN workloads w ON w.id = wi.workload_id ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			return out
		}
		wantImages := []string{
			"agent agent regular agent:2 sha256:a2",
			"db pg regular postgres:16 sha256:p16",
			"web init init busybox:1 sha256:b1",
			"web sidecar regular envoy:1 ",
			"web web regular nginx:1 sha256:n1",
		}
		if diff := cmp.Diff(wantImages, images()); diff != "" {
			t.Errorf("workload images after the first inventory (-want +got):\n%s", diff)
		}

		// The second inventory: db is gone, web runs a new image, agent is
		// unchanged, api is new, and so is a namespace's label.
		clk.add(time.Hour)
		web2 := deployment("shop", "web", []string{"LoadBalancer service web"}, container("web", "nginx:2", "sha256:n2"))
		api := deployment("shop", "api", nil, container("api", "api:1", "sha256:api1"))
		second := ClusterInventory{
			Namespaces: []ClusterNamespace{{Name: "shop", Labels: map[string]string{"team": "shop", "tier": "1"}}, {Name: "kube-system"}},
			Workloads:  []Workload{web2, agent, api, api},
		}
		if err := db.ReplaceInventory(ctx, c.ID, second, clk.now()); err != nil {
			t.Fatal(err)
		}
		wantImages = []string{
			"agent agent regular agent:2 sha256:a2",
			"api api regular api:1 sha256:api1",
			"web web regular nginx:2 sha256:n2",
		}
		if diff := cmp.Diff(wantImages, images()); diff != "" {
			t.Errorf("workload images after the second inventory (-want +got):\n%s", diff)
		}
		got, _, err := db.Workloads(ctx, WorkloadFilter{ClusterID: c.ID}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		type seen struct {
			Name        string
			First, Last time.Time
		}
		var times []seen
		for _, w := range got {
			times = append(times, seen{w.Name, w.FirstSeenAt, w.LastSeenAt})
		}
		wantTimes := []seen{{"api", clk.now(), clk.now()}, {"web", firstAt, clk.now()}, {"agent", firstAt, clk.now()}}
		if diff := cmp.Diff(wantTimes, times, cmpopts.SortSlices(func(a, b seen) bool { return a.Name < b.Name })); diff != "" {
			t.Errorf("workload times (-want +got):\n%s", diff)
		}
		wantWorkloads := []Workload{api, agent, web2}
		if diff := cmp.Diff(wantWorkloads, got, workloadOpts, cmpopts.SortSlices(func(a, b Workload) bool { return a.Name < b.Name })); diff != "" {
			t.Errorf("workloads (-want +got):\n%s", diff)
		}
		for _, w := range got {
			if w.Cluster != "prod" || w.ClusterID != c.ID {
				t.Errorf("workload %s has cluster %q (%d)", w.Name, w.Cluster, w.ClusterID)
			}
		}
		one, err := db.Workload(ctx, got[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got[0], *one, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("workload by id (-list +get):\n%s", diff)
		}
		if _, err := db.Workload(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing workload: err = %v", err)
		}
		nss, err := db.ClusterNamespaces(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ClusterNamespace{{Name: "kube-system"}, {Name: "shop", Labels: map[string]string{"team": "shop", "tier": "1"}}}, nss); diff != "" {
			t.Errorf("namespaces (-want +got):\n%s", diff)
		}
		cl, err := db.Cluster(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Namespaces != 2 || cl.Workloads != 3 || cl.Pods != 6 || !cl.SyncedAt.Equal(clk.now()) {
			t.Errorf("cluster counts = %d namespaces, %d workloads, %d pods, synced %v", cl.Namespaces, cl.Workloads, cl.Pods, cl.SyncedAt)
		}
		if err := db.ReplaceInventory(ctx, 999, second, clk.now()); !errors.Is(err, ErrNotFound) {
			t.Errorf("inventory of a missing cluster: err = %v", err)
		}
		// An empty inventory empties the cluster.
		if err := db.ReplaceInventory(ctx, c.ID, ClusterInventory{}, clk.now()); err != nil {
			t.Fatal(err)
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM workload_images`) + countRows(t, db, `SELECT COUNT(*) FROM workloads`) +
			countRows(t, db, `SELECT COUNT(*) FROM cluster_namespaces`); n != 0 {
			t.Errorf("%d rows left after an empty inventory", n)
		}
	})
}

func TestWorkloadsListing(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		a, b := createCluster(t, db, "a"), createCluster(t, db, "b")
		var inv ClusterInventory
		for i := 0; i < 10; i++ {
			var exposure []string
			if i%3 == 0 {
				exposure = []string{"Ingress shop"}
			}
			w := deployment(fmt.Sprint("ns", i%2), fmt.Sprint("w", i), exposure, container("c", "app:1", fmt.Sprint("sha256:", i%4)))
			if i == 9 {
				w.Kind = "DaemonSet"
			}
			inv.Workloads = append(inv.Workloads, w)
		}
		if err := db.ReplaceInventory(ctx, a.ID, inv, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := db.ReplaceInventory(ctx, b.ID, ClusterInventory{Workloads: inv.Workloads[:3]}, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			f    WorkloadFilter
			want int
		}{
			{"all", WorkloadFilter{}, 13},
			{"cluster", WorkloadFilter{ClusterID: a.ID}, 10},
			{"namespace", WorkloadFilter{ClusterID: a.ID, Namespace: "ns1"}, 5},
			{"kind", WorkloadFilter{Kind: "DaemonSet"}, 1},
			{"name", WorkloadFilter{Name: "w1"}, 2},
			{"digest", WorkloadFilter{Digest: "sha256:1"}, 4},
			{"exposed", WorkloadFilter{Exposed: true}, 5},
			{"exposed in b", WorkloadFilter{ClusterID: b.ID, Exposed: true}, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				seen := map[int64]bool{}
				cur := ""
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatal("paging does not end")
					}
					page, next, err := db.Workloads(ctx, tc.f, Page{Limit: 3, Cursor: cur})
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range page {
						if seen[w.ID] {
							t.Fatalf("workload %d on two pages", w.ID)
						}
						seen[w.ID] = true
						if len(w.Pods) != 2 {
							t.Errorf("workload %s has %d pods, want 2", w.Name, len(w.Pods))
						}
					}
					if next == "" {
						break
					}
					cur = next
				}
				if len(seen) != tc.want {
					t.Errorf("%d workloads, want %d", len(seen), tc.want)
				}
			})
		}
		if _, _, err := db.Workloads(ctx, WorkloadFilter{}, Page{Cursor: "!!!"}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("garbage cursor: err = %v", err)
		}
	})
}

func TestUnscannedDigests(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		id, err := db.SeeImage(ctx, "sha256:scanned", ImageRef{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SaveResult(ctx, id, Result{Packages: []model.Package{}, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SeeImage(ctx, "sha256:seen", ImageRef{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			digests []string
			want    []string
		}{
			{"none", nil, nil},
			{"mixed", []string{"sha256:new", "sha256:scanned", "sha256:seen", "sha256:new", "", "sha256:other"},
				[]string{"sha256:new", "sha256:seen", "sha256:other"}},
			{"all scanned", []string{"sha256:scanned"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := db.UnscannedDigests(ctx, tc.digests)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("unscanned (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestVulnerableWorkloads(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		now := time.Now()
		scan := func(digest string, fs ...model.Finding) {
			t.Helper()
			id, err := db.SeeImage(ctx, digest, ImageRef{Host: "localhost:5000", Repository: "app"}, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.SaveResult(ctx, id, Result{Packages: []model.Package{}, Findings: fs, At: now}); err != nil {
				t.Fatal(err)
			}
		}
		// bad: a critical fixable, a critical without fix and a high;
		// meh: one medium; clean: none; unscanned is only seen.
		scan("sha256:bad",
			finding("CRIT-FIX", "openssl", "3.0", "3.1", model.SeverityCritical),
			finding("CRIT-NOFIX", "zlib", "1.2", "", model.SeverityCritical),
			finding("HIGH", "curl", "7", "", model.SeverityHigh))
		scan("sha256:meh", finding("MED", "bash", "5", "5.1", model.SeverityMedium))
		scan("sha256:clean")
		if _, err := db.SeeImage(ctx, "sha256:unscanned", ImageRef{}, now); err != nil {
			t.Fatal(err)
		}
		prod, dev := createCluster(t, db, "prod"), createCluster(t, db, "dev")
		inv := ClusterInventory{Workloads: []Workload{
			deployment("shop", "web", []string{"Ingress shop"}, container("web", "app:bad", "sha256:bad"), container("log", "app:meh", "sha256:meh")),
			deployment("shop", "worker", nil, container("w", "app:bad", "sha256:bad")),
			deployment("ops", "tools", nil, container("t", "app:meh", "sha256:meh"), container("c", "app:clean", "sha256:clean")),
			deployment("ops", "quiet", nil, container("c", "app:clean", "sha256:clean"), container("u", "app:unscanned", "sha256:unscanned"),
				container("x", "app:nodigest", "")),
		}}
		if err := db.ReplaceInventory(ctx, prod.ID, inv, now); err != nil {
			t.Fatal(err)
		}
		if err := db.ReplaceInventory(ctx, dev.ID, ClusterInventory{Workloads: inv.Workloads[1:2]}, now); err != nil {
			t.Fatal(err)
		}
		badID := imageID(t, db, "sha256:bad")
		mehID := imageID(t, db, "sha256:meh")
		bad := VulnerableImage{Container: "web", Image: "app:bad", Digest: "sha256:bad", ImageID: badID, Critical: 2, High: 1, Fixable: 1}
		badW := bad
		badW.Container = "w"
		meh := VulnerableImage{Container: "log", Image: "app:meh", Digest: "sha256:meh", ImageID: mehID, Medium: 1, Fixable: 1}
		mehT := meh
		mehT.Container = "t"
		fixable := func(im VulnerableImage) VulnerableImage {
			im.Critical, im.High, im.Medium = min(im.Critical, 1), 0, 0
			if im.Digest == "sha256:meh" {
				im.Medium = 1
			}
			return im
		}
		only := func(im VulnerableImage, critical, high int) VulnerableImage {
			im.Critical, im.High, im.Fixable = critical, high, 0
			return im
		}
		type row struct {
			Cluster, Workload string
			Images            []VulnerableImage
		}
		for _, tc := range []struct {
			name string
			f    VulnerableWorkloadFilter
			want []row
		}{
			{"any", VulnerableWorkloadFilter{}, []row{
				{"dev", "worker", []VulnerableImage{badW}},
				{"prod", "tools", []VulnerableImage{mehT}},
				{"prod", "worker", []VulnerableImage{badW}},
				{"prod", "web", []VulnerableImage{meh, bad}},
			}},
			{"critical", VulnerableWorkloadFilter{MinSeverity: model.SeverityCritical}, []row{
				{"dev", "worker", []VulnerableImage{badW}},
				{"prod", "worker", []VulnerableImage{badW}},
				{"prod", "web", []VulnerableImage{bad}},
			}},
			{"critical fixable in prod", VulnerableWorkloadFilter{ClusterID: prod.ID, MinSeverity: model.SeverityCritical, Fixable: true}, []row{
				{"prod", "worker", []VulnerableImage{fixable(badW)}},
				{"prod", "web", []VulnerableImage{fixable(bad)}},
			}},
			{"high fixable", VulnerableWorkloadFilter{MinSeverity: model.SeverityHigh, Fixable: true, Namespace: "ops"}, nil},
			{"medium fixable in ops", VulnerableWorkloadFilter{MinSeverity: model.SeverityMedium, Fixable: true, Namespace: "ops"}, []row{
				{"prod", "tools", []VulnerableImage{fixable(mehT)}},
			}},
			{"vulnerability by alias", VulnerableWorkloadFilter{Vulnerability: "CVE-CRIT-NOFIX", ClusterID: prod.ID}, []row{
				{"prod", "worker", []VulnerableImage{only(badW, 1, 0)}},
				{"prod", "web", []VulnerableImage{only(bad, 1, 0)}},
			}},
			{"vulnerability fixable", VulnerableWorkloadFilter{Vulnerability: "HIGH", Fixable: true}, nil},
			{"exposed", VulnerableWorkloadFilter{Exposed: true, MinSeverity: model.SeverityHigh}, []row{
				{"prod", "web", []VulnerableImage{bad}},
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []row
				cur := ""
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatal("paging does not end")
					}
					page, next, err := db.VulnerableWorkloads(ctx, tc.f, Page{Limit: 1, Cursor: cur})
					if err != nil {
						t.Fatal(err)
					}
					for _, v := range page {
						if v.Workload.Pods != nil {
							t.Errorf("workload %s read with its pods", v.Workload.Name)
						}
						got = append(got, row{v.Workload.Cluster, v.Workload.Name, v.Images})
					}
					if next == "" {
						break
					}
					cur = next
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("vulnerable workloads (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func imageID(t *testing.T, db *DB, digest string) int64 {
	t.Helper()
	im, err := db.ImageByDigest(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	return im.ID
}

func TestPostureFindings(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		clk := newClock(db)
		prod, dev := createCluster(t, db, "prod"), createCluster(t, db, "dev")
		privileged := PostureFinding{CheckID: "KSV017", Title: "Privileged container", Severity: "HIGH", Frameworks: []string{"CIS-5.2.1", "PSS-baseline"},
			ResourceKind: "Deployment", ResourceNamespace: "shop", ResourceName: "web", Evidence: []string{"container web: privileged: true"}}
		hostNet := PostureFinding{CheckID: "KSV009", Title: "Host network", Severity: "high", Frameworks: []string{"PSS-baseline"},
			ResourceKind: "DaemonSet", ResourceNamespace: "kube-system", ResourceName: "agent"}
		anon := PostureFinding{CheckID: "K8S-ANON", Title: "Anonymous auth", Severity: "critical", Frameworks: []string{"CIS-1.2.1"},
			ResourceKind: "Cluster", ResourceName: "prod"}
		odd := PostureFinding{CheckID: "ODD", Severity: "catastrophic", ResourceKind: "Pod", ResourceNamespace: "shop", ResourceName: "p"}

		opened, resolved, err := db.ReplacePostureFindings(ctx, prod.ID, []PostureFinding{privileged, hostNet, anon, odd, privileged}, clk.now())
		if err != nil || opened != 4 || resolved != 0 {
			t.Fatalf("first evaluation: opened %d, resolved %d, %v", opened, resolved, err)
		}
		firstSeen := clk.now()
		if _, _, err := db.ReplacePostureFindings(ctx, dev.ID, []PostureFinding{privileged}, clk.now()); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Hour)
		opened, resolved, err = db.ReplacePostureFindings(ctx, prod.ID, []PostureFinding{hostNet, anon}, clk.now())
		if err != nil || opened != 0 || resolved != 2 {
			t.Fatalf("second evaluation: opened %d, resolved %d, %v", opened, resolved, err)
		}
		resolvedAt := clk.now()
		clk.add(time.Hour)
		privileged.Evidence = append(privileged.Evidence, "container sidecar: privileged: true")
		opened, resolved, err = db.ReplacePostureFindings(ctx, prod.ID, []PostureFinding{privileged, hostNet, anon}, clk.now())
		if err != nil || opened != 1 || resolved != 0 {
			t.Fatalf("third evaluation: opened %d, resolved %d, %v", opened, resolved, err)
		}
		if _, _, err := db.ReplacePostureFindings(ctx, 999, nil, clk.now()); !errors.Is(err, ErrNotFound) {
			t.Errorf("evaluation of a missing cluster: err = %v", err)
		}

		all, _, err := db.PostureFindings(ctx, PostureFilter{ClusterID: prod.ID, State: StateAll}, Page{})
		if err != nil {
			t.Fatal(err)
		}
		want := []PostureFinding{
			{ClusterID: prod.ID, Cluster: "prod", CheckID: "ODD", Severity: "UNKNOWN", ResourceKind: "Pod", ResourceNamespace: "shop", ResourceName: "p",
				FirstSeenAt: firstSeen, LastSeenAt: firstSeen, ResolvedAt: resolvedAt, State: StateResolved},
			{ClusterID: prod.ID, Cluster: "prod", CheckID: "K8S-ANON", Title: "Anonymous auth", Severity: "CRITICAL", Frameworks: []string{"CIS-1.2.1"},
				ResourceKind: "Cluster", ResourceName: "prod", FirstSeenAt: firstSeen, LastSeenAt: clk.now(), State: StateOpen},
			{ClusterID: prod.ID, Cluster: "prod", CheckID: "KSV009", Title: "Host network", Severity: "HIGH", Frameworks: []string{"PSS-baseline"},
				ResourceKind: "DaemonSet", ResourceNamespace: "kube-system", ResourceName: "agent", FirstSeenAt: firstSeen, LastSeenAt: clk.now(), State: StateOpen},
			{ClusterID: prod.ID, Cluster: "prod", CheckID: "KSV017", Title: "Privileged container", Severity: "HIGH", Frameworks: []string{"CIS-5.2.1", "PSS-baseline"},
				ResourceKind: "Deployment", ResourceNamespace: "shop", ResourceName: "web", Evidence: privileged.Evidence,
				FirstSeenAt: firstSeen, LastSeenAt: clk.now(), State: StateOpen},
		}
		if diff := cmp.Diff(want, all, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(PostureFinding{}, "ID")); diff != "" {
			t.Errorf("posture findings after reopening (-want +got):\n%s", diff)
		}

		for _, tc := range []struct {
			name string
			f    PostureFilter
			want []string
		}{
			{"open", PostureFilter{}, []string{"dev/KSV017", "prod/K8S-ANON", "prod/KSV009", "prod/KSV017"}},
			{"resolved", PostureFilter{State: StateResolved}, []string{"prod/ODD"}},
			{"check", PostureFilter{CheckID: "KSV017"}, []string{"dev/KSV017", "prod/KSV017"}},
			{"namespace", PostureFilter{Namespace: "kube-system"}, []string{"prod/KSV009"}},
			{"kind and name", PostureFilter{ResourceKind: "Deployment", ResourceName: "web", ClusterID: dev.ID}, []string{"dev/KSV017"}},
			{"framework", PostureFilter{Framework: "PSS-baseline", ClusterID: prod.ID}, []string{"prod/KSV009", "prod/KSV017"}},
			{"framework is exact", PostureFilter{Framework: "CIS"}, nil},
			{"severity", PostureFilter{Severity: "critical"}, []string{"prod/K8S-ANON"}},
			{"min severity", PostureFilter{MinSeverity: "HIGH", ClusterID: prod.ID}, []string{"prod/K8S-ANON", "prod/KSV009", "prod/KSV017"}},
			{"min severity all states", PostureFilter{MinSeverity: "LOW", State: StateAll, ClusterID: prod.ID}, []string{"prod/K8S-ANON", "prod/KSV009", "prod/KSV017"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got []string
				seen := map[int64]bool{}
				cur := ""
				for pages := 0; ; pages++ {
					if pages > 10 {
						t.Fatal("paging does not end")
					}
					page, next, err := db.PostureFindings(ctx, tc.f, Page{Limit: 2, Cursor: cur})
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range page {
						if seen[p.ID] {
							t.Fatalf("posture finding %d on two pages", p.ID)
						}
						seen[p.ID] = true
						got = append(got, p.Cluster+"/"+p.CheckID)
					}
					if next == "" {
						break
					}
					cur = next
				}
				if diff := cmp.Diff(tc.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
					t.Errorf("posture findings (-want +got):\n%s", diff)
				}
			})
		}
		for _, f := range []PostureFilter{{State: "fixed"}, {Severity: "bad"}, {MinSeverity: "worse"}} {
			if _, _, err := db.PostureFindings(ctx, f, Page{}); err == nil {
				t.Errorf("filter %+v accepted", f)
			}
		}

		// Resolved findings are kept as long as fixed ones.
		clk.add(91 * 24 * time.Hour)
		pruned, err := db.Prune(ctx, DefaultRetention())
		if err != nil || pruned["posture_findings"] != 1 {
			t.Errorf("pruned = %v, %v; want one posture finding", pruned, err)
		}
		if left, _, _ := db.PostureFindings(ctx, PostureFilter{State: StateAll}, Page{}); len(left) != 4 {
			t.Errorf("%d posture findings left after pruning, want the 4 open", len(left))
		}
	})
}

func TestClusterHostileText(t *testing.T) {
	backends(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		huge := strings.Repeat("é", 1<<19) // 1 MB
		c := &Cluster{Name: "bad\x00name\xff", Source: ClusterSourceKubeconfig, Context: huge, Server: "https://\x00"}
		if err := db.CreateCluster(ctx, c, nil); err != nil {
			t.Fatalf("creating a cluster with hostile text: %v", err)
		}
		if c.Name != "badname\uFFFD" {
			t.Errorf("stored name %q", c.Name)
		}
		if _, err := db.ClusterByName(ctx, "bad\x00name\xff"); err != nil {
			t.Errorf("cluster by its hostile name: %v", err)
		}
		w := deployment("ns\x00"+huge, "w\xff"+huge, []string{huge + "\x00"},
			WorkloadContainer{Name: huge, Kind: "regular\x00", Image: huge + "\xfe", Digest: "sha256:\x00" + huge, Capabilities: []string{huge}})
		w.ServiceAccount = huge
		inv := ClusterInventory{
			Namespaces: []ClusterNamespace{{Name: "ns\x00" + huge, Labels: map[string]string{huge + "\x00": "v\xff" + huge}}},
			Workloads:  []Workload{w},
		}
		if err := db.ReplaceInventory(ctx, c.ID, inv, time.Now()); err != nil {
			t.Fatalf("storing an inventory with hostile text: %v", err)
		}
		// Twice: the cleaned text must read as unchanged.
		if err := db.ReplaceInventory(ctx, c.ID, inv, time.Now()); err != nil {
			t.Fatalf("storing an inventory with hostile text again: %v", err)
		}
		finding := PostureFinding{CheckID: "C\x00" + huge, Title: huge, Severity: "HIGH\x00", Frameworks: []string{huge},
			ResourceKind: "Deployment", ResourceNamespace: "ns\x00" + huge, ResourceName: "w\xff" + huge, Evidence: []string{huge + "\xff", "\x00"}}
		if _, _, err := db.ReplacePostureFindings(ctx, c.ID, []PostureFinding{finding}, time.Now()); err != nil {
			t.Fatalf("storing a posture finding with hostile text: %v", err)
		}
		if _, _, err := db.ReplacePostureFindings(ctx, c.ID, []PostureFinding{finding}, time.Now()); err != nil {
			t.Fatalf("storing a posture finding with hostile text again: %v", err)
		}

		sane := func(what, s string, max int) {
			t.Helper()
			if !utf8.ValidString(s) || strings.Contains(s, "\x00") || len(s) > max || s == "" {
				t.Errorf("%s: %d bytes, valid %v", what, len(s), utf8.ValidString(s))
			}
		}
		ws, _, err := db.Workloads(ctx, WorkloadFilter{ClusterID: c.ID}, Page{})
		if err != nil || len(ws) != 1 {
			t.Fatalf("workloads = %d, %v", len(ws), err)
		}
		got := ws[0]
		sane("namespace", got.Namespace, maxObjectName)
		sane("name", got.Name, maxObjectName)
		sane("service account", got.ServiceAccount, maxObjectName)
		sane("exposure", got.Exposure[0], maxShortText)
		ct := got.Pods[0].Containers[0]
		sane("container", ct.Name, maxObjectName)
		sane("image", ct.Image, maxImage)
		sane("digest", ct.Digest, maxDigest)
		sane("capability", ct.Capabilities[0], maxKind)
		if ct.Kind != ContainerRegular {
			t.Errorf("container kind %q", ct.Kind)
		}
		nss, err := db.ClusterNamespaces(ctx, c.ID)
		if err != nil || len(nss) != 1 {
			t.Fatalf("namespaces = %v, %v", nss, err)
		}
		sane("namespace", nss[0].Name, maxObjectName)
		for k, v := range nss[0].Labels {
			sane("label key", k, maxShortText)
			sane("label value", v, maxShortText)
		}
		ps, _, err := db.PostureFindings(ctx, PostureFilter{ClusterID: c.ID}, Page{})
		if err != nil || len(ps) != 1 {
			t.Fatalf("posture findings = %d, %v", len(ps), err)
		}
		p := ps[0]
		sane("check", p.CheckID, maxKind)
		sane("title", p.Title, maxShortText)
		sane("evidence", p.Evidence[0], maxLongText)
		sane("resource name", p.ResourceName, maxObjectName)
		if p.Severity != "HIGH" || p.Evidence[1] != "" {
			t.Errorf("severity %q, second evidence %q", p.Severity, p.Evidence[1])
		}
	})
}
