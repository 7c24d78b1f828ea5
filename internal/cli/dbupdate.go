package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/vulndb/update"
)

// registryFlags are the settings of db update --from-oci and db push.
type registryFlags struct {
	insecure bool
	username string
	password string
}

// add defines the flags on cmd; note ends each flag's help.
func (f *registryFlags) add(cmd *cobra.Command, note string) {
	cmd.Flags().BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to the registry"+note)
	cmd.Flags().StringVar(&f.username, "username", "", "registry user name"+note)
	cmd.Flags().StringVar(&f.password, "password", "", "registry password or token, prefer BULWARK_PASSWORD"+note)
}

func (f *registryFlags) options() update.RegistryOptions {
	opts := update.RegistryOptions{Insecure: f.insecure}
	if f.username != "" || f.password != "" {
		opts.Auth = &authn.Basic{Username: f.username, Password: f.password}
	}
	return opts
}

// interruptible stops ctx on SIGINT and SIGTERM as well as after timeout,
// so an interrupted download removes its temporary files.
func interruptible(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, func() { cancel(); stop() }
}

func newDBUpdateCommand(g *globals, dbDir *string) *cobra.Command {
	var (
		sourceURL  string
		ecosystems []string
		fromOCI    string
		timeout    time.Duration
		reg        registryFlags
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Refresh the database from OSV, or pull it from an OCI registry",
		Long: "Refresh the vulnerability database from OSV's per-ecosystem exports at\n" +
			"--source-url (<base>/<Ecosystem>/all.zip, modified_id.csv and <ID>.json).\n" +
			"An ecosystem synced before is updated incrementally: only the records its\n" +
			"modified_id.csv lists as changed since are fetched. A new ecosystem, or one\n" +
			"with many changes, is downloaded whole. Without --ecosystem, the ecosystems\n" +
			"already in the database are updated. The new database replaces the old one\n" +
			"atomically; records that cannot be fetched or parsed are listed by\n" +
			"`bulwark db status`.\n\n" +
			"With --from-oci REF, the whole database is instead pulled from a bundle that\n" +
			"`bulwark db push` published, for sites without internet access. Credentials\n" +
			"come from --username/--password (or BULWARK_USERNAME/BULWARK_PASSWORD) or\n" +
			"else from the Docker config file and its credential helpers.",
		Example: "  bulwark db update --ecosystem Debian,Go,npm\n" +
			"  bulwark db update\n" +
			"  bulwark db update --from-oci registry.internal/bulwark/vulndb:latest",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := interruptible(cmd.Context(), timeout)
			defer cancel()
			start := time.Now()
			if fromOCI != "" {
				if len(ecosystems) > 0 {
					return usagef("--from-oci pulls the whole database; it cannot be combined with --ecosystem")
				}
				b, err := update.Pull(ctx, *dbDir, fromOCI, reg.options())
				if err != nil {
					return err
				}
				records := 0
				for _, e := range b.Config.Ecosystems {
					records += e.Records
				}
				g.logger.Info("vulnerability database pulled", "dir", *dbDir, "bundle", b.Ref,
					"built", b.Config.Built.Format(time.RFC3339), "ecosystems", len(b.Config.Ecosystems),
					"records", records, "took", time.Since(start).Round(time.Millisecond))
				return nil
			}
			rep, err := update.Sync(ctx, *dbDir, update.Options{SourceURL: sourceURL, Ecosystems: ecosystems, Logger: g.logger})
			switch {
			case errors.Is(err, update.ErrNoEcosystems):
				return usagef("the database in %s has no ecosystems yet: name the ones to download with --ecosystem (for example --ecosystem Debian,Go,npm)", *dbDir)
			case errors.Is(err, update.ErrInvalidEcosystem):
				return usagef("--ecosystem: %w", err)
			case errors.Is(err, update.ErrInvalidSourceURL):
				return usagef("--source-url: %w", err)
			case err != nil:
				return err
			}
			var total update.EcosystemReport
			for _, e := range rep.Ecosystems {
				total.Added += e.Added
				total.Updated += e.Updated
				total.Withdrawn += e.Withdrawn
				total.Rejected += e.Rejected
			}
			g.logger.Info("vulnerability database updated", "dir", *dbDir, "source", rep.Source,
				"ecosystems", len(rep.Ecosystems), "added", total.Added, "updated", total.Updated,
				"withdrawn", total.Withdrawn, "rejected", total.Rejected, "took", time.Since(start).Round(time.Millisecond))
			if total.Rejected > 0 {
				g.logger.Warn("records could not be imported; `bulwark db status` lists them", "rejected", total.Rejected)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sourceURL, "source-url", update.DefaultSourceURL, "base URL of the OSV exports")
	cmd.Flags().StringSliceVar(&ecosystems, "ecosystem", nil, "OSV ecosystems to update, by export name (repeatable or comma-separated: Debian,Go,npm,crates.io); default: those in the database")
	cmd.Flags().StringVar(&fromOCI, "from-oci", "", "pull the whole database from the OCI bundle `REF` (see bulwark db push) instead of OSV")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "give up after this long")
	reg.add(cmd, " (with --from-oci)")
	return cmd
}

func newDBPushCommand(g *globals, dbDir *string) *cobra.Command {
	var (
		timeout time.Duration
		reg     registryFlags
	)
	cmd := &cobra.Command{
		Use:   "push REF",
		Short: "Publish the database as an OCI artifact, for sites without internet access",
		Long: "Publish the vulnerability database in --db-dir to a registry as an OCI\n" +
			"artifact (artifact type " + update.ConfigMediaType + "),\n" +
			"which `bulwark db update --from-oci REF` pulls. Prints the bundle's reference\n" +
			"by digest. Credentials come from --username/--password (or\n" +
			"BULWARK_USERNAME/BULWARK_PASSWORD) or else from the Docker config file and its\n" +
			"credential helpers.",
		Example: "  bulwark db push registry.internal/bulwark/vulndb:latest",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := interruptible(cmd.Context(), timeout)
			defer cancel()
			start := time.Now()
			b, err := update.Push(ctx, *dbDir, args[0], reg.options())
			if err != nil {
				return err
			}
			g.logger.Info("vulnerability database pushed", "bundle", b.Ref, "size", b.Size,
				"built", b.Config.Built.Format(time.RFC3339), "ecosystems", len(b.Config.Ecosystems),
				"took", time.Since(start).Round(time.Millisecond))
			_, err = fmt.Fprintln(cmd.OutOrStdout(), b.Ref)
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "give up after this long")
	reg.add(cmd, "")
	return cmd
}
