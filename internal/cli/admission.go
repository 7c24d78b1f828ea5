package cli

import (
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bulwarkhq/bulwark/internal/admission/webhook"
	"github.com/bulwarkhq/bulwark/internal/server"
)

// webhookFlags are the settings of the ValidatingWebhookConfiguration.
type webhookFlags struct {
	name, failurePolicy string
	timeout             int32
	exclude             []string
}

func (w *webhookFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&w.name, "webhook-name", webhook.DefaultName, "name of the ValidatingWebhookConfiguration")
	f.StringVar(&w.failurePolicy, "failure-policy", "Ignore", "Ignore (a webhook that is down or slow admits) or Fail")
	f.Int32Var(&w.timeout, "timeout", webhook.DefaultTimeoutSeconds, "seconds kube-apiserver waits for a review (1-30)")
	f.StringSliceVar(&w.exclude, "exclude-namespace", nil, "namespace never reviewed besides kube-system (repeatable): the one Bulwark runs in")
}

func (w *webhookFlags) config() webhook.Config {
	return webhook.Config{Name: w.name, FailurePolicy: w.failurePolicy, TimeoutSeconds: w.timeout, ExcludeNamespaces: w.exclude}
}

func newAdmissionCommand(g *globals) *cobra.Command {
	c := server.AdmissionOnlyConfig{}
	var (
		wf                           webhookFlags
		register                     bool
		webhookURL, service, svcPath string
		svcPort                      int32
	)
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "Run the admission webhook alone, in the cluster it guards",
		Long: "Serve Bulwark's validating admission webhook on its own, for a deployment\n" +
			"inside the cluster: it shares the server's store (--database, or the\n" +
			"SQLite file under --data-dir), watches the cluster's namespaces for their\n" +
			"labels, and with --register registers itself with a CA and serving\n" +
			"certificate it creates and rotates. `bulwark server --admission-listen`\n" +
			"serves the same webhook inside the server.",
		Example: "  bulwark admission --database postgres://… --data-dir /var/lib/bulwark --cluster prod \\\n" +
			"    --register --service bulwark/bulwark-admission --exclude-namespace bulwark\n" +
			"  bulwark admission register --kubeconfig admin.kubeconfig --url https://bulwark.example:8443/validate/prod \\\n" +
			"    --ca-bundle /var/lib/bulwark/admission/ca.crt",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if register {
				cfg := wf.config()
				switch {
				case webhookURL != "" && service != "":
					return usagef("give --url or --service, not both")
				case webhookURL != "":
					cfg.URL = webhookURL
				case service != "":
					ns, name, ok := strings.Cut(service, "/")
					if !ok {
						return usagef("--service must be NAMESPACE/NAME")
					}
					p := svcPath
					cfg.Service = &admissionregistrationv1.ServiceReference{Namespace: ns, Name: name, Path: &p, Port: &svcPort}
					cfg.ExcludeNamespaces = append(cfg.ExcludeNamespaces, ns)
					if len(c.Admission.Hosts) == 0 {
						c.Admission.Hosts = []string{name, name + "." + ns, name + "." + ns + ".svc"}
					}
				default:
					return usagef("--register needs --url or --service")
				}
				c.Register = &cfg
			}
			if c.Database == "" {
				c.Database, _ = g.lookupEnv("BULWARK_DATABASE")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c.Logger = g.logger
			return server.RunAdmission(ctx, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.DataDir, "data-dir", "", "directory for the SQLite database (shared with the server) and the webhook's certificates (required)")
	f.StringVar(&c.Database, "database", "", "PostgreSQL URL shared with the server (or env BULWARK_DATABASE); empty uses SQLite under --data-dir")
	f.StringVar(&c.Cluster, "cluster", "", "name decisions are recorded under (the cluster's name in Bulwark)")
	f.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: the pod's service account)")
	f.BoolVar(&register, "register", false, "register the webhook (and again when its CA changes)")
	f.StringVar(&webhookURL, "url", "", "with --register: the URL kube-apiserver calls (https://host:port/validate)")
	f.StringVar(&service, "service", "", "with --register: the Service in front of this webhook, NAMESPACE/NAME")
	f.StringVar(&svcPath, "service-path", "/validate", "with --service: the path")
	f.Int32Var(&svcPort, "service-port", 443, "with --service: the Service's port")
	wf.add(cmd)
	addAdmissionFlags(f, &c.Admission)
	c.Admission.Listen = ":8443"
	f.Lookup("admission-listen").DefValue = ":8443"
	cmd.AddCommand(newAdmissionRegisterCommand(), newAdmissionUnregisterCommand(), newAdmissionDecisionsCommand())
	return cmd
}

func newAdmissionRegisterCommand() *cobra.Command {
	var (
		wf                          webhookFlags
		kubeconfig, kubeContext, ca string
		webhookURL                  string
	)
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register a server's admission webhook with a cluster (ValidatingWebhookConfiguration)",
		Long: "Create or update the ValidatingWebhookConfiguration that makes the cluster's\n" +
			"API server call Bulwark's webhook. Use it for `bulwark server\n" +
			"--admission-listen`: the URL names the cluster as Bulwark knows it\n" +
			"(https://HOST:PORT/validate/CLUSTER) and --ca-bundle is the CA the server\n" +
			"generated (<data-dir>/admission/ca.crt). It needs a kubeconfig allowed to\n" +
			"write validatingwebhookconfigurations, not the connector's.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if webhookURL == "" || ca == "" {
				return usagef("--url and --ca-bundle are required")
			}
			if u, err := url.Parse(webhookURL); err != nil || u.Scheme != "https" {
				return usagef("--url must be an https URL")
			}
			pem, err := os.ReadFile(ca)
			if err != nil {
				return fmt.Errorf("reading the CA bundle: %w", err)
			}
			client, err := adminClient(kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			cfg := wf.config()
			cfg.URL, cfg.CABundle = webhookURL, pem
			if err := webhook.Register(cmd.Context(), client, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered ValidatingWebhookConfiguration %s → %s (failurePolicy %s)\n", cfg.Name, webhookURL, cfg.FailurePolicy)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context")
	f.StringVar(&webhookURL, "url", "", "URL of the webhook, https://HOST:PORT/validate/CLUSTER")
	f.StringVar(&ca, "ca-bundle", "", "PEM file of the CA that signed the webhook's certificate")
	wf.add(cmd)
	return cmd
}

func newAdmissionUnregisterCommand() *cobra.Command {
	var kubeconfig, kubeContext, name string
	cmd := &cobra.Command{
		Use:   "unregister",
		Short: "Remove the ValidatingWebhookConfiguration Bulwark registered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := adminClient(kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			if err := webhook.Unregister(cmd.Context(), client, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed ValidatingWebhookConfiguration %s\n", name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context")
	f.StringVar(&name, "webhook-name", webhook.DefaultName, "name of the ValidatingWebhookConfiguration")
	return cmd
}

// adminClient is a client from the user's own kubeconfig, as kubectl
// would load it.
func adminClient(path, context string) (kubernetes.Interface, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	rc.Timeout = 30 * time.Second
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	return client, nil
}

func newAdmissionDecisionsCommand() *cobra.Command {
	var cf clientFlags
	var clusterName, namespace, action, rule string
	var denied, breakGlass bool
	var limit int
	cmd := &cobra.Command{
		Use:   "decisions",
		Short: "List the admission webhook's decisions, newest first",
		Example: "  bulwark admission decisions --denied\n" +
			"  bulwark admission decisions --break-glass -f json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			params := map[string]string{"cluster": clusterName, "namespace": namespace, "action": action, "rule": rule}
			if denied {
				params["denied"] = "true"
			}
			if breakGlass {
				params["breakGlass"] = "true"
			}
			items, err := c.pages(cmd.Context(), "/api/v1/admission/decisions", listQuery(500, params), limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "decision", items, "TIME\tCLUSTER\tNAMESPACE\tOBJECT\tALLOWED\tACTION\tRULES\tUSER",
				func(d struct {
					At                                     time.Time
					Cluster, Namespace, Kind, Name, Action string
					User                                   string
					Allowed, BreakGlass                    bool
					Rules                                  []string
				}) []string {
					action := d.Action
					if d.BreakGlass {
						action += " (break-glass)"
					}
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s/%s\t%t\t%s\t%s\t%s", d.At.Format(time.RFC3339), orDash(d.Cluster), d.Namespace,
						d.Kind, d.Name, d.Allowed, action, orDash(strings.Join(d.Rules, ",")), d.User)}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster", "", "cluster name")
	f.StringVar(&namespace, "namespace", "", "namespace")
	f.StringVar(&action, "action", "", "deny, warn, audit, allow or error")
	f.StringVar(&rule, "rule", "", "rule id")
	f.BoolVar(&denied, "denied", false, "only refused reviews")
	f.BoolVar(&breakGlass, "break-glass", false, "only reviews admitted through the break-glass annotation")
	f.IntVar(&limit, "limit", 0, "most decisions to list (0 all)")
	return cmd
}
