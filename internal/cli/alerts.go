package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newAlertsCommand() *cobra.Command {
	var cf clientFlags
	var source, clusterName, node, rule, severity, minSeverity, actor, namespace, technique, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List alerts raised from Kubernetes audit events and node sensor events",
		Example: "  bulwark alerts --min-severity HIGH --since 2026-11-25T00:00:00Z\n" +
			"  bulwark alerts --technique T1609 -f json\n" +
			"  bulwark alerts --source sensor --node worker-3\n" +
			"  bulwark alerts rules",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := listQuery(500, map[string]string{"source": source, "cluster": clusterName, "node": node, "rule": rule, "severity": severity, "minSeverity": minSeverity,
				"actor": actor, "namespace": namespace, "technique": technique, "since": since})
			items, err := c.pages(cmd.Context(), "/api/v1/alerts", q, limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "alert", items, "LAST\tCLUSTER\tSOURCE\tSEVERITY\tRULE\tTECHNIQUE\tACTOR\tOBJECT\tCOUNT",
				func(a struct {
					Source, Cluster, Rule, Severity, Actor, Verb, Resource, Subresource, Namespace, Name string
					Node, ContainerName, Process                                                         string
					Technique                                                                            struct{ ID string }
					Count                                                                                int
					LastAt                                                                               time.Time
				}) []string {
					if a.Source == "sensor" {
						// A runtime alert is about a process in a container on a node.
						where := "node " + a.Node
						if a.Name != "" {
							where += " pod " + objectPath(a.Namespace, a.Name)
						}
						if a.ContainerName != "" {
							where += " container " + a.ContainerName
						}
						return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d", a.LastAt.Format(time.RFC3339), a.Cluster, a.Source, a.Severity,
							a.Rule, a.Technique.ID, orDash(clipText(a.Process, 60)), where, a.Count)}
					}
					obj := a.Resource
					if a.Subresource != "" {
						obj += "/" + a.Subresource
					}
					if a.Name != "" {
						obj += " " + objectPath(a.Namespace, a.Name)
					}
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s %s\t%d", a.LastAt.Format(time.RFC3339), a.Cluster, orDash(a.Source),
						a.Severity, a.Rule, a.Technique.ID, a.Actor, a.Verb, obj, a.Count)}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&source, "source", "", "what was judged: audit (Kubernetes audit events) or sensor (node sensor events)")
	f.StringVar(&clusterName, "cluster", "", "cluster name")
	f.StringVar(&node, "node", "", "node of a runtime alert")
	f.StringVar(&rule, "rule", "", "rule id")
	f.StringVar(&severity, "severity", "", "exactly this severity")
	f.StringVar(&minSeverity, "min-severity", "", "at least this severe")
	f.StringVar(&actor, "actor", "", "username the alert is about")
	f.StringVar(&namespace, "namespace", "", "namespace of the object")
	f.StringVar(&technique, "technique", "", "MITRE ATT&CK technique id")
	f.StringVar(&since, "since", "", "alerts active at or after this RFC 3339 time")
	f.IntVar(&limit, "limit", 0, "most alerts to list (0 all)")
	cmd.AddCommand(newAlertRulesCommand(&cf))
	return cmd
}

func objectPath(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

func newAlertRulesCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "List the detection rules the server evaluates (-f json adds their CEL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/detection/rules", nil, nil, &out); err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "rule", out.Items, "ID\tSEVERITY\tTECHNIQUE\tSTATE\tTITLE",
				func(r struct {
					ID, Severity, State, Title string
					Technique                  struct{ ID string }
				}) []string {
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.ID, r.Severity, r.Technique.ID, orDash(r.State), r.Title)}
				})
		},
	}
}

func newEventsCommand() *cobra.Command {
	var cf clientFlags
	var clusterName, user, verb, resource, namespace, name, sourceIP, since, until string
	var minCode, maxCode, limit int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Hunt over stored Kubernetes audit events (analyst)",
		Example: "  bulwark events --user system:serviceaccount:shop:web --resource secrets\n" +
			"  bulwark events --min-code 403 --max-code 403 --since 2026-11-25T08:00:00Z -f json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			params := map[string]string{"cluster": clusterName, "user": user, "verb": verb, "resource": resource, "namespace": namespace,
				"name": name, "sourceIP": sourceIP, "since": since, "until": until}
			if minCode > 0 {
				params["minCode"] = fmt.Sprint(minCode)
			}
			if maxCode > 0 {
				params["maxCode"] = fmt.Sprint(maxCode)
			}
			items, err := c.pages(cmd.Context(), "/api/v1/k8s-audit/events", listQuery(500, params), limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "audit event", items, "TIME\tCLUSTER\tUSER\tVERB\tOBJECT\tCODE\tSOURCE",
				func(e struct {
					At                                                                    time.Time
					Cluster, User, Verb, Resource, Subresource, Namespace, Name, SourceIP string
					Code                                                                  int
				}) []string {
					obj := e.Resource
					if e.Subresource != "" {
						obj += "/" + e.Subresource
					}
					if e.Name != "" || e.Namespace != "" {
						obj = strings.TrimSpace(obj + " " + objectPath(e.Namespace, e.Name))
					}
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s", e.At.Format(time.RFC3339), e.Cluster, e.User, e.Verb, orDash(obj), e.Code,
						orDash(e.SourceIP))}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster", "", "cluster name")
	f.StringVar(&user, "user", "", "username")
	f.StringVar(&verb, "verb", "", "verb")
	f.StringVar(&resource, "resource", "", "resource")
	f.StringVar(&namespace, "namespace", "", "namespace")
	f.StringVar(&name, "name", "", "object name")
	f.StringVar(&sourceIP, "source-ip", "", "source IP")
	f.StringVar(&since, "since", "", "at or after this RFC 3339 time")
	f.StringVar(&until, "until", "", "before this RFC 3339 time")
	f.IntVar(&minCode, "min-code", 0, "lowest response code")
	f.IntVar(&maxCode, "max-code", 0, "highest response code")
	f.IntVar(&limit, "limit", 0, "most events to list (0 all)")
	return cmd
}
