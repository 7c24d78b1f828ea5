package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// apiClient talks to a Bulwark server's API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags are the connection flags of every command that talks to a
// server; BULWARK_SERVER and BULWARK_TOKEN set them from the environment.
type clientFlags struct {
	server, token, caFile, format string
}

func (f *clientFlags) add(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", "http://127.0.0.1:8080", "Bulwark server URL (env BULWARK_SERVER)")
	pf.StringVar(&f.token, "token", "", "API token (env BULWARK_TOKEN)")
	pf.StringVar(&f.caFile, "ca-file", "", "PEM CA bundle to verify the server's certificate")
	pf.StringVarP(&f.format, "format", "f", "table", "output format: table or json")
}

func (f *clientFlags) client() (*apiClient, error) {
	if f.token == "" {
		return nil, usagef("no API token: set BULWARK_TOKEN or --token")
	}
	if f.format != "table" && f.format != "json" {
		return nil, usagef("unknown format %q (want table or json)", f.format)
	}
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server must be an http(s) URL, got %q", f.server)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in %s", f.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &apiClient{base: strings.TrimSuffix(f.server, "/"), token: f.token, http: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

// do sends a request and decodes a JSON answer into out; an error answer
// becomes an error carrying the server's message.
func (c *apiClient) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var p struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &p) == nil && p.Error != "" {
			return fmt.Errorf("server: %s (HTTP %d)", p.Error, resp.StatusCode)
		}
		return fmt.Errorf("server: HTTP %d", resp.StatusCode)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the server's answer: %w", err)
	}
	return nil
}

// pages fetches every page of a listing (up to max items).
func (c *apiClient) pages(ctx context.Context, path string, q url.Values, max int) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for {
		var page struct {
			Items         []json.RawMessage `json:"items"`
			NextPageToken string            `json:"nextPageToken"`
		}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextPageToken == "" || (max > 0 && len(all) >= max) {
			if max > 0 && len(all) > max {
				all = all[:max]
			}
			return all, nil
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

func newClientCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newRegistryCommand(), newImagesCommand(), newFindingsCommand(), newClusterCommand(), newWorkloadsCommand(), newPostureCommand(), newTokenCommand(), newAlertsCommand(), newEventsCommand(),
		newSensorsCommand(), newSensorEventsCommand()}
}

// listQuery is the query of a listing: the page size and every parameter
// that was given.
func listQuery(pageSize int, params map[string]string) url.Values {
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// printItems prints listed items as JSON, or as a table of header and the
// rows (tab-separated lines) row returns for each item decoded into T.
func printItems[T any](w io.Writer, format, what string, items []json.RawMessage, header string, row func(T) []string) error {
	if format == "json" {
		return writeJSONOut(w, items)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, raw := range items {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decoding %s: %w", what, err)
		}
		for _, line := range row(v) {
			fmt.Fprintln(tw, line)
		}
	}
	return tw.Flush()
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRegistryCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "registry", Short: "Manage the registries a server watches"}
	cf.add(cmd)

	var req struct {
		Name           string          `json:"name"`
		Type           string          `json:"type"`
		URL            string          `json:"url"`
		Namespace      string          `json:"namespace,omitempty"`
		Repositories   []string        `json:"repositories,omitempty"`
		Insecure       bool            `json:"insecure,omitempty"`
		PollInterval   string          `json:"pollInterval,omitempty"`
		PublishReports bool            `json:"publishReports,omitempty"`
		Region         string          `json:"region,omitempty"`
		Credentials    json.RawMessage `json:"credentials,omitempty"`
	}
	var username, credsFile string
	var passwordStdin bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a registry (credentials are sealed by the server and never shown again)",
		Example: "  bulwark registry add local --type oci --url localhost:5000 --insecure\n" +
			"  echo \"$PASSWORD\" | bulwark registry add hub --type dockerhub --namespace myorg --username me --password-stdin\n" +
			"  bulwark registry add prod-ecr --type ecr --url 123456789012.dkr.ecr.eu-west-1.amazonaws.com --credentials-file ecr.json",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			req.Name = args[0]
			creds := map[string]string{}
			if credsFile != "" {
				b, err := os.ReadFile(credsFile)
				if err != nil {
					return fmt.Errorf("reading credentials file: %w", err)
				}
				if err := json.Unmarshal(b, &creds); err != nil {
					return fmt.Errorf("credentials file %s: want a JSON object of strings: %w", credsFile, err)
				}
			}
			if username != "" {
				creds["username"] = username
			}
			if passwordStdin {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				if err != nil {
					return fmt.Errorf("reading password from standard input: %w", err)
				}
				creds["password"] = strings.TrimRight(string(b), "\r\n")
			}
			if len(creds) > 0 {
				req.Credentials, _ = json.Marshal(creds)
			}
			var out map[string]any
			if err := c.do(cmd.Context(), http.MethodPost, "/api/v1/registries", nil, req, &out); err != nil {
				return err
			}
			if cf.format == "json" {
				return writeJSONOut(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registry %s added (id %v)\n", req.Name, out["id"])
			return nil
		},
	}
	af := add.Flags()
	af.StringVar(&req.Type, "type", "oci", "registry type: oci, dockerhub, ecr, acr, gar, artifactory or harbor")
	af.StringVar(&req.URL, "url", "", "registry host[:port] as in image references")
	af.StringVar(&req.Namespace, "namespace", "", "Docker Hub namespace, Harbor project, Artifactory repository key or path prefix")
	af.StringSliceVar(&req.Repositories, "repository", nil, "glob of repositories to scan (repeatable; default all)")
	af.BoolVar(&req.Insecure, "insecure", false, "plain HTTP")
	af.StringVar(&req.PollInterval, "poll-interval", "", "how often to list the registry (default the server's)")
	af.BoolVar(&req.PublishReports, "publish-reports", false, "attach each scan report to its image as an OCI referrer")
	af.StringVar(&req.Region, "region", "", "cloud region where the provider needs one")
	af.StringVar(&username, "username", "", "user name")
	af.BoolVar(&passwordStdin, "password-stdin", false, "read the password or token from standard input")
	af.StringVar(&credsFile, "credentials-file", "", "JSON file of credentials (awsAccessKeyID, azureClientSecret, googleServiceAccountJSON, …)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List registries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var out struct {
				Items []struct {
					ID           int64      `json:"id"`
					Name         string     `json:"name"`
					Type         string     `json:"type"`
					URL          string     `json:"url"`
					LastPolledAt *time.Time `json:"lastPolledAt"`
					LastError    string     `json:"lastError"`
				} `json:"items"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/registries", nil, nil, &out); err != nil {
				return err
			}
			if cf.format == "json" {
				return writeJSONOut(cmd.OutOrStdout(), out.Items)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTYPE\tURL\tLAST POLLED\tERROR")
			for _, r := range out.Items {
				polled := "never"
				if r.LastPolledAt != nil {
					polled = r.LastPolledAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Type, r.URL, polled, r.LastError)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(add, list)
	return cmd
}

func newImagesCommand() *cobra.Command {
	var cf clientFlags
	var registry, repository, severity string
	var limit int
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images a server has seen, with their open findings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := listQuery(500, map[string]string{"registry": registry, "repository": repository, "severity": severity})
			items, err := c.pages(cmd.Context(), "/api/v1/images", q, limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "image", items, "ID\tREFERENCE\tDIGEST\tCRITICAL\tHIGH\tMEDIUM\tLOW\tFIXABLE\tSCANNED",
				func(im imageRow) []string {
					ref, scanned := "-", "never"
					if len(im.Refs) > 0 {
						r := im.Refs[0]
						ref = r.Host + "/" + r.Repository
						if r.Tag != "" {
							ref += ":" + r.Tag
						}
					}
					if im.ScannedAt != nil {
						scanned = im.ScannedAt.Format(time.RFC3339)
					}
					return []string{fmt.Sprintf("%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s", im.ID, ref, shortDigest(im.Digest), im.Summary.Critical,
						im.Summary.High, im.Summary.Medium, im.Summary.Low, im.Summary.Fixable, scanned)}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&registry, "registry", "", "registry id or name")
	f.StringVar(&repository, "repository", "", "repository path")
	f.StringVar(&severity, "severity", "", "only images with an open finding at least this severe")
	f.IntVar(&limit, "limit", 0, "most images to list (0 all)")
	return cmd
}

// imageRow is what the images table shows of an image.
type imageRow struct {
	ID      int64  `json:"id"`
	Digest  string `json:"digest"`
	Summary struct {
		Critical, High, Medium, Low, Fixable int
	} `json:"summary"`
	ScannedAt *time.Time `json:"scannedAt"`
	Refs      []struct {
		Host, Repository, Tag string
	} `json:"refs"`
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func newFindingsCommand() *cobra.Command {
	var cf clientFlags
	var severity, minSeverity, pkg, vuln, registry, repository, state, sortBy, fixable string
	var limit int
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "List vulnerability findings from a server",
		Example: "  bulwark findings --severity CRITICAL,HIGH --fixable true\n" +
			"  bulwark findings --vulnerability CVE-2024-2398 -f json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			q := listQuery(1000, map[string]string{"severity": severity, "minSeverity": minSeverity, "package": pkg, "vulnerability": vuln,
				"registry": registry, "repository": repository, "state": state, "sort": sortBy, "fixable": fixable})
			items, err := c.pages(cmd.Context(), "/api/v1/findings", q, limit)
			if err != nil {
				return err
			}
			return printItems(cmd.OutOrStdout(), cf.format, "finding", items, "SEVERITY\tVULNERABILITY\tPACKAGE\tVERSION\tFIXED IN\tIMAGE",
				func(f struct{ Severity, Vulnerability, Package, Version, FixedVersion, ImageDigest string }) []string {
					return []string{fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", f.Severity, f.Vulnerability, f.Package, f.Version, f.FixedVersion,
						shortDigest(f.ImageDigest))}
				})
		},
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVar(&severity, "severity", "", "comma-separated severities")
	f.StringVar(&minSeverity, "min-severity", "", "at least this severe")
	f.StringVar(&pkg, "package", "", "package name")
	f.StringVar(&vuln, "vulnerability", "", "vulnerability id or alias")
	f.StringVar(&fixable, "fixable", "", "true: only fixable; false: only unfixable")
	f.StringVar(&registry, "registry", "", "registry id or name")
	f.StringVar(&repository, "repository", "", "repository path")
	f.StringVar(&state, "state", "", "open (default), fixed or all")
	f.StringVar(&sortBy, "sort", "", "severity, -severity, first_seen, -first_seen, package or vulnerability")
	f.IntVar(&limit, "limit", 0, "most findings to list (0 all)")
	return cmd
}
