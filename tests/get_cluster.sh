#!/bin/sh
# Print the folder holding ipfs-cluster-service and ipfs-cluster-ctl for the
# tests, building them once with Go.
#   1. $IPFS_CLUSTER_BIN, if set;
#   2. the ones built before, in ${XDG_CACHE_HOME:-~/.cache}/ipfsmaster-tests/;
#   3. else IPFS Cluster v1.0.8 built from the Go module proxy (a few minutes, once).
#
# Why not plainly `go install github.com/ipfs-cluster/ipfs-cluster/cmd/...@v1.0.8`:
# go install looks up the module's deprecation in its version list, which the
# proxy refuses ("loading deprecation for github.com/ipfs-cluster/ipfs-cluster:
# ... @v/list: 403 Forbidden"), while the version itself is served. So the
# module's own source is downloaded and built, unchanged.
set -eu
VERSION=1.0.8

if [ -n "${IPFS_CLUSTER_BIN:-}" ]; then
    echo "$IPFS_CLUSTER_BIN"
    exit 0
fi
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ipfsmaster-tests/ipfs-cluster-v$VERSION"
if [ -x "$CACHE/ipfs-cluster-service" ] && [ -x "$CACHE/ipfs-cluster-ctl" ] \
        && "$CACHE/ipfs-cluster-service" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "$CACHE"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "IPFS Cluster $VERSION is needed: install Go, or set IPFS_CLUSTER_BIN" >&2; exit 1; }
echo "Building IPFS Cluster $VERSION with $(go version) (once; a few minutes)..." >&2
WORK=$(sh "$(dirname "$0")/go_module_source.sh" github.com/ipfs-cluster/ipfs-cluster "v$VERSION")
trap 'chmod -R u+w "$WORK"; rm -rf "$WORK"' EXIT
mkdir -p "$CACHE"
(cd "$WORK" && go build -trimpath -o "$WORK/bin/" ./cmd/ipfs-cluster-service ./cmd/ipfs-cluster-ctl >&2)
mv "$WORK/bin/ipfs-cluster-service" "$WORK/bin/ipfs-cluster-ctl" "$CACHE/"
echo "$CACHE"
