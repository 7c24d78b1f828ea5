package api

import (
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store"
)

func TestMayCall(t *testing.T) {
	v, a, ad, in := store.RoleViewer, store.RoleAnalyst, store.RoleAdmin, store.RoleIngest
	for _, tc := range []struct {
		has, needs string
		want       bool
	}{
		{v, v, true}, {v, a, false}, {a, v, true}, {ad, a, true}, {a, ad, false},
		{in, in, true}, {ad, in, true}, {v, in, false}, {a, in, false},
		{in, v, false}, {in, a, false}, {in, ad, false},
		{"", v, false}, {"root", v, false},
	} {
		if got := mayCall(tc.has, tc.needs); got != tc.want {
			t.Errorf("mayCall(%q, %q) = %v, want %v", tc.has, tc.needs, got, tc.want)
		}
	}
}
