package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

func newPostureCommand() *cobra.Command {
	var cf clientFlags
	var clusterName, check, framework, severity, minSeverity, namespace, kind, name, state string
	var limit int
	cmd := &cobra.Command{
		Use:   "posture",
		Short: "List posture findings: failed configuration checks of watched clusters",
		Long: "List the posture findings of the clusters a server watches: each is a\n" +
			"check a resource fails. -f json adds the evidence and the remediation.\n" +
			"`bulwark posture checks` lists the checks.",
		Example: "  bulwark posture --cluster prod --min-severity HIGH\n" +
			"  bulwark posture --framework cis-1.12 --state all -f json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := listQuery(1000, map[string]string{"cluster": clusterName, "check": check, "framework": framework, "severity": severity,
				"minSeverity": minSeverity, "namespace": namespace, "kind": kind, "name": name, "state": state})
			items, err := c.pages(cmd.Context(), "/api/v1/posture/findings", q, limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "posture finding", items, "CLUSTER\tCHECK\tSEVERITY\tRESOURCE\tTITLE",
				func(f postureRow) []string {
					resource := f.ResourceKind + " " + f.ResourceName
					if f.ResourceNamespace != "" {
						resource = f.ResourceKind + " " + f.ResourceNamespace + "/" + f.ResourceName
					}
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s", f.Cluster, f.Check, f.Severity, resource, f.Title)}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster", "", "cluster name or id")
	f.StringVar(&check, "check", "", "check id")
	f.StringVar(&framework, "framework", "", "checks of this framework, such as cis-1.12, pss-baseline, pss-restricted or rbac-risk")
	f.StringVar(&severity, "severity", "", "exactly this severity")
	f.StringVar(&minSeverity, "min-severity", "", "at least this severe")
	f.StringVar(&namespace, "namespace", "", "namespace of the resource")
	f.StringVar(&kind, "kind", "", "kind of the resource")
	f.StringVar(&name, "name", "", "name of the resource")
	f.StringVar(&state, "state", "", "open (default), resolved or all")
	f.IntVar(&limit, "limit", 0, "most findings to list (0 all)")
	cmd.AddCommand(newPostureChecksCommand(&cf))
	return cmd
}

func newPostureChecksCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "checks",
		Short: "List the posture checks the server evaluates (-f json adds their CEL expressions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/posture/checks", nil, nil, &out); err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "posture check", out.Items, "ID\tSEVERITY\tTARGET\tFRAMEWORKS\tTITLE",
				func(ch struct {
					ID, Severity, Target, Title string
					Frameworks                  []string
				}) []string {
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s", ch.ID, ch.Severity, ch.Target, orDash(strings.Join(ch.Frameworks, ",")), ch.Title)}
				})
		},
	}
}

// postureRow is what the posture table shows of a finding.
type postureRow struct {
	Cluster           string `json:"cluster"`
	Check             string `json:"check"`
	Severity          string `json:"severity"`
	Title             string `json:"title"`
	ResourceKind      string `json:"resourceKind"`
	ResourceNamespace string `json:"resourceNamespace"`
	ResourceName      string `json:"resourceName"`
}
