package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// CRINamespace is the containerd namespace of the images and containers of
// containerd's CRI plugin, the one the kubelet drives.
const CRINamespace = "k8s.io"

// ImportImageInto loads img into the daemon's containerd namespace as ref,
// as ImportImage does for ContainerdNamespace. Images imported into
// CRINamespace are seen by the CRI plugin, for instance as the pod sandbox
// image, which it would otherwise pull.
func (c *Containerd) ImportImageInto(t testing.TB, namespace, ref string, img v1.Image) {
	t.Helper()
	tag, err := containerdTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatalf("writing image %s as docker archive: %v", ref, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := c.runCtrIn(ctx, namespace, "images", "import", archive); err != nil {
		t.Fatalf("importing image %s into namespace %s: %v", ref, namespace, err)
	}
}

// runCtrIn runs ctr against the daemon in namespace and returns its
// standard output.
func (c *Containerd) runCtrIn(ctx context.Context, namespace string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.Socket, "--namespace", namespace}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("ctr -n %s %s: %w: %s", namespace, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
