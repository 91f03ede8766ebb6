"""The console's own files (``schema.sql``, ``static/``, the entry points),
read from the checkout or from inside the single-file zipapp, and the
console's version.
"""

import functools
import os
import subprocess
import zipfile

__version__ = "1.0"

# The top of the checkout, or, run as a zipapp (python3 ipfsmaster.pyz), the
# archive itself: the schema, static/ and the worker are then read from inside it.
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHIVE = HERE if os.path.isfile(HERE) else None
# The files of the checkout that make up the console (and the zipapp).
SHIPPED = [":(glob)*.py", "console", "schema.sql", "static"]


def worker_command():
    """(the script arguments that start a worker, the folder to start it in)."""
    if ARCHIVE:
        return [ARCHIVE, "worker"], os.path.dirname(ARCHIVE)
    return [os.path.join(HERE, "worker.py")], HERE


def read_shipped_file(folder, name):
    """The bytes of ``name`` inside ``folder`` ('' for the top) of the console's
    own files, from the checkout or from inside the zipapp; None when there is
    no such file or the name leads out of ``folder``."""
    if ARCHIVE:
        # Only the archive's members exist here: no symlinks, no folders, no "..".
        with zipfile.ZipFile(ARCHIVE) as archive:
            try:
                return archive.read("/".join(part for part in (folder, name) if part))
            except KeyError:
                return None
    root = os.path.realpath(os.path.join(HERE, folder))
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def source_version(folder):
    """__version__, plus the git commit when ``folder`` is the top of a git
    checkout (and ``.dirty`` when the console's files differ from it)."""
    def git(*args):
        return subprocess.run(["git", "--no-optional-locks", "-C", folder] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True,
                              universal_newlines=True).stdout
    try:
        top, commit = git("rev-parse", "--show-toplevel", "--short=12", "HEAD").split()
        if os.path.realpath(top) != os.path.realpath(folder):
            return __version__
        dirty = git("status", "--porcelain", "--", *SHIPPED).strip()
    except (OSError, ValueError, subprocess.CalledProcessError):
        return __version__  # no git, or not a checkout of its own
    return "%s+g%s%s" % (__version__, commit, ".dirty" if dirty else "")


@functools.lru_cache(maxsize=None)
def version():
    """This console's version: the one the zipapp recorded, else the checkout's."""
    recorded = read_shipped_file("", "VERSION")
    if recorded is not None:
        return recorded.decode("utf-8").strip()
    return source_version(HERE)
