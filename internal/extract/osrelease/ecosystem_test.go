package osrelease

import (
	"testing"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

// TestEcosystem covers extract.OS.Ecosystem for releases without a fixture
// file; TestParseRealFiles covers it for the real files.
func TestEcosystem(t *testing.T) {
	tests := []struct {
		name string
		os   *extract.OS
		want string
	}{
		{"nil", nil, ""},
		{"debian sid has no VERSION_ID", &extract.OS{ID: "debian", PrettyName: "Debian GNU/Linux trixie/sid"}, "Debian"},
		{"debian 11", &extract.OS{ID: "debian", VersionID: "11"}, "Debian:11"},
		{"debian junk version", &extract.OS{ID: "debian", VersionID: "twelve"}, "Debian"},
		{"ubuntu 24.04 LTS", &extract.OS{ID: "ubuntu", VersionID: "24.04", PrettyName: "Ubuntu 24.04.1 LTS"}, "Ubuntu:24.04:LTS"},
		{"ubuntu LTS without PRETTY_NAME", &extract.OS{ID: "ubuntu", VersionID: "20.04"}, "Ubuntu:20.04:LTS"},
		{"ubuntu interim release", &extract.OS{ID: "ubuntu", VersionID: "23.10", PrettyName: "Ubuntu 23.10"}, "Ubuntu:23.10"},
		{"ubuntu odd-year April", &extract.OS{ID: "ubuntu", VersionID: "23.04"}, "Ubuntu:23.04"},
		{"ubuntu without VERSION_ID", &extract.OS{ID: "ubuntu"}, "Ubuntu"},
		{"alpine edge", &extract.OS{ID: "alpine", VersionID: "3.20.0_alpha20240329"}, "Alpine:v3.20"},
		{"alpine two components", &extract.OS{ID: "alpine", VersionID: "3.18"}, "Alpine:v3.18"},
		{"alpine without VERSION_ID", &extract.OS{ID: "alpine"}, "Alpine"},
		{"almalinux", &extract.OS{ID: "almalinux", VersionID: "9.4"}, "AlmaLinux:9"},
		{"rocky 8", &extract.OS{ID: "rocky", VersionID: "8.9"}, "Rocky Linux:8"},
		{"rhel", &extract.OS{ID: "rhel", VersionID: "9.4"}, "Red Hat"},
		{"wolfi", &extract.OS{ID: "wolfi", VersionID: "20230201"}, "Wolfi"},
		{"chainguard", &extract.OS{ID: "chainguard", VersionID: "20230214"}, "Chainguard"},
		{"opensuse tumbleweed", &extract.OS{ID: "opensuse-tumbleweed", VersionID: "20240301"}, "openSUSE:Tumbleweed"},
		{"sles 15 GA", &extract.OS{ID: "sles", VersionID: "15"}, "SUSE:Linux Enterprise Server 15"},
		{"sles 12 SP3", &extract.OS{ID: "sles", VersionID: "12.3"}, "SUSE:Linux Enterprise Server 12 SP3"},
		{"fedora is not in OSV", &extract.OS{ID: "fedora", VersionID: "39"}, ""},
		{"empty", &extract.OS{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.os.Ecosystem(); got != tt.want {
				t.Errorf("Ecosystem() = %q, want %q", got, tt.want)
			}
		})
	}
}
