#!/usr/bin/env bash
# testdeps.sh installs what the integration tests run: Debian packages
# (containerd, runc, a registry, PostgreSQL, static busybox for test images)
# and the Kubernetes binaries hack/testbin.sh builds. It is idempotent and
# quick when everything is already there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[testdeps %s] %s\n' "$(date +%T)" "$*" >&2; }

packages=(containerd runc docker-registry postgresql busybox-static ca-certificates iproute2)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	log "installing Debian packages: ${missing[*]}"
	$sudo apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packages' own services, if the install started any, are left alone:
# every test starts its own instance on free loopback ports.

"$here/testbin.sh" >/dev/null
