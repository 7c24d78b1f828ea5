package cluster_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bulwarkhq/bulwark/internal/cluster"
	"github.com/bulwarkhq/bulwark/internal/secretbox"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// TestUnreachableClusterRecordsError registers a cluster whose API server
// does not answer: the manager records the failure on the cluster, without
// the token, and keeps retrying; removing the cluster stops it.
func TestUnreachableClusterRecordsError(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const token = "tok-never-shown-123"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["x"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:" + strconv.Itoa(port), InsecureSkipTLSVerify: true}
	cfg.AuthInfos["x"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "x", AuthInfo: "x"}
	cfg.CurrentContext = "x"
	data := must(clientcmd.Write(*cfg))
	kc := must(cluster.Prepare(data, ""))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box := must(secretbox.New(key))
	db := must(store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "bulwark.db"), nil))
	defer db.Close()
	c := &store.Cluster{Name: "gone", Source: store.ClusterSourceKubeconfig, Context: kc.Context, Server: kc.Server}
	if err := db.CreateCluster(ctx, c, must(box.Seal(kc.Data, cluster.SealContext(c.Name)))); err != nil {
		t.Fatal(err)
	}
	mgr := must(cluster.New(cluster.Options{Store: db, Box: box, Tick: 100 * time.Millisecond, Lease: time.Second}))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the failure to be recorded", 30*time.Second, func() (bool, error) {
		cl, err := db.Cluster(ctx, c.ID)
		return err == nil && cl.Status == store.ClusterError, err
	})
	cl := must(db.Cluster(ctx, c.ID))
	if !strings.Contains(cl.Error, "reaching the API server") || strings.Contains(cl.Error, token) {
		t.Errorf("recorded error = %q", cl.Error)
	}
	if err := db.DeleteCluster(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
}
