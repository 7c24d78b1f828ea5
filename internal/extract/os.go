package extract

import "strings"

// Ecosystem returns the OSV ecosystem of the packages the operating system
// installs, with the release suffix OSV scopes advisories by ("Debian:12",
// "Ubuntu:22.04:LTS", "Alpine:v3.19"), or "" when OSV has no ecosystem for
// it. Where the release cannot be read from VersionID, the ecosystem is
// returned without a suffix ("Debian" for testing and sid).
//
// Names follow the OSV schema's ecosystems list. In particular Ubuntu LTS
// releases carry a mandatory ":LTS" suffix, and openSUSE and SUSE use the
// product's marketing name.
func (o *OS) Ecosystem() string {
	if o == nil {
		return ""
	}
	id := strings.ToLower(o.ID)
	v := o.VersionID
	switch id {
	case "debian":
		return withRelease("Debian", major(v))
	case "ubuntu":
		return ubuntuEcosystem(v, o.PrettyName)
	case "alpine":
		if mm := majorMinor(v); mm != "" {
			return "Alpine:v" + mm
		}
		return "Alpine"
	case "rocky":
		return withRelease("Rocky Linux", major(v))
	case "almalinux":
		return withRelease("AlmaLinux", major(v))
	case "rhel":
		// OSV scopes Red Hat advisories by a CPE of the product stream
		// ("Red Hat:enterprise_linux:9::appstream"), which depends on the
		// repository a package came from, not on os-release.
		return "Red Hat"
	case "wolfi":
		return "Wolfi"
	case "chainguard":
		return "Chainguard"
	case "opensuse-leap":
		if mm := majorMinor(v); mm != "" {
			return "openSUSE:Leap " + mm
		}
		return "openSUSE"
	case "opensuse-tumbleweed":
		return "openSUSE:Tumbleweed"
	case "sles":
		return slesEcosystem(v)
	}
	return ""
}

func withRelease(ecosystem, release string) string {
	if release == "" {
		return ecosystem
	}
	return ecosystem + ":" + release
}

// ubuntuEcosystem adds the ":LTS" suffix OSV requires for long-term support
// releases. The PRETTY_NAME says "LTS" for them ("Ubuntu 22.04.3 LTS"); when
// it is missing, the release number decides: LTS releases are the April
// releases of even years.
func ubuntuEcosystem(versionID, prettyName string) string {
	mm := majorMinor(versionID)
	if mm == "" {
		return "Ubuntu"
	}
	year, month, _ := strings.Cut(mm, ".")
	lts := strings.Contains(prettyName, " LTS") ||
		(month == "04" && len(year) == 2 && (year[1]-'0')%2 == 0)
	if lts {
		return "Ubuntu:" + mm + ":LTS"
	}
	return "Ubuntu:" + mm
}

// slesEcosystem turns VERSION_ID "15.5" into the product name OSV uses,
// "SUSE:Linux Enterprise Server 15 SP5"; service pack 0 is the plain
// release ("... Server 15").
func slesEcosystem(versionID string) string {
	mj := major(versionID)
	if mj == "" {
		return "SUSE"
	}
	name := "SUSE:Linux Enterprise Server " + mj
	_, sp, ok := strings.Cut(versionID, ".")
	if ok && isDigits(sp) && strings.TrimLeft(sp, "0") != "" {
		name += " SP" + strings.TrimLeft(sp, "0")
	}
	return name
}

// major returns the leading numeric component of a version ("9" of "9.3"),
// or "" when the version does not start with one.
func major(v string) string {
	mj, _, _ := strings.Cut(v, ".")
	if !isDigits(mj) {
		return ""
	}
	return mj
}

// majorMinor returns "3.19" of "3.19.1" (and of "3.20.0_alpha20240329"), or
// "" when the version has no numeric major and minor.
func majorMinor(v string) string {
	mj, rest, ok := strings.Cut(v, ".")
	if !ok || !isDigits(mj) {
		return ""
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == 0 {
		return ""
	}
	return mj + "." + rest[:end]
}

func isDigits(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
