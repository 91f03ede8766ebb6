#!/bin/sh
# Print the path of a fresh, writable copy of a Go module's source, from the
# Go module proxy: sh tests/go_module_source.sh MODULE VERSION
# The caller removes the copy.
set -eu
SRC=$(go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$SRC" ] || { echo "go mod download $1@$2 failed" >&2; exit 1; }
WORK=$(mktemp -d)
cp -R "$SRC/." "$WORK/"
chmod -R u+w "$WORK"
echo "$WORK"
