package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/cluster"
)

// clusterRequest is the body of POST /api/v1/clusters.
type clusterRequest struct {
	Name       string `json:"name"`
	Source     string `json:"source"`
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
}

// clusterItem is what the cluster commands read of a cluster.
type clusterItem struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Source     string     `json:"source"`
	Context    string     `json:"context"`
	Server     string     `json:"server"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	Version    string     `json:"version"`
	Namespaces int        `json:"namespaces"`
	Workloads  int        `json:"workloads"`
	Pods       int        `json:"pods"`
	SyncedAt   *time.Time `json:"syncedAt"`
}

func newClusterCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "cluster", Short: "Manage the Kubernetes clusters a server watches"}
	cf.add(cmd)
	cmd.AddCommand(newClusterAddCommand(&cf), newClusterListCommand(&cf), newClusterRemoveCommand(&cf))
	return cmd
}

func newClusterAddCommand(cf *clientFlags) *cobra.Command {
	var kubeconfig, contextName string
	var inCluster, allContexts bool
	cmd := &cobra.Command{
		Use:   "add [NAME]",
		Short: "Add a cluster by kubeconfig, or the cluster the server runs in",
		Long: "Add a cluster for the server to watch. With --kubeconfig the file is read\n" +
			"here, reduced to one context, and the certificates, keys and token files it\n" +
			"refers to are embedded before it is sent; the server seals it and never\n" +
			"shows it again. Exec and auth-provider plugins are refused: give the server\n" +
			"a service-account token. With --in-cluster the server uses its own service\n" +
			"account. With --all-contexts every context of the file becomes a cluster\n" +
			"named after it.",
		Example: "  bulwark cluster add prod --kubeconfig prod.kubeconfig\n" +
			"  bulwark cluster add staging --kubeconfig ~/.kube/config --context staging-admin\n" +
			"  bulwark cluster add --kubeconfig ~/.kube/config --all-contexts\n" +
			"  bulwark cluster add local --in-cluster",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case inCluster && (kubeconfig != "" || contextName != "" || allContexts):
				return usagef("--in-cluster takes no --kubeconfig, --context or --all-contexts")
			case !inCluster && kubeconfig == "":
				return usagef("give --kubeconfig FILE, or --in-cluster for the cluster the server runs in")
			case allContexts && (len(args) > 0 || contextName != ""):
				return usagef("--all-contexts names each cluster after its context: give no NAME and no --context")
			case !allContexts && len(args) == 0:
				return usagef("give the cluster a NAME")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			if inCluster {
				return addCluster(cmd, c, cf, clusterRequest{Name: args[0], Source: "in-cluster"})
			}
			if !allContexts {
				kc, err := cluster.Flatten(kubeconfig, contextName)
				if err != nil {
					return err
				}
				return addCluster(cmd, c, cf, clusterRequest{Name: args[0], Source: "kubeconfig", Kubeconfig: string(kc.Data), Context: kc.Context})
			}
			return addAllContexts(cmd, c, cf, kubeconfig)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster")
	f.StringVar(&contextName, "context", "", "context of the kubeconfig to use (default its current context)")
	f.BoolVar(&inCluster, "in-cluster", false, "the cluster the server runs in, through its service account")
	f.BoolVar(&allContexts, "all-contexts", false, "add one cluster per context of --kubeconfig, named after the context")
	return cmd
}

// addCluster sends one cluster and reports it.
func addCluster(cmd *cobra.Command, c *apiClient, cf *clientFlags, req clusterRequest) error {
	var out clusterItem
	if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/clusters", nil, req, &out); err != nil {
		return fmt.Errorf("adding cluster %s: %w", req.Name, err)
	}
	if cf.format == "json" {
		return writeJSONOut(cmd.OutOrStdout(), out)
	}
	where := "the cluster the server runs in"
	if out.Source != "in-cluster" {
		where = fmt.Sprintf("context %s, %s", out.Context, out.Server)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "cluster %s added (id %d, %s)\n", out.Name, out.ID, where)
	return nil
}

// addAllContexts adds a cluster for every context of a kubeconfig file,
// going on after a failure; it fails if any context could not be added.
func addAllContexts(cmd *cobra.Command, c *apiClient, cf *clientFlags, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	contexts, err := cluster.Contexts(data)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if len(contexts) == 0 {
		return fmt.Errorf("kubeconfig %s has no contexts", path)
	}
	var added []clusterItem
	failed := 0
	for _, name := range contexts {
		err := func() error {
			kc, err := cluster.Flatten(path, name)
			if err != nil {
				return err
			}
			var out clusterItem
			req := clusterRequest{Name: name, Source: "kubeconfig", Kubeconfig: string(kc.Data), Context: kc.Context}
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/clusters", nil, req, &out); err != nil {
				return err
			}
			added = append(added, out)
			if cf.format != "json" {
				fmt.Fprintf(cmd.OutOrStdout(), "cluster %s added (id %d, %s)\n", out.Name, out.ID, out.Server)
			}
			return nil
		}()
		if err != nil {
			failed++
			fmt.Fprintf(cmd.ErrOrStderr(), "cluster %s not added: %v\n", name, err)
		}
	}
	if cf.format == "json" {
		if err := writeJSONOut(cmd.OutOrStdout(), added); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d contexts of %s could not be added", failed, len(contexts), path)
	}
	return nil
}

func listClusters(ctx context.Context, c *apiClient) ([]clusterItem, error) {
	var out struct {
		Items []clusterItem `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/clusters", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

func newClusterListCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List clusters with how their last inventory went",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			items, err := listClusters(cmd.Context(), c)
			if err != nil {
				return err
			}
			if cf.format == "json" {
				return writeJSONOut(cmd.OutOrStdout(), items)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tVERSION\tNAMESPACES\tWORKLOADS\tPODS\tSYNCED\tERROR")
			for _, cl := range items {
				synced := "never"
				if cl.SyncedAt != nil {
					synced = cl.SyncedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", cl.Name, cl.Status, orDash(cl.Version), cl.Namespaces, cl.Workloads, cl.Pods,
					synced, oneLine(cl.Error))
			}
			return tw.Flush()
		},
	}
}

func newClusterRemoveCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop watching a cluster and delete its inventory and posture findings",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			items, err := listClusters(cmd.Context(), c)
			if err != nil {
				return err
			}
			for _, cl := range items {
				if cl.Name == args[0] {
					if err := c.do(cmd.Context(), http.MethodDelete, fmt.Sprintf("/api/v1/clusters/%d", cl.ID), nil, nil, nil); err != nil {
						return fmt.Errorf("removing cluster %s: %w", cl.Name, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "cluster %s removed\n", cl.Name)
					return nil
				}
			}
			return fmt.Errorf("no cluster named %q", args[0])
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line whatever a cluster's error says.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// workloadItem is what the workloads command reads of a workload or a
// vulnerable workload.
type workloadItem struct {
	Cluster   string   `json:"cluster"`
	Namespace string   `json:"namespace"`
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Exposure  []string `json:"exposure"`
	Pods      []struct {
		Containers []struct {
			Image string `json:"image"`
		} `json:"containers"`
	} `json:"pods"`
	Images []struct {
		Image    string `json:"image"`
		Critical int    `json:"critical"`
		High     int    `json:"high"`
		Fixable  int    `json:"fixable"`
	} `json:"images"`
}

func newWorkloadsCommand() *cobra.Command {
	var cf clientFlags
	var clusterName, namespace, kind, minSeverity, vulnerability string
	var vulnerable, fixable, exposed bool
	var limit int
	cmd := &cobra.Command{
		Use:   "workloads",
		Short: "List the workloads running in watched clusters, or those running vulnerable images",
		Long: "List the workloads running in the clusters a server watches. With\n" +
			"--vulnerable, list those running an image with open findings (by default\n" +
			"of severity LOW or more), one row per vulnerable image, with counts.",
		Example: "  bulwark workloads --cluster prod --namespace shop\n" +
			"  bulwark workloads --vulnerable --min-severity CRITICAL --fixable\n" +
			"  bulwark workloads --vulnerable --exposed -f json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !vulnerable && (minSeverity != "" || fixable || vulnerability != "") {
				return usagef("--min-severity, --fixable and --vulnerability need --vulnerable")
			}
			if vulnerable && kind != "" {
				return usagef("--kind does not go with --vulnerable")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := listQuery(500, map[string]string{"cluster": clusterName, "namespace": namespace, "kind": kind, "minSeverity": minSeverity,
				"vulnerability": vulnerability})
			if fixable {
				q.Set("fixable", "true")
			}
			if exposed {
				q.Set("exposed", "true")
			}
			path := "/api/v1/workloads"
			if vulnerable {
				path = "/api/v1/vulnerable-workloads"
			}
			items, err := c.pages(cmd.Context(), path, q, limit)
			if err != nil {
				return err
			}
			if vulnerable {
				return printItems(cmd.OutOrStdout(), cf.format, "workload", items, "CLUSTER\tNAMESPACE\tKIND\tNAME\tIMAGE\tCRITICAL\tHIGH\tFIXABLE\tEXPOSURE",
					vulnerableRows)
			}
			return printItems(cmd.OutOrStdout(), cf.format, "workload", items, "CLUSTER\tNAMESPACE\tKIND\tNAME\tPODS\tIMAGES\tEXPOSURE", workloadRow)
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster", "", "cluster name or id")
	f.StringVar(&namespace, "namespace", "", "namespace")
	f.StringVar(&kind, "kind", "", "workload kind: Deployment, DaemonSet, StatefulSet, Job, CronJob or Pod")
	f.BoolVar(&vulnerable, "vulnerable", false, "only workloads running an image with open findings")
	f.StringVar(&minSeverity, "min-severity", "", "with --vulnerable: findings at least this severe (default LOW)")
	f.BoolVar(&fixable, "fixable", false, "with --vulnerable: count only findings with a fixed version")
	f.StringVar(&vulnerability, "vulnerability", "", "with --vulnerable: count only this vulnerability id or alias")
	f.BoolVar(&exposed, "exposed", false, "only workloads reachable from outside their cluster")
	f.IntVar(&limit, "limit", 0, "most workloads to list (0 all)")
	return cmd
}

// vulnerableRows are the table rows of a vulnerable workload: one per
// vulnerable image.
func vulnerableRows(w workloadItem) []string {
	exposure := orDash(strings.Join(w.Exposure, ", "))
	var rows []string
	for _, im := range w.Images {
		rows = append(rows, fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s", w.Cluster, w.Namespace, w.Kind, w.Name, im.Image, im.Critical, im.High,
			im.Fixable, exposure))
	}
	return rows
}

func workloadRow(w workloadItem) []string {
	var images []string
	seen := map[string]bool{}
	for _, p := range w.Pods {
		for _, c := range p.Containers {
			if !seen[c.Image] {
				seen[c.Image] = true
				images = append(images, c.Image)
			}
		}
	}
	return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s", w.Cluster, w.Namespace, w.Kind, w.Name, len(w.Pods),
		orDash(strings.Join(images, ",")), orDash(strings.Join(w.Exposure, ", ")))}
}
