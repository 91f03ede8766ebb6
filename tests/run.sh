#!/bin/sh
# Install everything the tests need, then run all of them.
#   - pytest and selenium (tests/requirements.txt)
#   - the IPFS test node: Kubo v0.43.1, built once with Go (tests/get_kubo.sh),
#     or $IPFS_BIN
#   - IPFS Cluster v1.0.8, built once with Go (tests/get_cluster.sh), or
#     $IPFS_CLUSTER_BIN
#   - for each other CPython from 3.9 up, a pytest that runs on it
#     (tests/other_pythons.sh)
#   - Chromium, its driver and a CJK font from the distribution, for the
#     browser tests
# Usage: sh tests/run.sh [pytest arguments]
set -eu
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
        || [ ! -d /usr/share/fonts/truetype/wqy ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

IPFS_BIN=$(sh tests/get_kubo.sh)
export IPFS_BIN
echo "IPFS test node: $("$IPFS_BIN" version) ($IPFS_BIN)"

IPFS_CLUSTER_BIN=$(sh tests/get_cluster.sh)
export IPFS_CLUSTER_BIN

# Every CPython from 3.9 up on this machine, each with a pytest that runs on
# 3.9: the in-process tests and one real-process sync (tests/other_pythons.sh).
sh tests/other_pythons.sh "$@"

# The tests run in a network namespace of their own, where nothing but
# loopback exists: nothing they start can reach beyond this machine (IPFS
# Cluster peers, for one, always look for a NAT gateway on the network).
ISOLATE="unshare --net"
[ "$(id -u)" -eq 0 ] || ISOLATE="unshare --net --map-root-user"
exec $ISOLATE sh -c 'python3 tests/loopback_up.py && exec python3 -m pytest tests "$@"' sh "$@"
