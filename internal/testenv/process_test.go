package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessStopByPID(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"exits on SIGTERM", "echo started; exec sleep 60"},
		{"ignores SIGTERM and is killed", "trap '' TERM; echo started; sleep 60 & wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := startProcess(dir, "sh", processOptions{}, "/bin/sh", "-c", tc.script)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(p.Tail(5), "started") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			p.Stop(200 * time.Millisecond)
			select {
			case <-p.Done():
			default:
				t.Fatal("Stop returned before the process exited")
			}
			if err := syscall.Kill(p.PID(), 0); err == nil {
				t.Errorf("process %d still exists after Stop", p.PID())
			}
			if got := p.Tail(5); got != "started" {
				t.Errorf("log tail = %q, want %q", got, "started")
			}
		})
	}
}

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := tailFile(path, 2), "line 99\nline 100"; got != want {
		t.Errorf("tailFile = %q, want %q", got, want)
	}
	if got := tailFile(filepath.Join(t.TempDir(), "none"), 2); !strings.HasPrefix(got, "(no log") {
		t.Errorf("tailFile(missing) = %q", got)
	}
}

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...) }
func (r *recorder) Skip(a ...any)             { r.skip = fmt.Sprint(a...) }

func TestMissingFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"true", true}, {"1", true}, {"", false}, {"false", false}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Missing(r, "kube-apiserver not built")
			if tc.wantFail {
				if r.fatal == "" || r.skip != "" || !strings.Contains(r.fatal, "kube-apiserver not built") {
					t.Errorf("under CI=%q: fatal=%q skip=%q, want a failure", tc.ci, r.fatal, r.skip)
				}
			} else if r.skip == "" || r.fatal != "" {
				t.Errorf("under CI=%q: fatal=%q skip=%q, want a skip", tc.ci, r.fatal, r.skip)
			}
		})
	}
}

func TestBuiltBinaryMissing(t *testing.T) {
	t.Setenv("BULWARK_TESTBIN", t.TempDir())
	if _, err := builtBinary("k8s", KubernetesVersion, "kube-apiserver"); err == nil || !strings.Contains(err.Error(), "not built") {
		t.Errorf("builtBinary in an empty cache: err = %v", err)
	}
}
