package cli

import (
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/version"
)

func newServerCommand(g *globals) *cobra.Command {
	c := server.Config{Retention: store.DefaultRetention()}
	var auditDays, scanDays, fixedDays, imageDays, eventDays, sensorEventDays int
	var auditLogs []string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API, the scheduler and the registry connectors",
		Long: "Run Bulwark's server: the REST API under /api/v1 (OpenAPI at\n" +
			"/api/v1/openapi.json), /healthz, /readyz and /metrics, the registry\n" +
			"connectors and continuous scanning. State lives in an SQLite file under\n" +
			"--data-dir, or in PostgreSQL with --database postgres://…\n\n" +
			"The first admin token comes from BULWARK_ADMIN_TOKEN or --admin-token-file;\n" +
			"with neither, one is generated on first start and printed once.\n" +
			"Registry credentials are sealed with the key in BULWARK_SECRET_KEY or\n" +
			"--secret-key-file (generated under --data-dir for SQLite when absent).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c.AdminToken, _ = g.lookupEnv("BULWARK_ADMIN_TOKEN")
			c.SecretKey, _ = g.lookupEnv("BULWARK_SECRET_KEY")
			if c.Database == "" {
				c.Database, _ = g.lookupEnv("BULWARK_DATABASE")
			}
			c.Retention.AuditLog = days(auditDays)
			c.Retention.Scans = days(scanDays)
			c.Retention.FixedFindings = days(fixedDays)
			c.Retention.Images = days(imageDays)
			c.Retention.AuditEvents = days(eventDays)
			c.Retention.SensorEvents = days(sensorEventDays)
			for _, a := range auditLogs {
				f, err := server.ParseAuditLogFile(a)
				if err != nil {
					return usagef("--k8s-audit-log: %v", err)
				}
				c.AuditLogs = append(c.AuditLogs, f)
			}
			c.LookupEnv = g.lookupEnv
			c.Logger, c.Out, c.Version = g.logger, cmd.ErrOrStderr(), version.Version
			return server.Run(ctx, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&c.DataDir, "data-dir", "", "directory for the SQLite database, the generated credentials key and the layer cache (required)")
	f.StringVar(&c.Database, "database", "", "PostgreSQL URL (postgres://…, or env BULWARK_DATABASE, which keeps the password out of the process list); empty uses SQLite under --data-dir")
	f.StringVar(&c.DBDir, "db-dir", "", "vulnerability database directory (default <data-dir>/vulndb; fill it with `bulwark db update` or `db import`)")
	f.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS")
	f.StringVar(&c.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
	f.StringVar(&c.SecretKeyFile, "secret-key-file", "", "file of keys (base64 or hex, one per line, first seals) for registry credentials and cluster kubeconfigs")
	f.StringVar(&c.AdminTokenFile, "admin-token-file", "", "file holding the first admin token")
	f.IntVar(&c.Workers, "workers", 2, "scans run at once")
	f.DurationVar(&c.PollInterval, "poll-interval", 15*time.Minute, "how often registries are listed, unless a registry sets its own")
	f.StringVar(&c.PostureChecksDir, "posture-checks", "", "directory of your own posture checks (*.yaml), evaluated with the built-in ones")
	addAdmissionFlags(f, &c.Admission)
	f.StringVar(&c.AuditRulesDir, "audit-rules", "", "directory of your own control-plane detection rules (*.yaml), with the built-in ones")
	f.StringVar(&c.RuntimeRulesDir, "runtime-rules", "", "directory of your own runtime detection rules for node sensor events (*.yaml), with the built-in ones")
	f.StringVar(&c.RuntimeListsDir, "runtime-lists", "", "directory of lists (*.txt, e.g. miner-pools.txt) added to the runtime rules' shipped lists")
	f.StringVar(&c.AlertOutputsFile, "alert-outputs", "", "YAML file of alert outputs (webhook, Slack, syslog); secrets come from the environment variables it names")
	f.StringArrayVar(&auditLogs, "k8s-audit-log", nil, "CLUSTER=PATH of a kube-apiserver audit log (JSON lines) to tail (repeatable)")
	f.IntVar(&eventDays, "retention-audit-event-days", 7, "days Kubernetes audit events are kept for hunting (0 forever)")
	f.IntVar(&sensorEventDays, "retention-sensor-event-days", 7, "days node sensor events are kept for hunting (0 forever)")
	f.IntVar(&auditDays, "retention-audit-days", 90, "days the audit log and admission decisions are kept (0 forever)")
	f.IntVar(&scanDays, "retention-scan-days", 30, "days finished scan records are kept (0 forever)")
	f.IntVar(&fixedDays, "retention-fixed-days", 90, "days fixed findings are kept (0 forever)")
	f.IntVar(&imageDays, "retention-image-days", 30, "days an image no registry lists any more is kept (0 forever)")
	return cmd
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// addAdmissionFlags adds the flags of the admission webhook.
func addAdmissionFlags(f *pflag.FlagSet, a *server.AdmissionConfig) {
	f.StringVar(&a.Listen, "admission-listen", "", "HTTPS address for the admission webhook kube-apiserver calls (empty: no webhook)")
	f.StringVar(&a.PolicyFile, "admission-policy", "", "admission policy file (YAML; default: the built-in policy)")
	f.StringVar(&a.CertDir, "admission-cert-dir", "", "where the webhook's CA and serving certificate are kept (default <data-dir>/admission)")
	f.StringSliceVar(&a.Hosts, "admission-host", nil, "DNS name or IP the webhook's certificate is for (repeatable; default localhost, 127.0.0.1, the listen host and the hostname)")
	f.StringVar(&a.ClientCA, "admission-client-ca", "", "PEM CA file: require client certificates it signed (kube-apiserver's)")
}
