package nodedetect

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHelpers(t *testing.T) {
	for _, tc := range []struct {
		name, domain, sub string
	}{
		{"a.b.example.co.uk", "example.co.uk", "a.b"},
		{"example.com.", "example.com", ""},
		{"com", "", ""},
		{"x.y.s3.amazonaws.com", "y.s3.amazonaws.com", "x"},
	} {
		if d, s := splitDomain(tc.name); d != tc.domain || s != tc.sub {
			t.Errorf("splitDomain(%q) = %q, %q; want %q, %q", tc.name, d, s, tc.domain, tc.sub)
		}
	}
	if d := cmp.Diff([]string{"a", "b", "c"}, labels(".a..b.c.")); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	for in, want := range map[string]string{"/usr/bin/curl": "curl", "curl": "curl", "": "", "/a/b/": "b"} {
		if got := baseName(in); got != want {
			t.Errorf("baseName(%q) = %q, want %q", in, got, want)
		}
	}
	if e := entropy(""); e != 0 {
		t.Errorf("entropy(\"\") = %v", e)
	}
	if e := entropy("aaaa"); e != 0 {
		t.Errorf("entropy(aaaa) = %v", e)
	}
	if e := entropy("abcd"); e != 2 {
		t.Errorf("entropy(abcd) = %v, want 2", e)
	}
	for addr, want := range map[string]bool{"8.8.8.8": true, "10.1.2.3": false, "100.64.1.1": false, "127.0.0.1": false,
		"169.254.169.254": false, "2001:4860::8888": true, "fd00::1": false, "::ffff:10.0.0.1": false} {
		if got := isPublic(netip.MustParseAddr(addr)); got != want {
			t.Errorf("isPublic(%s) = %v, want %v", addr, got, want)
		}
	}
	s := domainSet{"pool.example": {}, "top": {}}
	for name, want := range map[string]bool{"pool.example": true, "a.pool.example.": true, "xpool.example": false, "x.top": true, "top.com": false, "": false} {
		if got := s.contains(name); got != want {
			t.Errorf("contains(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestBuiltinLists(t *testing.T) {
	lists, err := BuiltinLists()
	if err != nil {
		t.Fatal(err)
	}
	for name, min := range map[string]int{ListMinerPools: 80, ListUnusualTLDs: 40, ListOASTDomains: 10, ListTunnelServices: 10, ListEntropyExempt: 30} {
		if len(lists[name]) < min {
			t.Errorf("list %s has %d entries, want at least %d", name, len(lists[name]), min)
		}
		for _, d := range lists[name] {
			if strings.HasPrefix(d, "!") {
				t.Errorf("list %s: removal %q in an embedded list", name, d)
			}
		}
	}
}
