package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// defaultDBDir is the vulnerability database's home when --db-dir is not
// given: bulwark/db in the user's cache directory.
func defaultDBDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "bulwark", "db")
}

func newDBCommand(g *globals) *cobra.Command {
	var dbDir string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the vulnerability database",
	}
	cmd.PersistentFlags().StringVar(&dbDir, "db-dir", defaultDBDir(), "directory of the vulnerability database")
	cmd.AddCommand(newDBImportCommand(g, &dbDir), newDBStatusCommand(&dbDir), newDBUpdateCommand(g, &dbDir), newDBPushCommand(g, &dbDir))
	return cmd
}

func newDBImportCommand(g *globals, dbDir *string) *cobra.Command {
	var incremental bool
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Build the database from OSV exports, zips or JSON files",
		Long: "Import OSV records into the vulnerability database. Each PATH is a directory\n" +
			"laid out as OSV's exports (<Ecosystem>/all.zip), a zip of OSV records, a\n" +
			"directory of OSV JSON files, or one OSV JSON file. The new database replaces\n" +
			"the old one atomically; with --incremental it starts from the old one.\n" +
			"Records that do not parse are counted and listed by `bulwark db status`.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) error {
			start := time.Now()
			open := vulndb.Create
			if incremental {
				open = vulndb.Update
			}
			w, err := open(*dbDir)
			if err != nil {
				return err
			}
			if err := vulndb.Import(cmd.Context(), w, paths...); err != nil {
				w.Abort()
				return err
			}
			stats := w.Stats
			if err := w.Commit(); err != nil {
				return err
			}
			g.logger.Info("vulnerability database written", "dir", *dbDir,
				"added", stats.Added, "updated", stats.Updated, "unchanged", stats.Unchanged,
				"withdrawn", stats.Withdrawn, "rejected", stats.Rejected, "took", time.Since(start).Round(time.Millisecond))
			if stats.Rejected > 0 {
				g.logger.Warn("records could not be imported; `bulwark db status` lists them", "rejected", stats.Rejected)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&incremental, "incremental", false, "update the existing database instead of replacing it")
	return cmd
}

func newDBStatusCommand(dbDir *string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the database's ecosystems, record counts and age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usagef("unknown format %q (want text or json)", format)
			}
			db, err := vulndb.Open(*dbDir)
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Status()
			if err != nil {
				return err
			}
			sort.Slice(st.Ecosystems, func(i, j int) bool { return st.Ecosystems[i].Ecosystem < st.Ecosystems[j].Ecosystem })
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "text", "output format: text or json")
	return cmd
}

func printStatus(w io.Writer, st *vulndb.Status) error {
	fmt.Fprintf(w, "Database: %s\nBuilt:    %s (%s ago)\nRecords:  %d\n\n", st.Path,
		st.Built.Format(time.RFC3339), time.Since(st.Built).Round(time.Second), st.Records)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS\tNEWEST RECORD")
	for _, e := range st.Ecosystems {
		newest := "-"
		if !e.Newest.IsZero() && e.Newest.Year() > 1 {
			newest = e.Newest.Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", e.Ecosystem, e.Records, newest)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Rejected) > 0 {
		fmt.Fprintf(w, "\nRejected records (%d):\n", len(st.Rejected))
		for _, r := range st.Rejected {
			id := r.ID
			if id == "" {
				id = "(no id)"
			}
			fmt.Fprintf(w, "  %s  %s: %s\n", id, r.Source, r.Error)
		}
	}
	return nil
}
