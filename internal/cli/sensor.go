package cli

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/sensor"
)

func newSensorCommand(g *globals) *cobra.Command {
	var c sensor.Config
	cmd := &cobra.Command{
		Use:   "sensor",
		Short: "Run the node sensor: process, DNS and connection events to the server",
		Long: "Run Bulwark's node sensor on a Kubernetes node (a privileged DaemonSet with\n" +
			"the host's pid namespace, see deploy/sensor/sensor.yaml). It watches\n" +
			"process executions, DNS queries and outbound connections with eBPF (or\n" +
			"the kernel's proc connector and fanotify where BPF is refused), names\n" +
			"the container of each through containerd, and pushes them to the\n" +
			"server, which runs the runtime detection rules.\n\n" +
			"On first start it enrols with the token in --enroll-token-file (or env\n" +
			"BULWARK_ENROLL_TOKEN), made with `bulwark token create --role enroll`,\n" +
			"and keeps the credential it receives in --state-dir. While the server\n" +
			"is unreachable, events wait in a bounded buffer in --state-dir.",
		Example: "  bulwark sensor --server https://bulwark.example:8080 --cluster prod --node $(hostname) \\\n" +
			"    --enroll-token-file /etc/bulwark/enroll/token --ca-file /etc/bulwark/ca.crt",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := &c.Transport
			if t.Server == "" {
				return usagef("--server is required")
			}
			if t.Node == "" {
				host, err := os.Hostname()
				if err != nil {
					return usagef("--node is required: the host name is unknown: %v", err)
				}
				t.Node = host
			}
			if t.TokenFile == "" {
				t.Token, _ = g.lookupEnv("BULWARK_ENROLL_TOKEN")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c.Logger = g.logger
			return sensor.Run(ctx, c)
		},
	}
	f := cmd.Flags()
	t := &c.Transport
	f.StringVar(&t.Server, "server", "", "the Bulwark server's URL, https://host:port (required)")
	f.StringVar(&t.CAFile, "ca-file", "", "PEM file of the CA that signed the server's certificate (default: the system's roots)")
	f.StringVar(&t.Cluster, "cluster", "", "the cluster's name in Bulwark, sent when enrolling")
	f.StringVar(&t.Node, "node", "", "this node's name (default: the host name; in a DaemonSet, spec.nodeName)")
	f.StringVar(&t.StateDir, "state-dir", "/var/lib/bulwark-sensor", "directory for the sensor's credential and its disk buffer")
	f.StringVar(&t.TokenFile, "enroll-token-file", "", "file holding the enrolment token (or env BULWARK_ENROLL_TOKEN); needed until the sensor has enrolled")
	f.IntVar(&t.BatchEvents, "batch-events", 1000, "events per batch at most")
	f.DurationVar(&t.BatchInterval, "batch-interval", 0, "how long events wait to fill a batch (default 1s)")
	f.Int64Var(&t.SpoolBytes, "buffer-bytes", 256<<20, "size of the disk buffer for events the server has not taken; when full, new events are dropped and counted")
	f.StringVar(&c.Source, "source", sensor.SourceAuto, "event source: auto (eBPF, else the proc connector), bpf or proc")
	f.IntVar(&c.RingSize, "ring-bytes", 0, "eBPF ring buffer size, a power of two (default 256 KiB)")
	f.StringVar(&c.ContainerdSocket, "containerd-socket", "/run/containerd/containerd.sock", "containerd's socket, to name the container of each event; empty for none")
	f.StringVar(&c.CRISocket, "cri-socket", "", "a CRI runtime's socket (CRI-O: /var/run/crio/crio.sock), used instead of containerd's API")
	f.StringSliceVar(&c.ContainerdNamespaces, "containerd-namespace", nil, "containerd namespace to attribute (repeatable; default all, Kubernetes uses k8s.io)")
	f.StringVar(&c.ProcRoot, "proc-root", "/proc", "where the host's /proc is visible")
	f.StringVar(&c.HostRoot, "host-root", "/", "where the host's root file system is visible (for the proc-connector fallback's drift checks)")
	return cmd
}
