package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadKeys(t *testing.T) {
	k1 := bytes.Repeat([]byte{0xfb}, KeySize) // base64 of 0xfb... uses '+' and '/'
	k2 := bytes.Repeat([]byte{0x2a}, KeySize)
	k3 := bytes.Repeat([]byte{0xfe}, KeySize)
	std := base64.StdEncoding.EncodeToString(k1)
	tests := []struct {
		name string
		env  string
		file string
		want [][]byte
	}{
		{"env std base64", std, "", [][]byte{k1}},
		{"env raw std base64", base64.RawStdEncoding.EncodeToString(k1), "", [][]byte{k1}},
		{"env url base64", base64.URLEncoding.EncodeToString(k1), "", [][]byte{k1}},
		{"env raw url base64", base64.RawURLEncoding.EncodeToString(k1), "", [][]byte{k1}},
		{"env hex", hex.EncodeToString(k2), "", [][]byte{k2}},
		{"env upper hex", strings.ToUpper(hex.EncodeToString(k2)), "", [][]byte{k2}},
		{"env list", " " + std + "," + hex.EncodeToString(k2) + " ", "", [][]byte{k1, k2}},
		{"file with comments", "", "# primary\n" + hex.EncodeToString(k2) + "  # added 2026-01\r\n\n# old\n" + std + "\n", [][]byte{k2, k1}},
		{"env before file", hex.EncodeToString(k3), std + "\n" + hex.EncodeToString(k2), [][]byte{k3, k1, k2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			if tt.file != "" {
				path = filepath.Join(t.TempDir(), "keys")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LoadKeys(tt.env, path)
			if err != nil {
				t.Fatalf("LoadKeys: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadKeysErrors(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16))
	tests := []struct {
		name    string
		env     string
		file    string
		wantErr string
	}{
		{"nothing", "", "", ErrNoKey.Error()},
		{"only comments", "# no key yet", "# nor here\n\n", ErrNoKey.Error()},
		{"16-byte key", secret, "", "key 1 in the key environment variable (line 1): decodes to 16 bytes, want 32"},
		{"48-byte base64", strings.Repeat("Z", 64), "", "decodes to 48 bytes, want 32"},
		{"63 hex digits", strings.Repeat("a", 63), "", "decodes to 47 bytes, want 32"},
		{"not base64", "p@ssw0rd!", "", "neither 64 hex digits nor base64"},
		{"bad second line of file", "", hex.EncodeToString(make([]byte, 32)) + "\n" + secret, "key 2 in FILE (line 2): decodes to 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			if tt.file != "" {
				path = filepath.Join(t.TempDir(), "keys")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadKeys(tt.env, path)
			if err == nil {
				t.Fatalf("LoadKeys succeeded, want error containing %q", tt.wantErr)
			}
			want := strings.ReplaceAll(tt.wantErr, "FILE", path)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error = %q, want it to contain %q", err, want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestLoadKeysMissingFile(t *testing.T) {
	_, err := LoadKeys("", filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want one matching fs.ErrNotExist", err)
	}
}

func TestGenerateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secretbox.key")
	key, err := GenerateKeyFile(path)
	if err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	if len(key) != KeySize {
		t.Fatalf("key is %d bytes", len(key))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode = %o, want 600", perm)
	}
	loaded, err := LoadKeys("", path)
	if err != nil {
		t.Fatalf("LoadKeys of a generated file: %v", err)
	}
	if diff := cmp.Diff([][]byte{key}, loaded); diff != "" {
		t.Errorf("loaded keys (-want +got):\n%s", diff)
	}

	before, _ := os.ReadFile(path)
	if _, err := GenerateKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second GenerateKeyFile: error = %v, want one matching fs.ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("second GenerateKeyFile changed the existing key file")
	}
}

func TestGenerateKeyFileNoDirectory(t *testing.T) {
	if _, err := GenerateKeyFile(filepath.Join(t.TempDir(), "missing", "key")); err == nil {
		t.Error("GenerateKeyFile into a missing directory succeeded")
	}
}

func FuzzLoadKeys(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, KeySize)))
	f.Add(hex.EncodeToString(make([]byte, KeySize)) + " # comment\n" + base64.RawURLEncoding.EncodeToString(make([]byte, KeySize)))
	f.Add("#\n,\n\r\t")
	f.Add("====")
	f.Fuzz(func(t *testing.T, env string) {
		keys, err := LoadKeys(env, "")
		if err != nil {
			if keys != nil {
				t.Errorf("LoadKeys returned keys with error %v", err)
			}
			return
		}
		for i, k := range keys {
			if len(k) != KeySize {
				t.Fatalf("key %d is %d bytes", i, len(k))
			}
		}
		if _, err := New(keys...); err != nil && !strings.Contains(err.Error(), "same key id") {
			t.Errorf("New with loaded keys: %v", err)
		}
	})
}
