"""Builds ipfsmaster.pyz: the whole console in one file to copy.

    python3 ipfsmaster.py bundle [-o ipfsmaster.pyz]

The archive is a zipapp (a shebang line, then a zip) holding the two entry
points, the ``console`` package, schema.sql, static/, a VERSION file and a
``__main__.py`` that runs ``ipfsmaster.main()``, or ``worker.main()`` for
``ARCHIVE worker TASK_ID``: the command line the server uses to start a
task's worker.
Nothing in it is compiled; Python never writes bytecode for a zip.

The build is reproducible: entries in name order, each with the same fixed
timestamp and permissions, stored uncompressed (so no zlib version can change
the bytes). The same sources give the same file, byte for byte.
"""

import os
import sys
import zipfile

from console import shipped

SHEBANG = b"#!/usr/bin/env python3\n"
# zip's earliest date; a fixed one keeps two builds identical.
TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--
MAIN = '''\
"""IPFSMaster in one file: python3 ipfsmaster.pyz [COMMAND] (see --help)."""
import sys

if sys.argv[1:2] == ["worker"]:
    import worker
    sys.exit(worker.main(sys.argv[2:]))
import ipfsmaster
sys.exit(ipfsmaster.main())
'''


ENTRY_POINTS = ("ipfsmaster.py", "worker.py")


def sources(folder):
    """(name in the archive, path) of the console's files in a checkout, by name."""
    found = [(name, os.path.join(folder, name)) for name in ENTRY_POINTS + ("schema.sql",)]
    for top in ("console", "static"):
        for parent, folders, files in os.walk(os.path.join(folder, top)):
            folders[:] = [f for f in folders if not f.startswith(".") and f != "__pycache__"]
            for name in files:
                if not name.startswith(".") and not name.endswith((".pyc", ".pyo")):
                    path = os.path.join(parent, name)
                    found.append(("/".join(os.path.relpath(path, folder).split(os.sep)), path))
    return sorted(found)


def entries(folder):
    """Every (name, bytes) the archive holds, by name."""
    files = [(name, read(path)) for name, path in sources(folder)]
    files.append(("VERSION", (shipped.source_version(folder) + "\n").encode("utf-8")))
    files.append(("__main__.py", MAIN.encode("utf-8")))
    return sorted(files)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write_archive(output, files):
    """Write the zipapp: the shebang, then the entries with fixed metadata."""
    with open(output, "wb") as f:
        f.write(SHEBANG)
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            for name, data in files:
                info = zipfile.ZipInfo(name, TIMESTAMP)
                info.create_system = 3  # Unix, wherever it is built, so the mode below counts
                info.external_attr = FILE_MODE << 16
                archive.writestr(info, data)
    os.chmod(output, 0o755)


def main(output):
    if shipped.ARCHIVE:
        print("This is already the bundle: copy %s itself." % shipped.ARCHIVE, file=sys.stderr)
        return 2
    files = entries(shipped.HERE)
    version = dict(files)["VERSION"].decode("utf-8").strip()
    temporary = output + ".partial"
    try:
        write_archive(temporary, files)
        os.replace(temporary, output)
    except OSError as exc:
        print("Cannot write %s: %s" % (output, exc.strerror or exc), file=sys.stderr)
        return 1
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print("Wrote %s (IPFSMaster %s, %d files): copy it anywhere and run python3 %s"
          % (output, version, len(files), os.path.basename(output)))
    return 0
