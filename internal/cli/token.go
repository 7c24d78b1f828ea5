package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func newTokenCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (admin)",
		Long: "API tokens authenticate every call to the server. Roles: viewer reads,\n" +
			"analyst also queues scans, admin also changes configuration and tokens;\n" +
			"ingest may only send data (Kubernetes audit events) and reads nothing;\n" +
			"enroll may only enrol node sensors (bulwark sensor --enroll-token-file).",
	}
	cf.add(cmd)
	cmd.AddCommand(newTokenCreateCommand(&cf), newTokenListCommand(&cf), newTokenRevokeCommand(&cf))
	return cmd
}

type tokenItem struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
	Token      string     `json:"token"`
}

func newTokenCreateCommand(cf *clientFlags) *cobra.Command {
	var role, expiresIn string
	cmd := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a token; it is printed once and never shown again",
		Example: "  bulwark token create ci --role viewer --expires-in 720h\n  bulwark token create prod-audit --role ingest\n  bulwark token create prod-sensors --role enroll",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out tokenItem
			body := map[string]string{"name": args[0], "role": role}
			if expiresIn != "" {
				body["expiresIn"] = expiresIn
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/tokens", nil, body, &out); err != nil {
				return fmt.Errorf("creating token %s: %w", args[0], err)
			}
			if cf.format == "json" {
				return writeJSONOut(cmd.OutOrStdout(), out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "viewer", "viewer, analyst, admin, ingest or enroll")
	cmd.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime, such as 720h (default: no expiry)")
	return cmd
}

func newTokenListCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/tokens", nil, nil, &out); err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "token", out.Items, "NAME\tROLE\tPREFIX\tCREATED\tEXPIRES\tLAST USED\tREVOKED",
				func(t tokenItem) []string {
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", t.Name, t.Role, t.Prefix, t.CreatedAt.Format(time.RFC3339),
						timeOrDash(t.ExpiresAt), timeOrDash(t.LastUsedAt), timeOrDash(t.RevokedAt))}
				})
		},
	}
}

func newTokenRevokeCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token by name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Items []tokenItem `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/tokens", nil, nil, &out); err != nil {
				return err
			}
			for _, t := range out.Items {
				if t.Name == args[0] && t.RevokedAt == nil {
					if err := c.do(cmd.Context(), http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%d", t.ID), nil, nil, nil); err != nil {
						return fmt.Errorf("revoking token %s: %w", t.Name, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s\n", t.Name)
					return nil
				}
			}
			return fmt.Errorf("no active token named %q", args[0])
		},
	}
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
