#!/bin/sh
# Install everything the tests need, then run all of them.
#   - pytest, selenium and prometheus-client (tests/requirements.txt), in a virtual environment
#     made once per Python version under $IPFSMASTER_TEST_CACHE (default
#     ~/.cache/ipfsmaster-tests/venv-VERSION) and made again when
#     tests/requirements.txt changes: nothing is installed into python3 itself
#     (which a distribution's python3 refuses anyway, PEP 668)
#   - the IPFS test node: Kubo v0.43.1, built once with Go (tests/get_kubo.sh),
#     or $IPFS_BIN
#   - IPFS Cluster v1.0.8, built once with Go (tests/get_cluster.sh), or
#     $IPFS_CLUSTER_BIN
#   - for each other CPython from 3.9 up, a pytest that runs on it
#     (tests/other_pythons.sh)
#   - Chromium, its driver and a CJK font from the distribution, for the
#     browser tests
#   - Prometheus from the distribution, which scrapes the console's /metrics
#     in the tests
#   - the pinning service API's compliance suite from npm (node and npm from
#     the distribution), under $IPFSMASTER_TEST_CACHE
# Usage: sh tests/run.sh [pytest arguments]
set -eu
cd "$(dirname "$0")/.."

# Installs the distribution's packages named (root or sudo).
apt_install() {
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
        || [ ! -d /usr/share/fonts/truetype/wqy ]; then
    apt_install chromium chromium-driver fonts-wqy-zenhei
fi
if ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
    apt_install --no-install-recommends prometheus
fi

# The test packages, in a virtual environment of python3's kept in the cache.
# It is kept while it still runs and was made from this tests/requirements.txt
# (its SHA-256 is written into it last, once everything is installed).
CACHE="${IPFSMASTER_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipfsmaster-tests}"
VENV="$CACHE/venv-$(python3 -c 'import platform; print(platform.python_version())')"
REQUIREMENTS_SHA256=$(python3 -c 'import hashlib, sys
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' tests/requirements.txt)
if [ "$(cat "$VENV/requirements.sha256" 2>/dev/null)" = "$REQUIREMENTS_SHA256" ] \
        && "$VENV/bin/python" -c '' 2>/dev/null; then
    echo "Test packages: reusing the virtual environment $VENV"
else
    echo "Test packages: making the virtual environment $VENV"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    if ! python3 -m venv "$VENV"; then
        # Debian and Ubuntu ship ensurepip, which venv needs, apart: python3-venv.
        if python3 -c 'import ensurepip' 2>/dev/null; then exit 1; fi
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
    echo "$REQUIREMENTS_SHA256" > "$VENV/requirements.sha256"
fi
PYTHON="$VENV/bin/python"

# The pinning service API's compliance suite (npm), once per version, into
# the cache; its install scripts are skipped (the kubo package's would
# download a binary: the suite does not use it). It runs with no network.
PSA_COMPLIANCE_VERSION=1.8.1
IPFSMASTER_PSA_COMPLIANCE="$CACHE/psa-compliance-$PSA_COMPLIANCE_VERSION"
export IPFSMASTER_PSA_COMPLIANCE
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
if [ -f "$IPFSMASTER_PSA_COMPLIANCE/installed" ]; then
    echo "Compliance suite: reusing $IPFSMASTER_PSA_COMPLIANCE"
else
    echo "Compliance suite: installing @ipfs-shipyard/pinning-service-compliance $PSA_COMPLIANCE_VERSION"
    rm -rf "$IPFSMASTER_PSA_COMPLIANCE"
    mkdir -p "$IPFSMASTER_PSA_COMPLIANCE"
    (cd "$IPFSMASTER_PSA_COMPLIANCE" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
        "@ipfs-shipyard/pinning-service-compliance@$PSA_COMPLIANCE_VERSION" >/dev/null)
    touch "$IPFSMASTER_PSA_COMPLIANCE/installed"
fi

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
exec $ISOLATE sh -c 'python=$1; shift
"$python" tests/loopback_up.py && exec "$python" -m pytest tests "$@"' sh "$PYTHON" "$@"
