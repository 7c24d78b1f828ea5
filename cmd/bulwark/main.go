// Command bulwark is Bulwark's single binary: scanner, server, sensor and
// client. All behaviour lives in internal/; main only hands over the
// process's arguments and streams.
package main

import (
	"os"

	"github.com/bulwarkhq/bulwark/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
