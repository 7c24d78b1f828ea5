package secretbox

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func newBox(t testing.TB, keys ...[]byte) *Box {
	t.Helper()
	b, err := New(keys...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := newBox(t, newKey(t))
	for _, plaintext := range [][]byte{nil, {}, []byte("hunter2"), bytes.Repeat([]byte{0xff}, 1<<16)} {
		for _, ad := range [][]byte{nil, []byte("registry:12")} {
			sealed, err := b.Seal(plaintext, ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if len(plaintext) > 0 && bytes.Contains(sealed, plaintext) {
				t.Errorf("sealed value contains the plaintext")
			}
			got, err := b.Open(sealed, ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, plaintext) {
				t.Errorf("Open = %q, want %q", got, plaintext)
			}
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	b := newBox(t, newKey(t))
	s1, _ := b.Seal([]byte("same"), nil)
	s2, _ := b.Seal([]byte("same"), nil)
	if bytes.Equal(s1, s2) {
		t.Error("sealing the same value twice gave the same bytes; the nonce is not random")
	}
}

func TestTamperEveryByte(t *testing.T) {
	b := newBox(t, newKey(t))
	sealed, err := b.Seal([]byte("registry password"), []byte("registry:12"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			tampered := bytes.Clone(sealed)
			tampered[i] ^= flip
			if got, err := b.Open(tampered, []byte("registry:12")); err == nil {
				t.Fatalf("byte %d ^ %#x: Open succeeded with %q", i, flip, got)
			}
		}
	}
	for _, n := range []int{1, 16, len(sealed) - overhead} {
		if _, err := b.Open(sealed[:len(sealed)-n], []byte("registry:12")); err == nil {
			t.Errorf("truncated by %d: Open succeeded", n)
		}
	}
	if _, err := b.Open(append(bytes.Clone(sealed), 0), []byte("registry:12")); !errors.Is(err, ErrAuthentication) {
		t.Errorf("extended by a byte: Open error = %v, want %v", err, ErrAuthentication)
	}
}

func TestWrongAssociatedData(t *testing.T) {
	b := newBox(t, newKey(t))
	sealed, err := b.Seal([]byte("token"), []byte("registry:12"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range []string{"registry:13", "registry:1", "registry:12 ", "", "REGISTRY:12"} {
		_, err := b.Open(sealed, []byte(ad))
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("Open with associated data %q: error = %v, want %v", ad, err, ErrAuthentication)
		}
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	old := newBox(t, oldKey)
	sealedOld, err := old.Seal([]byte("old secret"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}

	rotated := newBox(t, newKey, oldKey)
	got, err := rotated.Open(sealedOld, []byte("a"))
	if err != nil {
		t.Fatalf("new key first: opening a value sealed with the old key: %v", err)
	}
	if string(got) != "old secret" {
		t.Errorf("Open = %q", got)
	}

	sealedNew, err := rotated.Seal([]byte("new secret"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Open(sealedNew, []byte("a")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a Box with only the old key opened a value sealed after rotation: error = %v, want %v", err, ErrUnknownKey)
	}
	if _, err := newBox(t, newKey).Open(sealedNew, []byte("a")); err != nil {
		t.Errorf("rotation did not seal with the new (first) key: %v", err)
	}
}

func TestUnknownKey(t *testing.T) {
	key := newKey(t)
	sealed, err := newBox(t, key).Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newBox(t, newKey(t)).Open(sealed, nil)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open error = %v, want %v", err, ErrUnknownKey)
	}
	if id := idOf(key).String(); !strings.Contains(err.Error(), "sealed with an unknown key "+id) {
		t.Errorf("error %q does not name key id %s", err, id)
	}
}

func TestOpenMalformed(t *testing.T) {
	b := newBox(t, newKey(t))
	good, err := b.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	otherVersion := bytes.Clone(good)
	otherVersion[0] = 2
	tests := []struct {
		name   string
		sealed []byte
		want   error
	}{
		{"nil", nil, ErrMalformed},
		{"empty", []byte{}, ErrMalformed},
		{"header only", good[:headerSize], ErrMalformed},
		{"no tag", good[:headerSize+nonceSize+15], ErrMalformed},
		{"version 0", make([]byte, 64), ErrMalformed},
		{"version 2", otherVersion, ErrMalformed},
		{"plaintext by mistake", []byte("this was stored before encryption existed"), ErrMalformed},
		{"right version, zero key id", append([]byte{1}, make([]byte, 40)...), ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.Open(tt.sealed, nil)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %q, %v; want error %v", got, err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	k := newKey(t)
	tests := []struct {
		name    string
		keys    [][]byte
		wantErr string
	}{
		{"no keys", nil, "no key"},
		{"short key", [][]byte{k[:16]}, "key 1 is 16 bytes, want 32"},
		{"long second key", [][]byte{k, append(bytes.Clone(k), 0)}, "key 2 is 33 bytes, want 32"},
		{"same key twice", [][]byte{k, k}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.keys...)
			var got string
			if err != nil {
				got = err.Error()
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && !strings.Contains(got, tt.wantErr) {
				t.Errorf("New error = %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}

// TestSealedFormat pins the header, which values stored in databases
// depend on.
func TestSealedFormat(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	sealed, err := newBox(t, key).Seal([]byte("abc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := idOf(key)
	want := append([]byte{1}, id[:]...)
	if diff := cmp.Diff(want, sealed[:headerSize]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if got, want := len(sealed), overhead+3; got != want {
		t.Errorf("len(sealed) = %d, want %d", got, want)
	}
}

func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{1}, KeySize)
	b, err := New(key)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := b.Seal([]byte("secret"), []byte("registry:1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed, []byte("registry:1"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 0, 0, 0, 0}, []byte("x"))
	f.Fuzz(func(t *testing.T, sealed, associated []byte) {
		plaintext, err := b.Open(sealed, associated)
		if err != nil {
			if plaintext != nil {
				t.Errorf("Open returned %q with error %v", plaintext, err)
			}
			return
		}
		// Whatever opens must re-seal and open to the same value.
		again, err := b.Seal(plaintext, associated)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Open(again, associated)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Errorf("re-sealed value: Open = %q, %v", got, err)
		}
	})
}
