#!/usr/bin/env bash
# test.sh is what `make test` runs, on a developer machine and in CI alike:
# install the test components, check formatting and lint, run every test
# (unit and integration), and print how long each step took.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

steps=()
timed() { # name command...
	local name=$1 t0=$SECONDS
	shift
	printf '\n==> %s\n' "$name"
	"$@"
	steps+=("$(printf '%-28s %5ds' "$name" $((SECONDS - t0)))")
}
summary() {
	local rc=$?
	printf '\n==> timing summary (%s)\n' "$([ $rc -eq 0 ] && echo passed || echo "FAILED, exit $rc")"
	printf '  %s\n' "${steps[@]}"
	printf '  %-28s %5ds\n' total "$SECONDS"
}
trap summary EXIT

timed "install test components" hack/testdeps.sh
timed "lint" hack/lint.sh
timed "go test" go test -count=1 -timeout 40m ./...
