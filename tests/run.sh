#!/bin/sh
# Install everything the tests need, then run all of them.
#   - pytest and selenium (tests/requirements.txt)
#   - the IPFS test node: js-ipfs from npm, pinned by tests/ipfsnode/package-lock.json
#   - Chromium and its driver from the distribution, for the browser tests
# Usage: sh tests/run.sh [pytest arguments]
set -eu
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

# The install takes minutes: skip it while node_modules matches the lock file.
# Not `npm ci`: it insists on an optional dependency deep in js-ipfs that only
# exists as a GitHub tarball; `npm install` follows the lock file and leaves it out.
STAMP=tests/ipfsnode/node_modules/.installed-from-lock
if [ ! -x tests/ipfsnode/node_modules/.bin/jsipfs ] || ! cmp -s tests/ipfsnode/package-lock.json "$STAMP"; then
    npm install --prefix tests/ipfsnode --no-save --no-audit --no-fund --loglevel=error
    cp tests/ipfsnode/package-lock.json "$STAMP"
fi

exec python3 -m pytest tests "$@"
