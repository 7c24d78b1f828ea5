// Package secretbox encrypts the credentials Bulwark stores (registry
// passwords, tokens) so a copy of the database alone does not reveal them.
//
// It owns the sealed format and the keys: AES-256-GCM with a random nonce,
// a header naming the key that sealed a value so keys can be rotated, and
// associated data that ties a value to the row it belongs to. It does not
// own where keys are kept beyond reading and creating a key file, nor the
// re-sealing of stored values after a rotation.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// The sealed format is
//
//	version (1) | key id (4) | nonce (12) | ciphertext and GCM tag (16+)
//
// The version and key id are authenticated along with the caller's
// associated data, so neither can be changed without Open failing.
const (
	version1   = 1
	keyIDSize  = 4
	nonceSize  = 12
	headerSize = 1 + keyIDSize
	overhead   = headerSize + nonceSize + 16
)

var (
	// ErrMalformed is returned by Open for input that is not a sealed value.
	ErrMalformed = errors.New("malformed sealed value")
	// ErrUnknownKey is returned by Open for a value sealed with a key the
	// Box was not given.
	ErrUnknownKey = errors.New("sealed with an unknown key")
	// ErrAuthentication is returned by Open when the value was altered, or
	// sealed with other associated data.
	ErrAuthentication = errors.New("authentication failed")
)

// Box seals and opens values. It is safe for concurrent use.
type Box struct {
	primary keyID
	aeads   map[keyID]cipher.AEAD
}

type keyID [keyIDSize]byte

func (id keyID) String() string { return hex.EncodeToString(id[:]) }

// idOf is the first four bytes of the key's SHA-256: enough to pick among
// a handful of keys, and it reveals nothing useful about the key.
func idOf(key []byte) keyID {
	sum := sha256.Sum256(key)
	return keyID(sum[:keyIDSize])
}

// New returns a Box that seals with the first key and opens values sealed
// with any of them, so a new key can be put first while values sealed with
// the old ones are still read.
func New(keys ...[]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no key given")
	}
	b := &Box{aeads: make(map[keyID]cipher.AEAD, len(keys)), primary: idOf(keys[0])}
	seen := make(map[keyID]string, len(keys))
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("secretbox: key %d is %d bytes, want %d", i+1, len(key), KeySize)
		}
		id := idOf(key)
		if prev, ok := seen[id]; ok {
			if prev == string(key) {
				continue
			}
			// Two different keys with the same id: Open could not tell
			// which one to use. Vanishingly rare; a new key fixes it.
			return nil, fmt.Errorf("secretbox: key %d has the same key id %s as an earlier key; generate another key", i+1, id)
		}
		seen[id] = string(key)
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secretbox: key %d: %w", i+1, err)
		}
		b.aeads[id] = aead
	}
	return b, nil
}

// Seal encrypts plaintext with the first key. associated is not stored but
// must be given again to Open; pass what identifies the value's place, such
// as "registry:12", so a sealed value copied to another row does not open.
func (b *Box) Seal(plaintext, associated []byte) ([]byte, error) {
	out := make([]byte, headerSize+nonceSize, overhead+len(plaintext))
	out[0] = version1
	copy(out[1:headerSize], b.primary[:])
	if _, err := rand.Read(out[headerSize:]); err != nil {
		return nil, fmt.Errorf("secretbox: generating nonce: %w", err)
	}
	nonce := out[headerSize:]
	return b.aeads[b.primary].Seal(out, nonce, plaintext, additional(out[:headerSize], associated)), nil
}

// Open decrypts a value Seal returned, given the same associated data.
func (b *Box) Open(sealed, associated []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("secretbox: %w: %d bytes, want at least %d", ErrMalformed, len(sealed), overhead)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("secretbox: %w: unknown version %d", ErrMalformed, sealed[0])
	}
	id := keyID(sealed[1:headerSize])
	aead, ok := b.aeads[id]
	if !ok {
		return nil, fmt.Errorf("secretbox: %w %s", ErrUnknownKey, id)
	}
	nonce := sealed[headerSize : headerSize+nonceSize]
	plaintext, err := aead.Open(nil, nonce, sealed[headerSize+nonceSize:], additional(sealed[:headerSize], associated))
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w (key %s)", ErrAuthentication, id)
	}
	return plaintext, nil
}

// additional is the data GCM authenticates without encrypting: the header,
// then the caller's associated data. The header has a fixed length, so the
// concatenation is unambiguous.
func additional(header, associated []byte) []byte {
	ad := make([]byte, 0, len(header)+len(associated))
	return append(append(ad, header...), associated...)
}
