"""Promises about the project itself: standard library only, one test command."""

import ast
import os
import sys

import ipfsmaster

RUNTIME = ["ipfsmaster.py", "worker.py", "bundle.py", "tasks_pins.py"]


def imported_modules(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_it_runs_on_the_standard_library_alone():
    own = {"ipfsmaster", "worker", "bundle", "tasks_pins"}
    for name in RUNTIME:
        modules = set(imported_modules(os.path.join(ipfsmaster.HERE, name))) - own
        outside = sorted(m for m in modules if m not in sys.stdlib_module_names)
        assert outside == [], name
        removed = {"cgi", "cgitb", "imghdr", "telnetlib", "asynchat", "asyncore", "distutils", "smtpd", "pipes"}
        assert not modules & removed, name


def test_ci_runs_the_readmes_test_command():
    readme = open(os.path.join(ipfsmaster.HERE, "README.md"), encoding="utf-8").read()
    ci = open(os.path.join(ipfsmaster.HERE, ".ci", "run"), encoding="utf-8").read()
    assert "\n    sh tests/run.sh\n" in readme
    assert ci.rstrip().endswith("\nsh tests/run.sh")
