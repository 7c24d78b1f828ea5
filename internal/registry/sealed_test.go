package registry

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/secretbox"
)

func TestSealedCredentials(t *testing.T) {
	key := make([]byte, secretbox.KeySize)
	rand.Read(key)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	c := Credentials{Username: "u", Password: "hunter2"}
	sealed, err := SealCredentials(box, "prod", c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed credentials contain the password")
	}
	got, err := OpenCredentials(box, "prod", sealed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := OpenCredentials(box, "other", sealed); err == nil {
		t.Error("credentials of prod opened as another registry's")
	}
	if none, err := SealCredentials(box, "prod", Credentials{}); err != nil || none != nil {
		t.Errorf("empty credentials sealed to %v, %v", none, err)
	}
}
