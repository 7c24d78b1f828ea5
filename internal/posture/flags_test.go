package posture

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
	}{
		{"equals", []string{"--a=b", "--empty="}, map[string]string{"a": "b", "empty": ""}},
		{"separate value", []string{"--a", "b"}, map[string]string{"a": "b"}},
		{"bare is true", []string{"--a", "--b"}, map[string]string{"a": "true", "b": "true"}},
		{"last wins", []string{"--a=1", "--a=2", "--a", "3"}, map[string]string{"a": "3"}},
		{"single dash", []string{"-v=2"}, map[string]string{"v": "2"}},
		{"value with equals", []string{"--feature-gates=A=true,B=false"}, map[string]string{"feature-gates": "A=true,B=false"}},
		{"positional ignored", []string{"serve", "--a=b"}, map[string]string{"a": "b"}},
		{"double dash stops", []string{"--a=b", "--", "--c=d"}, map[string]string{"a": "b"}},
		{"dashes only", []string{"-", "---", "--=x"}, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseFlags(tc.args)); diff != "" {
				t.Errorf("parseFlags(%q) (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

func TestComponentOf(t *testing.T) {
	tests := []struct {
		command, args []string
		want          string
		flags         map[string]string
	}{
		{[]string{"kube-apiserver", "--a=b"}, nil, "kube-apiserver", map[string]string{"a": "b"}},
		{[]string{"/usr/local/bin/etcd"}, []string{"--name", "cp1"}, "etcd", map[string]string{"name": "cp1"}},
		{nil, []string{"kube-scheduler", "--profiling=false"}, "kube-scheduler", map[string]string{"profiling": "false"}},
		{[]string{"/bin/sh", "-c", "kube-apiserver --a=b"}, nil, "", map[string]string{"c": "kube-apiserver --a=b"}},
		{[]string{"kube-apiserver-proxy"}, nil, "", map[string]string{}},
	}
	for _, tc := range tests {
		if got := componentOf(tc.command, tc.args); got != tc.want {
			t.Errorf("componentOf(%q, %q) = %q, want %q", tc.command, tc.args, got, tc.want)
		}
		if diff := cmp.Diff(tc.flags, componentFlags(tc.command, tc.args)); diff != "" {
			t.Errorf("componentFlags(%q, %q) (-want +got):\n%s", tc.command, tc.args, diff)
		}
	}
}

func FuzzParseFlags(f *testing.F) {
	f.Add("--a=b --c d --e")
	f.Add("kube-apiserver --authorization-mode=Node,RBAC -- --x")
	f.Add("- -- --= ---a==b")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		flags := parseFlags(args)
		for name := range flags {
			if name == "" || strings.HasPrefix(name, "-") || strings.Contains(name, "=") {
				t.Errorf("parseFlags(%q) produced flag name %q", args, name)
			}
		}
		if len(flags) > len(args) {
			t.Errorf("parseFlags(%q) produced %d flags from %d args", args, len(flags), len(args))
		}
	})
}
