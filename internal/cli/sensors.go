package cli

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

func newSensorsCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "sensors",
		Short: "List and revoke enrolled node sensors",
		Long: "Node sensors enrol with a token of role enroll (bulwark token create NAME\n" +
			"--role enroll) and then send events with their own credential. Revoking a\n" +
			"sensor stops its credential; revoke the enrolment token too to keep it out.",
	}
	cf.add(cmd)
	cmd.AddCommand(newSensorsListCommand(&cf), newSensorsRevokeCommand(&cf))
	return cmd
}

func newSensorsListCommand(cf *clientFlags) *cobra.Command {
	var clusterName, node string
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List sensors with what they sent (viewer)",
		Example: "  bulwark sensors list --cluster prod\n  bulwark sensors list -f json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			items, err := c.pages(cmd.Context(), "/api/v1/sensors", listQuery(500, map[string]string{"cluster": clusterName, "node": node}), limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "sensor", items, "ID\tCLUSTER\tNODE\tVERSION\tENROLLED\tLAST SEEN\tEVENTS\tDROPPED\tREJECTED\tREVOKED",
				func(s struct {
					ID                     int64
					Cluster, Node, Version string
					EnrolledAt             time.Time
					LastSeenAt, RevokedAt  *time.Time
					Events, Dropped        int64
					Rejected               int64
				}) []string {
					return []string{fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s", s.ID, s.Cluster, s.Node, orDash(s.Version),
						s.EnrolledAt.Format(time.RFC3339), timeOrDash(s.LastSeenAt), s.Events, s.Dropped, s.Rejected, timeOrDash(s.RevokedAt))}
				})
		},
	}
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster", "", "cluster name")
	f.StringVar(&node, "node", "", "node name")
	f.IntVar(&limit, "limit", 0, "most sensors to list (0 all)")
	return cmd
}

func newSensorsRevokeCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a sensor's credential (admin)",
		Example: "  bulwark sensors revoke 12",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return usagef("sensor id %q is not a positive number (see bulwark sensors list)", args[0])
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, fmt.Sprintf("/api/v1/sensors/%d", id), nil, nil, nil); err != nil {
				return fmt.Errorf("revoking sensor %d: %w", id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked sensor %d\n", id)
			return nil
		},
	}
}

func newSensorEventsCommand() *cobra.Command {
	var cf clientFlags
	var clusterName, node, kind, container, namespace, pod, exe, dns, evidence, since, until string
	var limit int
	cmd := &cobra.Command{
		Use:   "sensor-events",
		Short: "Hunt over stored node sensor events (analyst)",
		Example: "  bulwark sensor-events --kind exec --namespace shop --exe /bin/sh\n" +
			"  bulwark sensor-events --kind dns --node worker-3 --since 2026-11-25T08:00:00Z -f json\n" +
			"  bulwark sensor-events --evidence 0123456789abcdef0123456789abcdef/4",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := listQuery(500, map[string]string{"cluster": clusterName, "node": node, "kind": kind, "container": container,
				"namespace": namespace, "pod": pod, "exe": exe, "dns": dns, "evidence": evidence, "since": since, "until": until})
			items, err := c.pages(cmd.Context(), "/api/v1/sensor-events", q, limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "sensor event", items, "TIME\tNODE\tKIND\tPOD\tCONTAINER\tPID\tPROCESS\tDETAIL",
				func(e struct {
					At                                                      time.Time
					Node, Kind, Namespace, Pod, ContainerName, Exe, DNSName string
					Remote                                                  string
					PID                                                     uint32
					Args                                                    []string
					Drift                                                   bool
				}) []string {
					process := e.Exe
					if len(e.Args) > 1 {
						process += " " + strings.Join(e.Args[1:], " ")
					}
					detail := e.DNSName
					if detail == "" {
						detail = e.Remote
					}
					if e.Drift {
						detail = strings.TrimSpace(detail + " drift")
					}
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", e.At.Format(time.RFC3339), e.Node, e.Kind,
						orDash(objectPath(e.Namespace, e.Pod)), orDash(e.ContainerName), e.PID, orDash(clipText(process, 80)), orDash(detail))}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&clusterName, "cluster", "", "cluster name")
	f.StringVar(&node, "node", "", "node name")
	f.StringVar(&kind, "kind", "", "exec, dns or connect")
	f.StringVar(&container, "container", "", "container id or name")
	f.StringVar(&namespace, "namespace", "", "pod namespace")
	f.StringVar(&pod, "pod", "", "pod name")
	f.StringVar(&exe, "exe", "", "executable path")
	f.StringVar(&dns, "dns", "", "queried DNS name")
	f.StringVar(&evidence, "evidence", "", "evidence id an alert lists (<batch id>/<index>)")
	f.StringVar(&since, "since", "", "at or after this RFC 3339 time")
	f.StringVar(&until, "until", "", "before this RFC 3339 time")
	f.IntVar(&limit, "limit", 0, "most events to list (0 all)")
	return cmd
}

// clipText shortens text for a table cell, on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
