"""The command line's arguments: every command, its flags and its help."""

import argparse
import os
import re

from console import registry, shipped
from console.store import ACTIVE_STATUSES, FINAL_STATUSES


def add_db_flag(parser):
    parser.add_argument("--db", help="SQLite database file (env IPFSMASTER_DB; default ipfsmaster.db)")


class PrintVersion(argparse.Action):
    """--version: asks git only when given (argparse's own action wants the text up front)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print("IPFSMaster", shipped.version())
        parser.exit()


def build_parser():
    parser = argparse.ArgumentParser(
        prog=os.path.basename(shipped.ARCHIVE) if shipped.ARCHIVE else "ipfsmaster.py",
        description="IPFSMaster: a web console for an IPFS (Kubo) node.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=PrintVersion)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve_parser = commands.add_parser("serve", help="run the web console (the default)",
                                       description="Run the web console.")
    add_serve_flags(serve_parser)
    serve_options = serve_parser.format_help().split("\n\n", 2)[-1]
    parser.epilog = ("Without a command, runs serve, which takes these options:\n\n" + serve_options
                     + "\nEach command has its own --help.")

    for name, text in (("sync", "start a pin sync"),
                       ("recover", "ask the IPFS Cluster to try again the pins a peer failed")):
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ", in the background.")
        add_task_flags(sub)
        add_cluster_flags(sub)

    peers = commands.add_parser("peers", help="list the IPFS Cluster's peers",
                                description="List the IPFS Cluster's peers and their state, as the cluster says now.")
    add_cluster_flags(peers)
    peers.add_argument("--json", action="store_true", help="print JSON instead of a table")

    pin = commands.add_parser("pin", help="pin or unpin CIDs", description="Pin or unpin CIDs in the background.")
    pin_commands = pin.add_subparsers(dest="pin_command", metavar="ACTION")
    pin_commands.required = True
    pin_add = pin_commands.add_parser("add", help="pin CIDs", description=(
        "Pin CIDs (a pin_add task): given as arguments, or one a line in a file (- for standard input),"
        " optionally followed by whitespace and a name. Lines that are not CIDs are counted and skipped."))
    pin_add.add_argument("cids", nargs="*", metavar="CID", help="CIDs to pin")
    pin_add.add_argument("-f", "--file", metavar="FILE", help="a list of CIDs, one a line")
    pin_add.add_argument("--name", help="the name of every CID whose line has none")
    pin_add.add_argument("--timeout", type=int, metavar="SECONDS", help="how long one CID may take (default 600)")
    for bound in ("min", "max"):
        pin_add.add_argument("--replication-" + bound, type=int, metavar="N",
                             help="through an IPFS Cluster: the %s peers to pin on (-1: every peer)"
                                  % {"min": "fewest", "max": "most"}[bound])
    add_task_flags(pin_add)
    add_cluster_flags(pin_add)
    pin_rm = pin_commands.add_parser("rm", help="unpin CIDs", description="Unpin CIDs (a pin_remove task).")
    pin_rm.add_argument("cids", nargs="+", metavar="CID", help="CIDs to unpin")
    add_task_flags(pin_rm)
    add_cluster_flags(pin_rm)

    gc = commands.add_parser("gc", help="collect the node's garbage",
                             description="Run the node's garbage collection (a repo_gc task); it cannot run"
                                         " while a pin sync does, nor the other way round.")
    add_task_flags(gc)

    node = commands.add_parser("node", help="show the node's overview",
                               description="Show the node's identity, repository, peers and gateway.")
    add_db_flag(node)
    add_node_flags(node)
    node.add_argument("--json", action="store_true", help="print JSON")

    tasks = commands.add_parser("tasks", help="list tasks, newest first", description="List tasks, newest first.")
    add_db_flag(tasks)
    tasks.add_argument("--status", choices=ACTIVE_STATUSES + FINAL_STATUSES, help="only tasks with this status")
    tasks.add_argument("--type", dest="task_type", choices=sorted(registry.TASK_TYPES), metavar="TYPE",
                       help="only tasks of this type: %s" % ", ".join(sorted(registry.TASK_TYPES)))
    tasks.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    tasks.add_argument("--json", action="store_true", help="print JSON instead of a table")

    for name, text in (("show", "show one task"), ("cancel", "cancel a task"), ("retry", "retry a failed or cancelled task")):
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_db_flag(sub)
        sub.add_argument("id", type=int, help="the task id")
        if name == "show":
            sub.add_argument("--json", action="store_true", help="print JSON")
        if name == "retry":
            sub.add_argument("--ipfs-api", help="the node's RPC API to use instead of the one the task used")

    cleanup = commands.add_parser("cleanup", help="delete old finished tasks",
                                  description="Delete completed, failed and cancelled tasks older than N days,"
                                              " with their logs. Pending and running tasks are never touched.")
    add_db_flag(cleanup)
    cleanup.add_argument("--days", type=whole_number, help="age in days (env IPFSMASTER_RETENTION_DAYS; default 30)")

    reap = commands.add_parser("reap", help="mark tasks whose worker is gone as failed",
                               description="Mark running tasks whose worker died, and pending tasks whose"
                                           " worker never started, as failed.")
    add_db_flag(reap)
    reap.add_argument("--stale-seconds", type=int, help="heartbeat age that counts as dead (default 30)")

    bundle = commands.add_parser("bundle", help="write the whole console into one runnable file",
                                 description="Write the console (both programs, the schema and static/) into"
                                             " one zipapp that runs every command, copied anywhere alone:"
                                             " python3 ipfsmaster.pyz [COMMAND]. The same sources always give"
                                             " the same bytes.")
    bundle.add_argument("-o", "--output", default="ipfsmaster.pyz", help="the file to write (default ipfsmaster.pyz)")
    return parser


def add_cluster_flags(parser):
    parser.add_argument("--cluster-api", metavar="URL",
                        help="an IPFS Cluster's REST API (port 9094): pins are then the cluster's (env"
                             " IPFSMASTER_CLUSTER_API)")
    parser.add_argument("--cluster-auth-file", metavar="PATH",
                        help="credentials for the cluster's REST API: basic:USER:PASSWORD or bearer:TOKEN"
                             " (env IPFSMASTER_CLUSTER_AUTH)")


def whole_number(text):
    """argparse type: a whole number, 0 or more."""
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise argparse.ArgumentTypeError("%r is not a whole number of 0 or more" % text)
    return int(text)


def add_node_flags(parser):
    parser.add_argument("--ipfs-api", help="the node's RPC API (env IPFSMASTER_IPFS_API; default http://127.0.0.1:5001)")
    parser.add_argument("--ipfs-auth-file", metavar="PATH", help="credentials for the RPC API (env IPFSMASTER_IPFS_AUTH)")


def add_task_flags(parser):
    """The flags of a command that starts a task."""
    add_db_flag(parser)
    add_node_flags(parser)
    parser.add_argument("--wait", action="store_true", help="draw a progress bar until it ends; exit 1 if it fails")
    parser.add_argument("--json", action="store_true", help="print the task as JSON (its end with --wait)")


def add_serve_flags(parser):
    parser.add_argument("--host", help="address to listen on (env IPFSMASTER_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (env IPFSMASTER_PORT; default 7789)")
    add_db_flag(parser)
    parser.add_argument("--ipfs-api", help="the node's RPC API (env IPFSMASTER_IPFS_API;"
                                           " default http://127.0.0.1:5001)")
    parser.add_argument("--stale-seconds", type=int,
                        help="a running task silent this long is failed (env IPFSMASTER_STALE_SECONDS; default 30)")
    parser.add_argument("--retention-days", type=int,
                        help="finished tasks are deleted after this many days (env IPFSMASTER_RETENTION_DAYS;"
                             " default 30)")
    parser.add_argument("--password-file", metavar="PATH",
                        help="require this password (the file's first line) to use the console"
                             " (env IPFSMASTER_PASSWORD); needed to listen beyond loopback")
    parser.add_argument("--ipfs-auth-file", metavar="PATH",
                        help="credentials for the node's RPC API, as in Kubo's API.Authorizations:"
                             " basic:USER:PASSWORD or bearer:TOKEN (env IPFSMASTER_IPFS_AUTH)")
    add_cluster_flags(parser)
    parser.add_argument("--trust-proxy", action="store_true", default=None,
                        help="count failed logins by the address a reverse proxy puts in X-Forwarded-For"
                             " (env IPFSMASTER_TRUST_PROXY=1); only behind a proxy that sets it")
    parser.add_argument("--max-upload-bytes", type=int,
                        help="largest file accepted by /files/upload (env IPFSMASTER_MAX_UPLOAD_BYTES; default 4 GiB)")
    parser.add_argument("--gateway", metavar="URL",
                        help="the gateway that pin links open, as http://host:port (env IPFSMASTER_GATEWAY;"
                             " default the node's own Addresses.Gateway)")
