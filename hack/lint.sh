#!/usr/bin/env bash
# lint.sh fails on unformatted code, go vet findings and staticcheck
# findings. staticcheck is installed at a pinned version into the cache.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
staticcheck_version=v0.8.2
tools=${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/tools/staticcheck-$staticcheck_version

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	printf 'gofmt would change:\n%s\n' "$unformatted" >&2
	exit 1
fi
go vet ./...
if [ ! -x "$tools/staticcheck" ]; then
	GOBIN=$tools go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
"$tools/staticcheck" ./...
