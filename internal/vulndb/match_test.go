package vulndb

import (
	"errors"
	"testing"
)

func TestInRange(t *testing.T) {
	ev := func(pairs ...string) []Event {
		var out []Event
		for i := 0; i+1 < len(pairs); i += 2 {
			switch pairs[i] {
			case "i":
				out = append(out, Event{Introduced: pairs[i+1]})
			case "f":
				out = append(out, Event{Fixed: pairs[i+1]})
			case "l":
				out = append(out, Event{LastAffected: pairs[i+1]})
			case "limit":
				out = append(out, Event{Limit: pairs[i+1]})
			}
		}
		return out
	}
	goStdlib := Range{Type: RangeSemver, Events: ev("i", "0", "f", "1.20.10", "i", "1.21.0-0", "f", "1.21.3")}
	tests := []struct {
		name, ecosystem, version string
		r                        Range
		want                     bool
		wantFixed                string
	}{
		{"go stdlib in second interval", "Go", "1.21.0", goStdlib, true, "1.21.3"},
		{"go stdlib in first interval", "Go", "1.19.5", goStdlib, true, "1.20.10"},
		{"go stdlib between intervals", "Go", "1.20.12", goStdlib, false, ""},
		{"go stdlib at fix", "Go", "1.21.3", goStdlib, false, ""},
		{"go stdlib prerelease of 1.21", "Go", "1.21.0-rc.1", goStdlib, true, "1.21.3"},
		{"go module with v prefix", "Go", "v0.7.0", Range{Type: RangeSemver, Events: ev("i", "0", "f", "0.17.0")}, true, "0.17.0"},
		{"debian before fix", "Debian:12", "7.88.1-10+deb12u5", Range{Type: RangeEcosystem, Events: ev("i", "0", "f", "7.88.1-10+deb12u6")}, true, "7.88.1-10+deb12u6"},
		{"debian at fix", "Debian:12", "7.88.1-10+deb12u6", Range{Type: RangeEcosystem, Events: ev("i", "0", "f", "7.88.1-10+deb12u6")}, false, ""},
		{"debian epoch beats upstream", "Debian:12", "1:1.0-1", Range{Type: RangeEcosystem, Events: ev("i", "0", "f", "2.0-1")}, false, ""},
		{"npm below introduced", "npm", "1.0.0", Range{Type: RangeEcosystem, Events: ev("i", "2.0.0", "f", "2.5.0")}, false, ""},
		{"last_affected inclusive", "PyPI", "2.3", Range{Type: RangeEcosystem, Events: ev("i", "1.0", "l", "2.3")}, true, ""},
		{"past last_affected", "PyPI", "2.3.1", Range{Type: RangeEcosystem, Events: ev("i", "1.0", "l", "2.3")}, false, ""},
		{"introduced without fix", "crates.io", "9.9.9", Range{Type: RangeEcosystem, Events: ev("i", "1.0.0")}, true, ""},
		{"events out of order", "npm", "1.5.0", Range{Type: RangeEcosystem, Events: ev("f", "2.0.0", "i", "1.0.0")}, true, "2.0.0"},
		{"git range ignored", "Go", "1.0.0", Range{Type: RangeGit, Events: ev("i", "0", "limit", "abc")}, false, ""},
		{"alpine", "Alpine:v3.19", "3.1.4-r0", Range{Type: RangeEcosystem, Events: ev("i", "0", "f", "3.1.4-r5")}, true, "3.1.4-r5"},
		{"maven", "Maven", "4.1.48.Final", Range{Type: RangeEcosystem, Events: ev("i", "4.0.0", "f", "4.1.59.Final")}, true, "4.1.59.Final"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, fixed, err := inRange(versionCache{}, tc.ecosystem, tc.version, &tc.r)
			if err != nil {
				t.Fatalf("inRange: %v", err)
			}
			if got != tc.want || fixed != tc.wantFixed {
				t.Errorf("inRange(%s %s) = %v, %q; want %v, %q", tc.ecosystem, tc.version, got, fixed, tc.want, tc.wantFixed)
			}
		})
	}
}

func TestAffectsVersionsList(t *testing.T) {
	e := &entry{ID: "PYSEC-1", Versions: []string{"1.0", "1.1"}, Ranges: []Range{{Type: RangeEcosystem, Events: []Event{{Introduced: "1.0"}, {Fixed: "1.2"}}}}}
	ok, fixed, err := e.affects(nil, "PyPI", "1.1")
	if err != nil || !ok || fixed != "1.2" {
		t.Errorf("affects(1.1) = %v %q %v, want true 1.2", ok, fixed, err)
	}
	only := &entry{ID: "PYSEC-2", Versions: []string{"0.9"}}
	if ok, _, _ := only.affects(nil, "PyPI", "1.0"); ok {
		t.Error("a version not listed matched")
	}
}

func TestUncomparableVersion(t *testing.T) {
	r := Range{Type: RangeEcosystem, Events: []Event{{Introduced: "0"}, {Fixed: "1.0-1"}}}
	_, _, err := inRange(nil, "NoSuchEcosystem", "1.0", &r)
	if !errors.Is(err, ErrUnparsableVersion) {
		t.Errorf("err = %v, want ErrUnparsableVersion", err)
	}
}
