//go:build !unix

package transport

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockStateDir only marks the state directory where flock is missing; the
// sensor runs on Linux, other systems build the package for tests.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening state directory lock: %w", err)
	}
	return f, nil
}
