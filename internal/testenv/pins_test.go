package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPinsMatchBuildModules keeps the versions this package looks for in
// step with the versions hack/testbin.sh builds.
func TestPinsMatchBuildModules(t *testing.T) {
	for _, tc := range []struct{ module, path, want string }{
		{"k8s", "k8s.io/kubernetes", KubernetesVersion},
		{"etcd", "go.etcd.io/etcd/server/v3", EtcdVersion},
		{"kwok", "sigs.k8s.io/kwok", KwokVersion},
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", "hack", tc.module, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(tc.path) + `\s+(\S+)`)
		m := re.FindSubmatch(data)
		if m == nil {
			t.Errorf("hack/%s/go.mod does not require %s", tc.module, tc.path)
			continue
		}
		if got := string(m[1]); got != tc.want {
			t.Errorf("hack/%s/go.mod pins %s %s, testenv expects %s", tc.module, tc.path, got, tc.want)
		}
	}
}
