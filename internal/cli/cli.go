// Package cli is Bulwark's command line: the cobra command tree, the global
// flags every subcommand shares (config file, log level and format), and the
// wiring from parsed settings to the packages that do the work. It owns no
// behaviour of its own beyond parsing and wiring.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/logging"
)

// Exit codes Run returns.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// usageError marks an error in how the command was called (a bad flag, a
// bad setting), as opposed to a failure while doing the work.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef formats a usageError; %w works as in fmt.Errorf.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Run executes the command line args (without the program name), writing
// output to stdout and diagnostics to stderr, and returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	return run(args, stdout, stderr, os.LookupEnv)
}

func run(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	return runContext(context.Background(), args, stdout, stderr, lookupEnv)
}

// runContext runs a command until it ends or ctx does (tests stop a
// server this way; a user stops it with a signal).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	g := &globals{lookupEnv: lookupEnv, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ec exitCodeError
		if errors.As(err, &ec) {
			fmt.Fprintln(stderr, ec.msg)
			return ec.code
		}
		fmt.Fprintf(stderr, "Error: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) || g.logger == nil {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// globals are the settings every subcommand sees, filled in before it runs.
type globals struct {
	configPath string
	logLevel   string
	logFormat  string

	lookupEnv func(string) (string, bool)
	stderr    io.Writer
	logger    *slog.Logger
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "bulwark",
		Short: "Container security for self-hosted Kubernetes",
		Long: "Bulwark scans images for vulnerabilities, gates deployments, watches the\n" +
			"control plane and nodes for attacks, and checks cluster posture.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", "", "YAML config file (env "+config.EnvName("config")+")")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usagef("%w", err)
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return g.load(root, cmd)
	}

	root.AddCommand(newVersionCommand(), newDBCommand(g), newScanCommand(g), newServerCommand(g), newAdmissionCommand(g), newSensorCommand(g))
	root.AddCommand(newClientCommands(g)...)
	return root
}

// load applies the environment and the config file to cmd's flags and
// builds the logger. It runs before every subcommand.
func (g *globals) load(root, cmd *cobra.Command) error {
	path := g.configPath
	if !cmd.Flags().Changed("config") {
		if v, ok := g.lookupEnv(config.EnvName("config")); ok {
			path = v
		}
	}
	var file *config.File
	if path != "" {
		f, err := config.ReadFile(path)
		if err != nil {
			return err
		}
		if err := f.Validate(root); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
		file = f
	}
	if err := config.Apply(cmd, file, g.lookupEnv); err != nil {
		return usagef("%w", err)
	}
	logger, err := logging.New(g.stderr, g.logLevel, g.logFormat)
	if err != nil {
		return usagef("%w", err)
	}
	g.logger = logger
	return nil
}
