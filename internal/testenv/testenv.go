// Package testenv starts the real components Bulwark's tests run against —
// a Kubernetes control plane (etcd, kube-apiserver, and on request the
// controller-manager, scheduler and kwok), OCI registries, containerd with
// runc, and PostgreSQL — each on loopback, on free ports and in temporary
// directories, and stops them by PID when the test (or, for shared
// components, the package's tests) ends. Logs of a component are kept and
// printed when a test fails.
//
// Components are real programs: the Kubernetes binaries are built from the
// Go module proxy by hack/testbin.sh into a cache outside the repository;
// the others are Debian packages installed by hack/testdeps.sh. When one is
// missing, a test is skipped — unless CI=true, where it fails, so CI can
// never pass by skipping.
//
// The package owns test infrastructure only; production code never imports it.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Pinned versions of the binaries hack/testbin.sh builds. A unit test checks
// them against the build modules under hack/.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.7.3"
	KwokVersion       = "v0.8.0"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// component is a failure rather than a reason to skip.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing ends the test because a component it needs is not installed:
// skipped on a developer machine, failed under CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run `make testdeps` to install the test components)"
	if InCI() {
		t.Fatalf("required test component missing under CI=true: %s", msg)
		return
	}
	t.Skip(msg)
}

// Integration skips the calling test under -short (make test-short runs
// unit tests only). Every helper that starts a real component calls it.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs real components, skipped with -short")
	}
}

// errMissing marks an error caused by a component that is not installed.
var errMissing = errors.New("test component missing")

// fatal ends the test with err, as Missing when err is errMissing.
func fatal(t testing.TB, what string, err error) {
	t.Helper()
	if errors.Is(err, errMissing) {
		Missing(t, "%s: %v", what, err)
	}
	t.Fatalf("%s: %v", what, err)
}

// CacheDir is where hack/testbin.sh puts the binaries it builds:
// $BULWARK_TESTBIN, or bulwark/testbin under the user's cache directory.
func CacheDir() string {
	if d := os.Getenv("BULWARK_TESTBIN"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "bulwark", "testbin")
}

// builtBinary returns the path of a binary hack/testbin.sh built, such as
// builtBinary("k8s", KubernetesVersion, "kube-apiserver").
func builtBinary(component, version, name string) (string, error) {
	p := filepath.Join(CacheDir(), component+"-"+version, name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w: %s not built at %s", errMissing, name, p)
	}
	return p, nil
}

// systemBinary finds a binary from a Debian package on PATH or in the
// directories given.
func systemBinary(name, pkg string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found (Debian package %s)", errMissing, name, pkg)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// httpStatus GETs url and returns the response's status code.
func httpStatus(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitFor calls ready every interval until it returns true, returns an
// error, proc exits (when proc is not nil), or ctx ends.
func waitFor(ctx context.Context, what string, proc *Process, interval time.Duration, ready func(context.Context) (bool, error)) error {
	var last error
	for {
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		var exited <-chan struct{}
		if proc != nil {
			exited = proc.Done()
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last error: %w)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-exited:
			return fmt.Errorf("waiting for %s: %s exited: %w\n%s", what, proc.Name, proc.Err(), proc.Tail(30))
		case <-time.After(interval):
		}
	}
}
