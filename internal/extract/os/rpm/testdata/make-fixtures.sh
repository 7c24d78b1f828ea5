#!/bin/sh
# Regenerates the rpm database fixtures in this directory from the real
# databases that github.com/erikvarga/go-rpmdb ships in its module zip
# (see README.md). Needs go, db5.3-util (db5.3_dump, db5.3_load) and sqlite3:
#
#	apt-get install db5.3-util sqlite3
#	sh make-fixtures.sh
#
# The Berkeley DB and SQLite databases are trimmed to a few packages: the
# headers are copied byte for byte, the database around them is written
# again by Berkeley DB 5.3 and SQLite. The NDB database and the one-package
# Berkeley DB database are copied unchanged.
set -eu

module=github.com/erikvarga/go-rpmdb
version=v0.0.0-20250523120114-a15a62cd4593

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Outside any module, so that nothing here touches go.mod or go.sum.
dir=$(cd "$work" && go mod download -json "$module@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
src=$dir/pkg/testdata
[ -d "$src" ] || { echo "no testdata in $module@$version" >&2; exit 1; }

# bdb_subset SRC DST BYTEORDER INSTANCE... writes to DST a Berkeley DB hash
# database holding the header instances of SRC named (and the instance
# counter, key 0), in byte order 1234 (little-endian) or 4321 (big-endian).
# A key is the instance number in the database's byte order.
bdb_subset() {
	in=$1 out=$2 order=$3
	shift 3
	keys=00000000
	for n in "$@"; do
		if [ "$order" = 1234 ]; then
			k=$(printf '%08x' "$n" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
		else
			k=$(printf '%08x' "$n")
		fi
		keys="$keys $k"
	done
	mkdir -p "$(dirname "$out")"
	rm -f "$out"
	# db_dump writes a header, then one line per key and one per value,
	# each with a leading space, then DATA=END.
	db5.3_dump "$in" | awk -v keys="$keys" '
		BEGIN { n = split(keys, k, " "); for (i = 1; i <= n; i++) want[" " k[i]] = 1 }
		!body { print; if ($0 == "HEADER=END") body = 1; next }
		$0 == "DATA=END" { print; next }
		{ if (++line % 2) keep = ($0 in want); if (keep) print }
	' | db5.3_load -c db_lorder="$order" "$out"
}

# CentOS 7 with httpd24 (x86_64, little-endian): bind-license (epoch 32,
# noarch), bash, tzdata, ca-certificates, centos-release, gpg-pubkey,
# openssl-libs (epoch 1), httpd24-httpd.
bdb_subset "$src/centos7-httpd24/Packages" "$here/centos7/Packages" 1234 \
	2 3 6 39 43 172 189 246

# UBI 8 on s390x (big-endian): tzdata, redhat-release, zlib,
# ca-certificates, openssl-libs (epoch 1), gpg-pubkey.
bdb_subset "$src/ubi8-s390x/Packages" "$here/ubi8-s390x/Packages" 4321 \
	2 6 20 66 94 183

# Fedora 35 (SQLite): fedora-release-identity-container, bash, zlib, gmp
# (epoch 1), shadow-utils (epoch 2), openssl-libs (epoch 1),
# ca-certificates, gpg-pubkey. The index tables keep their rows for these
# packages only; the database stays in WAL mode, as rpm left it.
mkdir -p "$here/fedora35"
db=$here/fedora35/rpmdb.sqlite
rm -f "$db" "$db-wal" "$db-shm"
cp "$src/fedora35/rpmdb.sqlite" "$db"
chmod 644 "$db"
keep='(4, 19, 24, 29, 85, 90, 92, 138)'
{
	echo "DELETE FROM Packages WHERE hnum NOT IN $keep;"
	sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'Packages' AND name NOT LIKE 'sqlite%'" |
		while read -r t; do echo "DELETE FROM '$t' WHERE hnum NOT IN $keep;"; done
	echo "VACUUM;"
} | sqlite3 "$db"
rm -f "$db-wal" "$db-shm"

# Unchanged: SLE 15 BCI (NDB, 35 packages) and a one-package RHEL 8
# database (Berkeley DB as rpm wrote it).
mkdir -p "$here/sle15-bci" "$here/libuuid"
cp "$src/sle15-bci/Packages.db" "$here/sle15-bci/Packages.db"
cp "$src/libuuid/Packages" "$here/libuuid/Packages"
chmod 644 "$here/sle15-bci/Packages.db" "$here/libuuid/Packages"
