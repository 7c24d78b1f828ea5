#!/usr/bin/env bash
# testbin.sh builds the binaries the integration tests run (kube-apiserver,
# kube-controller-manager, kube-scheduler, etcd, kwok) from the Go module
# proxy, using the pinned build-only modules under hack/, and caches them by
# version outside the repository. A cached binary whose pinned go.sum has not
# changed is not built again.
#
#   hack/testbin.sh            build what is missing; print the cache directory
#   hack/testbin.sh kubelet    also build kubelet and kubectl
#
# The cache root is $BULWARK_TESTBIN (default: ~/.cache/bulwark/testbin);
# internal/testenv looks for the binaries in the same place.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${BULWARK_TESTBIN:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/testbin}
export GOFLAGS=-buildvcs=false
log() { printf '[testbin %s] %s\n' "$(date +%T)" "$*" >&2; }

# pinned NAME reads the version a hack/NAME module pins for MODULE.
pinned() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

# stamp DIR MOD prints a fingerprint of the pin, so a changed pin rebuilds.
stamp() { sha256sum "$here/$1/go.mod" "$here/$1/go.sum" | sha256sum | cut -c1-16; }

# build MOD OUTDIR LDFLAGS PKG[=NAME]... builds each PKG from hack/MOD into
# OUTDIR/NAME (default: the package's last element) unless the binary there
# carries the current stamp. The Go build cache makes separate builds of
# packages that share code cheap.
build() {
	local mod=$1 out=$2 ldflags=$3; shift 3
	local want arg pkg name t0
	want=$(stamp "$mod")
	mkdir -p "$out"
	for arg in "$@"; do
		pkg=${arg%%=*}
		name=${pkg##*/}
		[ "$arg" != "$pkg" ] && name=${arg#*=}
		if [ -x "$out/$name" ] && [ "$(cat "$out/.$name.stamp" 2>/dev/null)" = "$want" ]; then
			continue
		fi
		t0=$SECONDS
		log "building $name ($pkg) into $out"
		(cd "$here/$mod" && go build -trimpath -ldflags "$ldflags" -o "$out/$name" "$pkg")
		echo "$want" > "$out/.$name.stamp"
		log "built $name in $((SECONDS - t0))s"
	done
}

kver=$(pinned k8s k8s.io/kubernetes)
minor=$(echo "$kver" | cut -d. -f2)
v=k8s.io/component-base/version
cv=k8s.io/client-go/pkg/version
kflags="-s -w -X $v.gitVersion=$kver -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
kflags="$kflags -X $cv.gitVersion=$kver -X $cv.gitMajor=1 -X $cv.gitMinor=$minor"
kpkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
if [ "${1:-}" = kubelet ]; then
	kpkgs+=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl)
fi
build k8s "$root/k8s-$kver" "$kflags" "${kpkgs[@]}"

ever=$(pinned etcd go.etcd.io/etcd/server/v3)
build etcd "$root/etcd-$ever" "-s -w" go.etcd.io/etcd/server/v3=etcd

wver=$(pinned kwok sigs.k8s.io/kwok)
build kwok "$root/kwok-$wver" "-s -w" sigs.k8s.io/kwok/cmd/kwok
# kwok needs its stage definitions (how fake nodes and pods move through
# their lifecycle); they ship in the module, not in the binary.
stages=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
if [ ! -d "$root/kwok-$wver/stage" ]; then
	cp -r "$stages" "$root/kwok-$wver/stage"
	chmod -R u+w "$root/kwok-$wver/stage"
fi

echo "$root"
