#!/usr/bin/env python3
"""IPFSMaster: a web console for the operator of an IPFS (Kubo) node or an
IPFS Cluster.

It keeps a local catalogue of the node's pins in SQLite and runs long jobs,
above all syncing the pin list, as background tasks: each task is a row in
``background_tasks`` and a detached ``worker.py`` process that records its
progress there, while the browser (or the command line) watches, cancels,
retries and cleans up.

Run the console (standard library only, Python 3.9+):

    python3 ipfsmaster.py [serve] [--host 127.0.0.1] [--port 7789]
                          [--db ipfsmaster.db] [--ipfs-api http://127.0.0.1:5001]

Other commands: ``sync``, ``pin add``, ``pin rm``, ``gc``, ``recover``,
``node``, ``peers``, ``tasks``, ``show``, ``cancel``, ``retry``,
``cleanup``, ``reap``, ``bundle``; ``python3 ipfsmaster.py COMMAND --help``
explains each. ``bundle`` writes the whole console into one zipapp,
``ipfsmaster.pyz``, which runs the same commands.

The code lives in the ``console`` package; the command line is
``console/cli``.
"""

import sys

from console.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
