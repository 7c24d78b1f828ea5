package cluster

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// readSmallFile reads a token file, refusing anything larger than a
// kubeconfig may be.
func readSmallFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKubeconfigBytes+1))
	if err != nil {
		return "", err
	}
	if len(data) > MaxKubeconfigBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", path, MaxKubeconfigBytes)
	}
	return strings.TrimSpace(string(data)), nil
}
