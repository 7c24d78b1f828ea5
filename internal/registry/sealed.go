package registry

import (
	"encoding/json"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/secretbox"
)

// credentialsAD binds sealed credentials to the registry they belong to,
// so a sealed value copied into another registry's row does not open.
func credentialsAD(registryName string) []byte {
	return []byte("bulwark/registry-credentials/" + registryName)
}

// SealCredentials encrypts a registry's credentials for storage.
func SealCredentials(box *secretbox.Box, registryName string, c Credentials) ([]byte, error) {
	if c == (Credentials{}) {
		return nil, nil
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encoding credentials of registry %q: %w", registryName, err)
	}
	sealed, err := box.Seal(plain, credentialsAD(registryName))
	if err != nil {
		return nil, fmt.Errorf("sealing credentials of registry %q: %w", registryName, err)
	}
	return sealed, nil
}

// OpenCredentials decrypts what SealCredentials stored; nil is no
// credentials.
func OpenCredentials(box *secretbox.Box, registryName string, sealed []byte) (Credentials, error) {
	var c Credentials
	if len(sealed) == 0 {
		return c, nil
	}
	plain, err := box.Open(sealed, credentialsAD(registryName))
	if err != nil {
		return c, fmt.Errorf("opening credentials of registry %q: %w", registryName, err)
	}
	if err := json.Unmarshal(plain, &c); err != nil {
		return c, fmt.Errorf("decoding credentials of registry %q: %w", registryName, err)
	}
	return c, nil
}
