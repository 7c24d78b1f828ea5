#!/bin/sh
# make-fixtures.sh builds testdata/auditable/hello-auditable, a Rust
# executable carrying cargo-auditable's .dep-v0 section, without
# cargo-auditable (which needs crates.io to install). It needs rustc and
# python3 (for zlib). Run it from anywhere; it writes next to itself.
set -eu
cd "$(dirname "$0")/auditable"
python3 -c 'import sys, zlib; sys.stdout.buffer.write(zlib.compress(open("dep-v0.json", "rb").read(), 9))' >dep-v0.zlib
rustc --edition 2021 -C opt-level=z -C panic=abort -C codegen-units=1 -C strip=symbols \
	--remap-path-prefix "$PWD=." main.rs -o hello-auditable
rm dep-v0.zlib
readelf -x .dep-v0 hello-auditable | head -3
