"""The spec's own compliance suite, ``@ipfs-shipyard/pinning-service-compliance``
1.8.1 (installed by tests/run.sh), run against a live console with a
token: every one of its checks must pass.

The suite downloads the spec when it runs, to check the shape of each
answer; here it gets tests/psa/pinning-service-schemas.yaml, the shapes of
the spec's answers, through tests/psa/offline-spec.cjs,
which also gives the node the content of the CIDs the suite pins (a client
has what it pins), since some checks look for them among the pinned.
"""

import json
import os
import re
import shutil
import subprocess

import console.store
import console.tokens

VERSION = "1.8.1"
HERE = os.path.dirname(os.path.abspath(__file__))


def suite_folder():
    """Where tests/run.sh installed the suite (IPFSMASTER_PSA_COMPLIANCE, else its place in the cache)."""
    if os.environ.get("IPFSMASTER_PSA_COMPLIANCE"):
        return os.environ["IPFSMASTER_PSA_COMPLIANCE"]
    cache = os.environ.get("IPFSMASTER_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ipfsmaster-tests")
    return os.path.join(cache, "psa-compliance-" + VERSION)


def test_the_compliance_suite_passes_every_check(live_server, ipfs_node):
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is missing: sh tests/run.sh installs it (Debian's nodejs)"
    package = os.path.join(suite_folder(), "node_modules", "@ipfs-shipyard", "pinning-service-compliance")
    entry = os.path.join(package, "dist", "src", "index.js")
    assert os.path.exists(entry), "the compliance suite is not installed in %s: sh tests/run.sh installs it" % package
    conn = console.store.connect(live_server.db_path)
    token = console.tokens.add_token(conn, "compliance")
    conn.close()
    results = os.path.join(package, "dist", "docs", "127.0.0.1.json")
    report = os.path.join(package, "dist", "docs", "127.0.0.1.md")
    for path in (results, report):
        if os.path.exists(path):
            os.remove(path)
    run = subprocess.run([node, "--require", os.path.join(HERE, "psa", "offline-spec.cjs"), entry,
                          "-s", live_server.url + "/psa", token],
                         cwd=package, env=dict(os.environ, IPFSMASTER_COMPLIANCE_NODE_API=ipfs_node.api_url),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         timeout=600)
    output = run.stdout.decode("utf-8", "replace")
    assert os.path.exists(results), "the suite wrote no results (exit %d):\n%s" % (run.returncode, output[-6000:])
    with open(results, encoding="utf-8") as f:
        summary = json.load(f)
    with open(report, encoding="utf-8") as f:
        markdown = f.read()
    expectations = [(int(a), int(b)) for a, b in re.findall(r"### Expectations \((\d+)/(\d+) successful\)", markdown)]
    failures = "\n".join(line for line in markdown.splitlines() if "\u274c" in line)
    print("compliance suite %s: %d of %d checks passed, %d of %d expectations"
          % (VERSION, summary["passed"], summary["total"], sum(a for a, _ in expectations),
             sum(b for _, b in expectations)))
    assert summary == {"total": 9, "passed": 9, "failed": 0, "success": True}, (
        "%s\n%s\n%s" % (json.dumps(summary), failures[-6000:], output[-3000:]))
    assert len(expectations) > 40 and all(a == b for a, b in expectations) and failures == ""
