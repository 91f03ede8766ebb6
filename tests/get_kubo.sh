#!/bin/sh
# Print the path of the Kubo binary the tests run, building it once with Go.
#   1. $IPFS_BIN, if set;
#   2. an `ipfs` on PATH that is Kubo v0.43.1;
#   3. the one built before, in ${XDG_CACHE_HOME:-~/.cache}/ipfsmaster-tests/;
#   4. else Kubo v0.43.1 built from the Go module proxy (a few minutes, once).
#
# Why not plainly `go install github.com/ipfs/kubo/cmd/ipfs@v0.43.1`: Kubo
# v0.43.1's go.mod has a replace directive, which `go install pkg@version`
# refuses ("The go.mod file for the module providing named packages contains
# one or more replace directives"), and the fork it points go-libp2p at
# (github.com/lidel/go-libp2p) is not on the module proxy (403). So the
# module's own source is built, with the released go-libp2p its go.mod
# requires (v0.49.0) and the quic-go and webtransport-go versions that
# release was made for; only the QUIC transports differ, and the test node
# runs offline.
set -eu
VERSION=0.43.1

if [ -n "${IPFS_BIN:-}" ]; then
    echo "$IPFS_BIN"
    exit 0
fi
if command -v ipfs >/dev/null 2>&1 && [ "$(ipfs version --number 2>/dev/null)" = "$VERSION" ]; then
    command -v ipfs
    exit 0
fi
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ipfsmaster-tests/kubo-v$VERSION"
if [ -x "$CACHE/ipfs" ] && [ "$("$CACHE/ipfs" version --number 2>/dev/null)" = "$VERSION" ]; then
    echo "$CACHE/ipfs"
    exit 0
fi

command -v go >/dev/null 2>&1 || { echo "Kubo $VERSION is needed: install Go, or set IPFS_BIN to an ipfs binary" >&2; exit 1; }
echo "Building Kubo $VERSION with $(go version) (once; a few minutes)..." >&2
WORK=$(sh "$(dirname "$0")/go_module_source.sh" github.com/ipfs/kubo "v$VERSION")
trap 'chmod -R u+w "$WORK"; rm -rf "$WORK"' EXIT
(
    cd "$WORK"
    go mod edit -dropreplace github.com/libp2p/go-libp2p \
        -require github.com/quic-go/quic-go@v0.60.0 -require github.com/quic-go/webtransport-go@v0.11.1
    mkdir -p "$CACHE"
    GOFLAGS=-mod=mod go build -trimpath -o "$CACHE/ipfs.new" ./cmd/ipfs >&2
)
mv "$CACHE/ipfs.new" "$CACHE/ipfs"
[ "$("$CACHE/ipfs" version --number)" = "$VERSION" ] || { echo "the built ipfs is not Kubo $VERSION" >&2; exit 1; }
echo "$CACHE/ipfs"
