package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/extract/list"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/scan"
	"github.com/bulwarkhq/bulwark/internal/suppress"
	"github.com/bulwarkhq/bulwark/internal/version"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// scanFlags are the settings every scan subcommand shares.
type scanFlags struct {
	dbDir         string
	format        string
	output        string
	severities    []string
	ignoreUnfixed bool
	exitCode      int
	timeout       time.Duration
	workDir       string
	ignoreFile    string
	vexFiles      []string
	cacheDir      string
	noCache       bool
	// registry access (scan image)
	platform string
	insecure bool
	username string
	password string
}

func newScanCommand(g *globals) *cobra.Command {
	f := &scanFlags{}
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan an image, an image archive or a directory for vulnerable packages",
		Long: "Find the installed packages of a target and the vulnerabilities that affect\n" +
			"them, using the vulnerability database in --db-dir (see `bulwark db`).\n\n" +
			"Exit codes: 0 when the scan ran (and, with --exit-code N, found nothing),\n" +
			"N when --exit-code N is given and vulnerabilities were found, 1 when the\n" +
			"scan failed, 2 for usage errors.",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.dbDir, "db-dir", defaultDBDir(), "directory of the vulnerability database")
	pf.StringVarP(&f.format, "format", "f", report.Table, "output format: "+strings.Join(report.Formats(), ", "))
	pf.StringVarP(&f.output, "output", "o", "", "write the report to this file instead of standard output")
	pf.StringSliceVar(&f.severities, "severity", nil, "report only these severities (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,NONE,UNKNOWN)")
	pf.BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "report only vulnerabilities with a known fix")
	pf.IntVar(&f.exitCode, "exit-code", 0, "exit with this code when vulnerabilities are reported (for CI gates)")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this long")
	pf.StringVar(&f.workDir, "work-dir", "", "directory for the scan's temporary files (default: the system's)")
	pf.StringVar(&f.cacheDir, "cache-dir", defaultLayerCacheDir(), "directory of the layer cache (what was read from each layer, by layer digest)")
	pf.BoolVar(&f.noCache, "no-cache", false, "read every layer, neither using nor filling the layer cache")
	pf.StringVar(&f.ignoreFile, "ignore-file", "", "YAML file of accepted vulnerabilities, each with a reason and optional expiry")
	pf.StringSliceVar(&f.vexFiles, "vex", nil, "OpenVEX documents whose not_affected and fixed statements suppress findings")

	image := &cobra.Command{
		Use:   "image REF",
		Short: "Scan an image in a registry, by tag or digest",
		Long: "Scan an image in a registry. Credentials come from --username/--password\n" +
			"(or BULWARK_USERNAME/BULWARK_PASSWORD) or else from the Docker config file\n" +
			"(~/.docker/config.json, DOCKER_CONFIG) and its credential helpers.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, g, f, func(ctx context.Context, s *scan.Scanner) (*model.Report, error) {
				opts := scan.RegistryOptions{Insecure: f.insecure, Platform: f.platform}
				if f.username != "" || f.password != "" {
					opts.Auth = &authn.Basic{Username: f.username, Password: f.password}
				}
				img, ref, err := scan.RemoteImage(ctx, args[0], opts)
				if err != nil {
					return nil, err
				}
				return s.Image(ctx, img, model.Target{Kind: model.TargetImage, Name: ref.String()})
			})
		},
	}
	image.Flags().StringVar(&f.platform, "platform", "", "platform to pick from a multi-platform image (default linux/amd64)")
	image.Flags().BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to the registry")
	image.Flags().StringVar(&f.username, "username", "", "registry user name")
	image.Flags().StringVar(&f.password, "password", "", "registry password or token (prefer BULWARK_PASSWORD)")

	archive := &cobra.Command{
		Use:   "archive FILE",
		Short: "Scan an image tarball (docker save, or an OCI layout in a tar)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, g, f, func(ctx context.Context, s *scan.Scanner) (*model.Report, error) {
				work, err := os.MkdirTemp(f.workDir, "bulwark-archive-")
				if err != nil {
					return nil, fmt.Errorf("creating work directory: %w", err)
				}
				defer os.RemoveAll(work)
				img, err := scan.ArchiveImage(args[0], work, f.platform)
				if err != nil {
					return nil, err
				}
				return s.Image(ctx, img, model.Target{Kind: model.TargetArchive, Name: args[0]})
			})
		},
	}
	archive.Flags().StringVar(&f.platform, "platform", "", "platform to pick from a multi-platform OCI layout (default linux/amd64)")

	dir := &cobra.Command{
		Use:   "fs DIR",
		Short: "Scan a directory: an unpacked root filesystem or a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd, g, f, func(ctx context.Context, s *scan.Scanner) (*model.Report, error) {
				return s.Dir(ctx, args[0])
			})
		},
	}
	cmd.AddCommand(image, archive, dir)
	return cmd
}

// runScan opens the database, runs the scan, filters and writes the
// report, and turns reported vulnerabilities into --exit-code.
func runScan(cmd *cobra.Command, g *globals, f *scanFlags, do func(context.Context, *scan.Scanner) (*model.Report, error)) error {
	filter, err := parseFilter(f)
	if err != nil {
		return err
	}
	var ignore *suppress.IgnoreFile
	if f.ignoreFile != "" {
		if ignore, err = suppress.ReadIgnoreFile(f.ignoreFile); err != nil {
			return usagef("%w", err)
		}
	}
	var vexes []*suppress.VEX
	for _, path := range f.vexFiles {
		v, err := suppress.ReadVEX(path)
		if err != nil {
			return usagef("%w", err)
		}
		vexes = append(vexes, v)
	}
	if !slices.Contains(report.Formats(), f.format) {
		return usagef("unknown format %q (want one of %s)", f.format, strings.Join(report.Formats(), ", "))
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	db, err := vulndb.Open(f.dbDir)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := db.Status()
	if err != nil {
		return err
	}
	s := &scan.Scanner{Extractors: list.All(), Matcher: db, Built: st.Built, WorkDir: f.workDir, Logger: g.logger}
	if isTerminal(g.stderr) {
		s.Progress = g.stderr
	}
	if !f.noCache {
		if s.Cache, err = scan.NewLayerCache(f.cacheDir, layerCacheMaxBytes); err != nil {
			return err
		}
	}
	start := time.Now()
	rep, err := do(ctx, s)
	if err != nil {
		return err
	}
	if ignore != nil {
		ignore.Apply(rep, time.Now())
	}
	for _, v := range vexes {
		v.Apply(rep)
	}
	filter.Apply(rep)
	g.logger.Info("scan finished", "target", rep.Target.Name, "packages", len(rep.Packages),
		"findings", len(rep.Findings), "suppressed", len(rep.Suppressed), "warnings", len(rep.Warnings),
		"took", time.Since(start).Round(time.Millisecond))
	if err := writeReport(cmd.OutOrStdout(), f, rep); err != nil {
		return err
	}
	if f.exitCode != 0 && len(rep.Findings) > 0 {
		return exitCodeError{code: f.exitCode, msg: fmt.Sprintf("%d vulnerabilities reported", len(rep.Findings))}
	}
	return nil
}

// layerCacheMaxBytes bounds the layer cache; least recently used layers
// are evicted past it.
const layerCacheMaxBytes = 10 << 30

// defaultLayerCacheDir is bulwark/layers in the user's cache directory.
func defaultLayerCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "bulwark", "layers")
}

func parseFilter(f *scanFlags) (scan.Filter, error) {
	filter := scan.Filter{IgnoreUnfixed: f.ignoreUnfixed}
	for _, s := range f.severities {
		sev, ok := model.ParseSeverity(s)
		if !ok {
			return filter, usagef("unknown severity %q (want CRITICAL, HIGH, MEDIUM, LOW, NONE or UNKNOWN)", s)
		}
		filter.Severities = append(filter.Severities, sev)
	}
	return filter, nil
}

func writeReport(stdout io.Writer, f *scanFlags, rep *model.Report) error {
	opts := report.Options{ToolVersion: version.Get().Version}
	if f.output == "" {
		opts.Color = isTerminal(stdout)
		return report.Write(stdout, f.format, rep, opts)
	}
	out, err := os.Create(f.output)
	if err != nil {
		return fmt.Errorf("creating report file: %w", err)
	}
	if err := report.Write(out, f.format, rep, opts); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("writing report file: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// exitCodeError ends a command with a chosen exit code: a CI gate that
// found what it gates on, not a failure of the command.
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }
