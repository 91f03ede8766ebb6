#!/bin/sh
# Run the tests on every CPython from 3.9 up on this machine: pyenv's versions
# and the python3 / python3.X commands on PATH, once per distinct version.
#
# Each version runs the in-process tests (not tests/e2e, not the tests that
# start the IPFS node: `-m "not node"`), then the real-process sync marked
# every_python. Each gets its own pinned pytest (one that still runs on 3.9),
# installed with `pip install --target` into a folder per version under
# $IPFSMASTER_TEST_CACHE (default ~/.cache/ipfsmaster-tests): nothing is
# installed into any Python itself.
#
# The real-process sync needs the IPFS test node: $IPFS_BIN, else whatever
# tests/get_kubo.sh finds or builds. IPFSMASTER_TESTS_WITHOUT_NODE=1 leaves
# that run out (on a machine without it).
#
# Usage: sh tests/other_pythons.sh [pytest arguments]
# Exits 1 if any run fails or no Python is found.
set -u
cd "$(dirname "$0")/.."

# pytest, one that still runs on 3.9, and the test-only packages the in-process tests import.
PYTEST_PIN="pytest==8.4.2 prometheus-client==0.21.1"
export PIP_ROOT_USER_ACTION=ignore   # the install goes to a folder of its own
CACHE="${IPFSMASTER_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ipfsmaster-tests}"
# Prints "VERSION EXECUTABLE" for a CPython 3.9 or newer (the executable
# itself, not a shim such as pyenv's), nothing for anything else.
PROBE='import platform, sys
if platform.python_implementation() == "CPython" and sys.version_info >= (3, 9):
    print(platform.python_version(), sys.executable)'

candidates() {
    for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*; do
        [ -x "$dir/bin/python3" ] && echo "$dir/bin/python3"
    done
    old_ifs=$IFS
    IFS=:
    for dir in $PATH; do
        for exe in "$dir"/python3 "$dir"/python3.[0-9] "$dir"/python3.[0-9][0-9]; do
            [ -x "$exe" ] && [ ! -d "$exe" ] && echo "$exe"
        done
    done
    IFS=$old_ifs
}

# One interpreter per version, as "VERSION EXECUTABLE" lines, oldest first.
found=$(
    candidates | while read -r exe; do
        "$exe" -c "$PROBE" 2>/dev/null </dev/null
    done | sort -t. -k1,1n -k2,2n -k3,3n | awk '!seen[$1]++'
)
if [ -z "$found" ]; then
    echo "No CPython 3.9 or newer found." >&2
    exit 1
fi
count=$(echo "$found" | wc -l)
echo "Found $count CPython version(s) from 3.9 up:"
echo "$found" | sed 's/^/  /'
[ "$count" -eq 1 ] && echo "Only one Python version found: the suite runs on that one alone."

# A pip that can install for VERSION: its own, else any other found, told
# which version to install for (the pinned packages are pure Python).
install_pytest() {
    version=$1 exe=$2 target=$3
    short=$(echo "$version" | cut -d. -f1,2)
    if "$exe" -m pip --version >/dev/null 2>&1 </dev/null; then
        "$exe" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
            --target "$target" $PYTEST_PIN </dev/null && return 0
    fi
    echo "$found" | {
        while read -r _ other; do
            if "$other" -m pip --version >/dev/null 2>&1 </dev/null; then
                "$other" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
                    --target "$target" --python-version "$short" --implementation cp --only-binary=:all: \
                    $PYTEST_PIN </dev/null && exit 0
            fi
        done
        exit 1
    }
}

failed=""
summary=""
node=yes
if [ "${IPFSMASTER_TESTS_WITHOUT_NODE:-0}" = 1 ]; then
    node=no
elif [ -z "${IPFS_BIN:-}" ]; then
    if IPFS_BIN=$(sh tests/get_kubo.sh); then
        export IPFS_BIN
    else
        echo "The IPFS test node is missing (tests/get_kubo.sh failed): the real-process sync runs will fail." >&2
    fi
fi
run() {
    label=$1
    shift
    echo
    echo "=== $label"
    if PYTHONPATH="$target" PYTHONNOUSERSITE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 \
            "$exe" -m pytest -p no:cacheprovider "$@" </dev/null; then
        summary="$summary
  passed  $label"
    else
        summary="$summary
  FAILED  $label"
        failed="$failed $label"
    fi
}

while read -r version exe; do
    target="$CACHE/python-$version"
    if [ "$(cat "$target/.installed" 2>/dev/null)" != "$PYTEST_PIN" ]; then
        rm -rf "$target"
        mkdir -p "$target"
        if install_pytest "$version" "$exe" "$target"; then
            echo "$PYTEST_PIN" > "$target/.installed"
        else
            echo "Could not install $PYTEST_PIN for Python $version ($exe)." >&2
            summary="$summary
  FAILED  Python $version ($exe): no $PYTEST_PIN"
            failed="$failed $version"
            continue
        fi
    fi
    run "Python $version ($exe): in-process tests" tests --ignore=tests/e2e -m "not node" -q "$@"
    if [ "$node" = no ]; then
        summary="$summary
  skipped Python $version: the real-process sync (IPFSMASTER_TESTS_WITHOUT_NODE=1)"
    else
        run "Python $version ($exe): the real-process sync" tests --ignore=tests/e2e -m every_python -q "$@"
    fi
done <<EOF
$found
EOF

echo
echo "Summary:$summary"
[ -z "$failed" ]
