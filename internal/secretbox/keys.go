package secretbox

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrNoKey is returned by LoadKeys when neither source holds a key.
var ErrNoKey = errors.New("no secretbox key configured")

// LoadKeys reads keys from env, the value of an environment variable, and
// from the key file at path file; either may be empty. Keys from env come
// first, then the file's, in order: the first key is the one New seals
// with.
//
// Each key is 32 bytes written as 64 hex digits or in base64 (standard or
// URL alphabet, padded or not). Keys are separated by newlines, commas or
// spaces; '#' starts a comment that runs to the end of the line. Errors
// say where a bad key is but never show it.
//
// A missing file is an error that matches fs.ErrNotExist, so a caller can
// tell "create one" from "cannot read it".
func LoadKeys(env, file string) ([][]byte, error) {
	keys, err := parseKeys("the key environment variable", env)
	if err != nil {
		return nil, err
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading secretbox key file: %w", err)
		}
		fromFile, err := parseKeys(file, string(data))
		if err != nil {
			return nil, err
		}
		keys = append(keys, fromFile...)
	}
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	return keys, nil
}

// parseKeys decodes the keys in text; source names it in errors.
func parseKeys(source, text string) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\r'
		})
		for _, field := range fields {
			key, err := decodeKey(field)
			if err != nil {
				return nil, fmt.Errorf("secretbox key %d in %s (line %d): %w", len(keys)+1, source, i+1, err)
			}
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// decodeKey decodes one key. Hex is tried first: 64 hex digits are also
// valid base64, of the wrong length.
func decodeKey(s string) ([]byte, error) {
	if len(s) == hex.EncodedLen(KeySize) {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("decodes to %d bytes, want %d (generate one with `openssl rand -base64 32`)", len(key), KeySize)
		}
		return key, nil
	}
	return nil, fmt.Errorf("%d characters that are neither 64 hex digits nor base64", len(s))
}

// GenerateKeyFile creates a key file at path holding one new random key,
// readable by its owner only, and returns the key. It never overwrites: if
// the file exists it fails with an error matching fs.ErrExist.
func GenerateKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating secretbox key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating secretbox key file: %w", err)
	}
	content := fmt.Sprintf("# Bulwark secretbox key, generated %s.\n"+
		"# It decrypts the stored registry credentials: back it up, keep it secret.\n"+
		"# To rotate, put a new key on the first line and keep this one below it.\n%s\n",
		time.Now().UTC().Format(time.RFC3339), base64.StdEncoding.EncodeToString(key))
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A half-written key file would be read as a bad key on the next
		// start; better that it does not exist.
		os.Remove(path)
		return nil, fmt.Errorf("writing secretbox key file %s: %w", path, err)
	}
	return key, nil
}
