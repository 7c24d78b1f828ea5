package posture

import (
	"path"
	"strings"
)

// controlPlaneComponents are the executables the controlplane target looks
// for, by base name.
var controlPlaneComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}

// parseFlags reads command-line flags the way the Kubernetes components'
// pflag parsing sees them: "--a=b", "--a b" and bare "--a" (= "true"). A
// repeated flag keeps its last value. Names lose their leading dashes.
// Tokens that are not flags (the executable, positional arguments) are
// ignored.
func parseFlags(args []string) map[string]string {
	flags := make(map[string]string, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "" {
			continue
		}
		if n, v, ok := strings.Cut(name, "="); ok {
			if n != "" {
				flags[n] = v
			}
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			flags[name] = args[i+1]
			i++
			continue
		}
		flags[name] = "true"
	}
	return flags
}

// componentOf names the control-plane component a container runs, judged by
// the base name of its executable ("" if none).
func componentOf(command, args []string) string {
	exe := ""
	switch {
	case len(command) > 0:
		exe = command[0]
	case len(args) > 0:
		exe = args[0]
	}
	base := path.Base(strings.TrimSpace(exe))
	for _, c := range controlPlaneComponents {
		if base == c {
			return c
		}
	}
	return ""
}

// componentFlags returns the flags of a component container: command
// (without the executable) followed by args, as the kubelet would run them.
func componentFlags(command, args []string) map[string]string {
	var all []string
	if len(command) > 0 {
		all = append(all, command[1:]...)
		all = append(all, args...)
	} else if len(args) > 0 {
		if componentOf(nil, args) != "" {
			all = append(all, args[1:]...)
		} else {
			all = append(all, args...)
		}
	}
	return parseFlags(all)
}
