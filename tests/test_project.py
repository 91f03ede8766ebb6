"""Promises about the project itself: standard library only, Python 3.9 and
newer, one test command, and a shape a newcomer can find their way in:
imports that go one way, small modules, one writer of the catalogue."""

import ast
import glob
import importlib.util
import os
import re
import sys
import sysconfig

import pytest

import console.shipped

ROOT = console.shipped.HERE
# Every module the console runs: the two entry points and the package.
RUNTIME = sorted([name for name in os.listdir(ROOT) if name.endswith(".py")]
                 + [os.path.relpath(path, ROOT) for path in glob.glob(os.path.join(ROOT, "console", "**", "*.py"),
                                                                      recursive=True)])
TESTS = sorted(os.path.join("tests", name) for name in os.listdir(os.path.join(console.shipped.HERE, "tests"))
               if name.endswith(".py"))


def imported_modules(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def in_standard_library(module):
    """Whether ``module`` comes with Python (3.9 has no sys.stdlib_module_names)."""
    if hasattr(sys, "stdlib_module_names"):
        return module in sys.stdlib_module_names
    if module in sys.builtin_module_names:
        return True
    spec = importlib.util.find_spec(module)
    folders = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib")}
    return bool(spec and spec.origin) and "-packages" not in spec.origin and any(
        spec.origin.startswith(folder + os.sep) for folder in folders)


def test_it_runs_on_the_standard_library_alone():
    own = {"ipfsmaster", "worker", "console"}
    for name in RUNTIME:
        modules = set(imported_modules(os.path.join(console.shipped.HERE, name))) - own
        outside = sorted(m for m in modules if not in_standard_library(m))
        assert outside == [], name
        removed = {"cgi", "cgitb", "imghdr", "telnetlib", "asynchat", "asyncore", "distutils", "smtpd", "pipes"}
        assert not modules & removed, name


def test_ci_runs_the_readmes_test_command():
    readme = open(os.path.join(console.shipped.HERE, "README.md"), encoding="utf-8").read()
    ci = open(os.path.join(console.shipped.HERE, ".ci", "run"), encoding="utf-8").read()
    assert "\n    sh tests/run.sh\n" in readme
    assert ci.rstrip().endswith("\nsh tests/run.sh")


# Names the standard library gained after 3.9, which code for 3.9 must not use.
NEWER_MODULES = {"tomllib", "wsgiref.types"}
NEWER_ATTRIBUTES = {
    ("sys", "stdlib_module_names"), ("sys", "orig_argv"), ("sys", "exception"), ("sys", "monitoring"),
    ("itertools", "pairwise"), ("itertools", "batched"), ("contextlib", "aclosing"), ("contextlib", "chdir"),
    ("datetime", "UTC"), ("enum", "StrEnum"), ("enum", "verify"), ("hashlib", "file_digest"),
    ("http", "HTTPMethod"), ("logging", "getLevelNamesMapping"), ("math", "cbrt"), ("math", "exp2"),
    ("math", "sumprod"), ("operator", "call"), ("re", "NOFLAG"), ("os", "eventfd"), ("os", "splice"),
    ("os", "process_cpu_count"), ("inspect", "get_annotations"), ("queue", "ShutDown"), ("sqlite3", "Blob"),
    ("threading", "gettrace"), ("threading", "getprofile"), ("typing", "Self"), ("typing", "TypeAlias"),
    ("asyncio", "TaskGroup"), ("asyncio", "timeout"), ("time", "CLOCK_TAI"),
}
# Methods gained after 3.9, whatever they are called on.
NEWER_METHODS = {"bit_count", "is_integer", "blobopen", "serialize", "deserialize", "setlimit", "getlimit",
                 "isjunction", "splitroot", "walk_up", "shutdown_default_executor"}
NEWER_BUILTINS = {"aiter", "anext", "EncodingWarning", "ExceptionGroup", "BaseExceptionGroup"}
# Keyword arguments gained after 3.9: function name -> keywords.
NEWER_KEYWORDS = {"zip": {"strict"}, "Popen": {"pipesize", "process_group"}, "run": {"process_group"},
                  "rmtree": {"onexc"}, "dataclass": {"slots", "kw_only", "match_args"}, "glob": {"root_dir"},
                  "bisect": {"key"}, "bisect_left": {"key"}, "bisect_right": {"key"}, "insort": {"key"},
                  "connect": {"autocommit"}}


def annotations(tree):
    """Every annotation in a module: they are evaluated when it runs (unless postponed)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign):
            yield node.annotation
        elif isinstance(node, ast.arg) and node.annotation:
            yield node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            yield node.returns


def newer_than_3_9(path):
    """What in a file needs a Python newer than 3.9, as (line, what) pairs. A
    name checked for with hasattr() first is fine."""
    source = open(path, encoding="utf-8").read()
    try:
        tree = ast.parse(source, path, feature_version=(3, 9))
    except SyntaxError as exc:
        return [(exc.lineno, "syntax: %s" % exc.msg)]
    found = []
    if not any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names) for node in tree.body):
        found += [(node.lineno, "X | Y in an annotation") for annotation in annotations(tree)
                  for node in ast.walk(annotation) if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)]
    checked = {(node.args[0].id, node.args[1].value) for node in ast.walk(tree)
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr" and len(node.args) == 2
               and isinstance(node.args[0], ast.Name) and isinstance(node.args[1], ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name in NEWER_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, "%s.%s" % (node.module, alias.name)) for alias in node.names
                      if node.module in NEWER_MODULES or (node.module, alias.name) in NEWER_ATTRIBUTES]
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in NEWER_ATTRIBUTES - checked:
                found.append((node.lineno, "%s.%s" % (node.value.id, node.attr)))
            elif node.attr in NEWER_METHODS:
                found.append((node.lineno, "." + node.attr))
        elif isinstance(node, ast.Name) and node.id in NEWER_BUILTINS:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Call):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            found += [(node.lineno, "%s(%s=)" % (function, keyword.arg)) for keyword in node.keywords
                      if keyword.arg in NEWER_KEYWORDS.get(function, ())]
    return found


@pytest.mark.parametrize("name", RUNTIME + TESTS)
def test_the_code_needs_nothing_newer_than_python_3_9(name):
    assert newer_than_3_9(os.path.join(console.shipped.HERE, name)) == []


@pytest.mark.parametrize("code,what", [
    ("match x:\n    case 1: pass\n", "syntax"),
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", "syntax"),
    ("def f(x: int | None): pass\n", "X | Y"),
    ("import sys\nsys.stdlib_module_names\n", "sys.stdlib_module_names"),
    ("import sys\nsys.orig_argv if hasattr(sys, 'stdlib_module_names') else 1\n", "sys.orig_argv"),
    ("from itertools import pairwise\n", "itertools.pairwise"),
    ("import tomllib\n", "tomllib"),
    ("n.bit_count()\n", ".bit_count"),
    ("list(zip(a, b, strict=True))\n", "zip(strict=)"),
    ("anext(it)\n", "anext"),
])
def test_the_python_3_9_check_catches_what_is_newer(tmp_path, code, what):
    path = tmp_path / "newer.py"
    path.write_text(code)
    assert any(found.startswith(what) for _, found in newer_than_3_9(str(path)))


def test_every_fixture_that_starts_a_node_marks_its_tests():
    """`-m "not node"` (tests/other_pythons.sh) must leave out every test that needs the node."""
    import support
    path = os.path.join(console.shipped.HERE, "tests", "conftest.py")
    source = open(path, encoding="utf-8").read()
    starting = {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
                and any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)
                and any(name + "(" in ast.get_source_segment(source, node) for name in ("IPFSNode", "Cluster"))}
    assert starting and starting <= support.NODE_FIXTURES


def module_name(relative):
    """'console/web/app.py' -> 'console.web.app'; 'console/tasks/__init__.py' -> 'console.tasks'."""
    name = relative[:-3].replace(os.sep, ".")
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def import_graph():
    """{module: the project's modules it imports, anywhere in its code (a lazy import too)}."""
    modules = {module_name(path): path for path in RUNTIME}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                targets = [node.module] + ["%s.%s" % (node.module, alias.name) for alias in node.names]
            else:
                continue
            found.update(target for target in targets if target in modules)
        graph[name] = found - {name}
    return graph


def find_cycle(graph):
    """A list of modules that import each other in a circle, or None."""
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[name] = "done"
        stack.pop()
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


# Imports go one way: entry points -> web and command line -> tasks -> runner
# -> RPC clients, catalogue, store -> settings. A module may import its own
# layer or those below it, never one above.
LAYERS = [
    ("ipfsmaster", "worker"),
    ("console.cli",),
    ("console.web",),
    ("console.pin_input", "console.metrics", "console.exports", "console.history"),
    ("console.schedules", "console.alerts", "console.webhook", "console.guardrails"),
    ("console.tasks",),
    ("console.runner", "console.control"),
    ("console.psa", "console.tokens"),
    ("console.processes", "console.node", "console.catalogue", "console.bundle"),
    ("console.store", "console.rpc"),
    ("console.errors", "console.framing", "console.cids", "console.car"),
    ("console.settings", "console.shipped", "console.messages", "console.registry", "console"),
]


def layer_of(module):
    for depth, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes if prefix != "console"):
            return depth
    return len(LAYERS) - 1 if module == "console" else None


def test_the_imports_form_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and "console.web.app" in graph["console.web.server"]
    assert find_cycle(graph) is None


def test_the_cycle_check_finds_a_cycle_even_through_a_lazy_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_import_goes_down_the_layers():
    graph = import_graph()
    assert all(layer_of(name) is not None for name in graph), [name for name in graph if layer_of(name) is None]
    upwards = sorted((name, target) for name, targets in graph.items() for target in targets
                     if layer_of(target) < layer_of(name))
    assert upwards == []


def test_reading_the_registry_or_serving_pages_imports_no_task():
    graph = import_graph()
    reached, todo = set(), ["console.registry", "console.web.app", "console.cli.commands"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert sorted(name for name in reached if name.startswith("console.tasks")) == []


def test_no_module_is_past_800_lines():
    lengths = {name: sum(1 for _ in open(os.path.join(ROOT, name), encoding="utf-8")) for name in RUNTIME}
    assert sorted(name for name, lines in lengths.items() if lines > 800) == []
    assert max(lengths.values()) <= 800 and lengths["ipfsmaster.py"] <= 150 and lengths["worker.py"] <= 150


CATALOGUE_TABLES = ("pins", "pin_peers", "pin_replication", "cluster_peers", "last_listing",
                    "pin_line_digests")
CATALOGUE_WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+(?:%s)\b"
                             % "|".join(CATALOGUE_TABLES), re.IGNORECASE)


def test_the_catalogue_is_written_from_one_module_only():
    writers = {name for name in RUNTIME if CATALOGUE_WRITE.search(open(os.path.join(ROOT, name), encoding="utf-8").read())}
    assert writers == {os.path.join("console", "catalogue.py")}
    assert CATALOGUE_WRITE.search('conn.execute("DELETE FROM pins WHERE cid = ?")')
    assert not CATALOGUE_WRITE.search('conn.execute("UPDATE pin_stats SET count = 0")')
