"""The command line's arguments: every command, its flags and its help.

``parse(argv)`` reads them. Without a command it means ``serve``; the flags
several commands share (``COMMON``) may come before the command as well as
after it, and every number is checked as it is read, so that a mistake is a
usage error (exit code 2) that names the flag as it was typed.
"""

import argparse
import os
import re
import sys

from console import catalogue, exports, registry, shipped
from console.cids import MAX_PIN_TIMEOUT_S
from console.settings import LOWEST
from console.store import ACTIVE_STATUSES, FINAL_STATUSES

# The flags several commands take, and how each is added; each may also come
# before the command's name (``ipfsmaster.py --db X tasks``).
COMMON = {
    "--db": {"metavar": "PATH", "help": "SQLite database file (env IPFSMASTER_DB; default ipfsmaster.db)"},
    "--ipfs-api": {"metavar": "URL",
                   "help": "the node's RPC API (env IPFSMASTER_IPFS_API; default http://127.0.0.1:5001)"},
    "--ipfs-auth-file": {"metavar": "PATH",
                         "help": "credentials for the node's RPC API, as in Kubo's API.Authorizations:"
                                 " basic:USER:PASSWORD or bearer:TOKEN (env IPFSMASTER_IPFS_AUTH)"},
    "--cluster-api": {"metavar": "URL",
                      "help": "an IPFS Cluster's REST API (port 9094): pins are then the cluster's"
                              " (env IPFSMASTER_CLUSTER_API)"},
    "--cluster-auth-file": {"metavar": "PATH",
                            "help": "credentials for the cluster's REST API: basic:USER:PASSWORD or"
                                    " bearer:TOKEN (env IPFSMASTER_CLUSTER_AUTH)"},
    "--json": {"action": "store_true", "help": "print JSON"},
}
# Where a common flag given before the command waits until the command's own
# flags are known (argparse would let the command's defaults overwrite it).
BEFORE = "before_"


class UsageError(SystemExit):
    """A mistake in the command line: exit code 2, with its sentence (which
    has already been printed, after the usage) as the exception's text."""

    def __init__(self, message):
        super().__init__(message)
        self.code = 2


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are UsageError."""

    def error(self, message):
        self.print_usage(sys.stderr)
        sentence = "%s: error: %s" % (self.prog, message)
        print(sentence, file=sys.stderr)
        raise UsageError(sentence)


class WholeNumber(argparse.Action):
    """A flag that takes a whole number from ``low`` to ``high`` (None: no
    limit), checked when it is read."""

    def __init__(self, option_strings, dest, low, high=None, **kwargs):
        self.low, self.high = low, high
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if not re.fullmatch(r"[-+]?[0-9]{1,18}", values.strip()):
            parser.error("%s must be a whole number, not %r" % (option_string, values))
        number = int(values)
        if self.high is not None and not self.low <= number <= self.high:
            parser.error("%s must be from %d to %d, not %d" % (option_string, self.low, self.high, number))
        if number < self.low:
            parser.error("%s must be at least %d, not %d" % (option_string, self.low, number))
        setattr(namespace, self.dest, number)


class PrintVersion(argparse.Action):
    """--version: asks git only when given (argparse's own action wants the text up front)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print("IPFSMaster", shipped.version())
        parser.exit()


def add_common(parser, *flags, **help_texts):
    """Add COMMON flags; ``help_texts`` (``json="..."``) words one for this command."""
    for flag in flags:
        name = flag[2:].replace("-", "_")
        spec = dict(COMMON[flag], **({"help": help_texts[name]} if name in help_texts else {}))
        parser.add_argument(flag, **spec)


def build_parser():
    parser = Parser(
        prog=os.path.basename(shipped.ARCHIVE) if shipped.ARCHIVE else "ipfsmaster.py",
        description="IPFSMaster: a web console for an IPFS (Kubo) node.",
        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--version", action=PrintVersion)
    before = parser.add_argument_group("options of the commands that take them, also before the command")
    for flag, spec in COMMON.items():
        before.add_argument(flag, dest=BEFORE + flag[2:].replace("-", "_"), **spec)
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
        add_common(sub, "--cluster-api", "--cluster-auth-file")

    peers = commands.add_parser("peers", help="list the IPFS Cluster's peers",
                                description="List the IPFS Cluster's peers and their state, as the cluster says now.")
    add_common(peers, "--cluster-api", "--cluster-auth-file")
    add_common(peers, "--json", json="print JSON instead of a table")

    pin = commands.add_parser("pin", help="pin or unpin CIDs", description="Pin or unpin CIDs in the background.")
    pin_commands = pin.add_subparsers(dest="pin_command", metavar="ACTION")
    pin_commands.required = True
    pin_add = pin_commands.add_parser("add", help="pin CIDs", description=(
        "Pin CIDs (a pin_add task): given as arguments, or one a line in a file (- for standard input),"
        " optionally followed by whitespace and a name. Lines that are not CIDs are counted and skipped."))
    pin_add.add_argument("cids", nargs="*", metavar="CID", help="CIDs to pin")
    pin_add.add_argument("-f", "--file", metavar="FILE", help="a list of CIDs, one a line")
    pin_add.add_argument("--name", help="the name of every CID whose line has none")
    pin_add.add_argument("--timeout", action=WholeNumber, low=1, high=MAX_PIN_TIMEOUT_S, metavar="SECONDS",
                         help="how long one CID may take (default 600)")
    for bound in ("min", "max"):
        pin_add.add_argument("--replication-" + bound, type=int, metavar="N",
                             help="through an IPFS Cluster: the %s peers to pin on (-1: every peer)"
                                  % {"min": "fewest", "max": "most"}[bound])
    add_task_flags(pin_add)
    add_common(pin_add, "--cluster-api", "--cluster-auth-file")
    pin_rm = pin_commands.add_parser("rm", help="unpin CIDs", description="Unpin CIDs (a pin_remove task).")
    pin_rm.add_argument("cids", nargs="+", metavar="CID", help="CIDs to unpin")
    add_task_flags(pin_rm)
    add_common(pin_rm, "--cluster-api", "--cluster-auth-file")

    pins = commands.add_parser("pins", help="export the catalogue of pins",
                               description="Read the catalogue of pins (as the last sync and the pin tasks left it).")
    pins_commands = pins.add_subparsers(dest="pins_command", metavar="ACTION")
    pins_commands.required = True
    pins_export = pins_commands.add_parser("export", help="write every pin that matches as CSV or JSON lines",
                                           description=(
        "Write every pin that matches (as the pins page and /api/pins filter them) as CSV (columns cid, type,"
        " name, size, first_seen_at, synced_at) or JSON lines, to standard output or, whole or not at all,"
        " to a file."))
    pins_export.add_argument("--format", dest="export_format", choices=sorted(exports.PIN_FORMATS), default="csv",
                             help="csv (the default) or jsonl")
    pins_export.add_argument("--status", choices=sorted(catalogue.PIN_FILTERS),
                             help="only pins a cluster peer failed, or pinned on fewer peers than wanted")
    pins_export.add_argument("-q", "--search", default="", metavar="TEXT", help="only pins whose CID or name holds TEXT")
    pins_export.add_argument("--sort", choices=sorted(catalogue.PIN_SORTS), default="-synced", metavar="ORDER",
                             help="one of %s (default -synced: the latest first)"
                                  % ", ".join(sorted(catalogue.PIN_SORTS)))
    pins_export.add_argument("-o", "--output", metavar="FILE", help="the file to write (default: standard output)")
    add_common(pins_export, "--db")

    gc = commands.add_parser("gc", help="collect the node's garbage",
                             description="Run the node's garbage collection (a repo_gc task); it cannot run"
                                         " while a pin sync does, nor the other way round.")
    add_task_flags(gc)

    verify = commands.add_parser("verify", help="check every block of the node's repository",
                                 description="Check every block in the node's repository against its hash"
                                             " (a repo_verify task), then name the pins that hold a damaged"
                                             " one. With --wait it exits 5 when it found damage.")
    add_task_flags(verify)

    car = commands.add_parser("car", help="import or export CAR files",
                              description="Import a CAR file into the node, or export a DAG as one.")
    car_commands = car.add_subparsers(dest="car_command", metavar="ACTION")
    car_commands.required = True
    car_import = car_commands.add_parser("import", help="import a CAR file, pinning its roots", description=(
        "Import a CAR file (CARv1 or CARv2) into the node in the background (a car_import task): its blocks"
        " are stored and its roots pinned. A root already pinned keeps its name; the others get --name."))
    car_import.add_argument("file", metavar="FILE", help="the CAR file")
    car_import.add_argument("--name", help="the name of the roots that have none (default: the file's name)")
    add_task_flags(car_import)
    car_export = car_commands.add_parser("export", help="write a DAG the node has to a CAR file", description=(
        "Write the DAG under a CID, as the node has it, to a CAR file (dag/export, offline). The file is"
        " written whole or not at all."))
    car_export.add_argument("cid", metavar="CID", help="the DAG's root")
    car_export.add_argument("-o", "--output", metavar="FILE", help="the file to write (default CID.car; - for"
                                                                   " standard output)")
    add_common(car_export, "--db", "--ipfs-api", "--ipfs-auth-file")

    node = commands.add_parser("node", help="show the node's overview",
                               description="Show the node's identity, repository, peers and gateway.")
    add_common(node, "--db", "--ipfs-api", "--ipfs-auth-file", "--json")

    tasks = commands.add_parser("tasks", help="list tasks, newest first", description="List tasks, newest first.")
    add_common(tasks, "--db")
    tasks.add_argument("--status", choices=ACTIVE_STATUSES + FINAL_STATUSES, help="only tasks with this status")
    tasks.add_argument("--type", dest="task_type", choices=sorted(registry.TASK_TYPES), metavar="TYPE",
                       help="only tasks of this type: %s" % ", ".join(sorted(registry.TASK_TYPES)))
    tasks.add_argument("--limit", action=WholeNumber, low=1, default=50, metavar="N", help="how many (default 50)")
    output = tasks.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true",
                        help="print every task that matches as CSV (the columns of /api/tasks/export; no --limit)")
    add_common(output, "--json", json="print JSON instead of a table")

    for name, text in (("show", "show one task"), ("cancel", "cancel a task"), ("retry", "retry a failed or cancelled task")):
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_common(sub, "--db")
        sub.add_argument("id", type=int, help="the task id")
        if name == "show":
            add_common(sub, "--json")
        if name == "retry":
            add_common(sub, "--ipfs-api", ipfs_api="the node's RPC API to use instead of the one the task used")

    cleanup = commands.add_parser("cleanup", help="delete old finished tasks",
                                  description="Delete completed, failed and cancelled tasks older than N days,"
                                              " with their logs. Pending and running tasks are never touched.")
    add_common(cleanup, "--db")
    cleanup.add_argument("--days", action=WholeNumber, low=LOWEST["retention_days"], metavar="N",
                         help="age in days (env IPFSMASTER_RETENTION_DAYS; default 30)")

    reap = commands.add_parser("reap", help="mark tasks whose worker is gone as failed",
                               description="Mark running tasks whose worker died, and pending tasks whose"
                                           " worker never started, as failed.")
    add_common(reap, "--db")
    reap.add_argument("--stale-seconds", action=WholeNumber, low=LOWEST["stale_seconds"], metavar="SECONDS",
                      help="heartbeat age that counts as dead (default 30)")

    add_unattended_commands(commands)
    token = commands.add_parser("token", help="make, list or revoke the pinning service's access tokens",
                                description="Access tokens of the pinning service API (/psa), one per device or"
                                            " client. A token opens /psa only (and /metrics).")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION")
    token_commands.required = True
    token_add = token_commands.add_parser("add", help="make a token and print it (shown this once)",
                                          description="Make a token named NAME and print it alone on the last line:"
                                                      " it is shown this once, and stored only as its hash.")
    token_add.add_argument("name", metavar="NAME", help="what the token is for: a device or a client (1-64 characters)")
    token_ls = token_commands.add_parser("ls", help="list the tokens (never the tokens themselves)",
                                         description="List the tokens: name, when made, when last used.")
    add_common(token_ls, "--json")
    token_rm = token_commands.add_parser("rm", help="revoke a token", description="Revoke the token named NAME.")
    token_rm.add_argument("name", metavar="NAME", help="the token's name")
    for sub in (token_add, token_ls, token_rm):
        add_common(sub, "--db")

    bundle = commands.add_parser("bundle", help="write the whole console into one runnable file",
                                 description="Write the console (both programs, the schema and static/) into"
                                             " one zipapp that runs every command, copied anywhere alone:"
                                             " python3 ipfsmaster.pyz [COMMAND]. The same sources always give"
                                             " the same bytes.")
    bundle.add_argument("-o", "--output", default="ipfsmaster.pyz", help="the file to write (default ipfsmaster.pyz)")
    return parser


def add_task_flags(parser):
    """The flags of a command that starts a task."""
    add_common(parser, "--db", "--ipfs-api", "--ipfs-auth-file")
    parser.add_argument("--wait", action="store_true", help="draw a progress bar until it ends; exit 1 if it fails")
    add_common(parser, "--json", json="print the task as JSON (its end with --wait)")


# serve's flags that take a value (besides the COMMON ones): what tells a
# value from a command's name in ``ipfsmaster.py --port 7790``.
SERVE_VALUES = ("--host", "--port", "--stale-seconds", "--retention-days", "--password-file",
                "--max-upload-bytes", "--gateway", "--sample-seconds")
SERVE_VALUES += ("--schedule-tick-seconds", "--webhook", "--webhook-secret-file", "--repo-warn-percent",
                 "--repo-alarm-percent")


def add_serve_flags(parser):
    parser.add_argument("--host", help="address to listen on (env IPFSMASTER_HOST; default 127.0.0.1)")
    parser.add_argument("--port", action=WholeNumber, low=0, high=65535,
                        help="port to listen on (env IPFSMASTER_PORT; default 7789)")
    add_common(parser, "--db", "--ipfs-api")
    parser.add_argument("--stale-seconds", action=WholeNumber, low=LOWEST["stale_seconds"], metavar="SECONDS",
                        help="a running task silent this long is failed (env IPFSMASTER_STALE_SECONDS; default 30)")
    parser.add_argument("--retention-days", action=WholeNumber, low=LOWEST["retention_days"], metavar="DAYS",
                        help="finished tasks are deleted after this many days (env IPFSMASTER_RETENTION_DAYS;"
                             " default 30)")
    parser.add_argument("--password-file", metavar="PATH",
                        help="require this password (the file's first line) to use the console"
                             " (env IPFSMASTER_PASSWORD); needed to listen beyond loopback")
    add_common(parser, "--ipfs-auth-file", "--cluster-api", "--cluster-auth-file")
    parser.add_argument("--trust-proxy", action="store_true", default=None,
                        help="count failed logins by the address a reverse proxy puts in X-Forwarded-For"
                             " (env IPFSMASTER_TRUST_PROXY=1); only behind a proxy that sets it")
    parser.add_argument("--max-upload-bytes", action=WholeNumber, low=LOWEST["max_upload_bytes"], metavar="BYTES",
                        help="largest file accepted by /files/upload (env IPFSMASTER_MAX_UPLOAD_BYTES; default 4 GiB)")
    parser.add_argument("--gateway", metavar="URL",
                        help="the gateway that pin links open, as http://host:port (env IPFSMASTER_GATEWAY;"
                             " default the node's own Addresses.Gateway)")
    parser.add_argument("--sample-seconds", action=WholeNumber, low=LOWEST["sample_seconds"], metavar="SECONDS",
                        help="how often the server looks at the node on its own, for /metrics, and records"
                             " a sample of the history (env IPFSMASTER_SAMPLE_SECONDS; default 60)")
    add_unattended_serve_flags(parser)


def add_unattended_serve_flags(parser):
    """serve's flags for running unattended: the schedules' tick, the alerts' webhook, the watermarks."""
    parser.add_argument("--schedule-tick-seconds", action=WholeNumber, low=LOWEST["schedule_tick_seconds"],
                        metavar="SECONDS", help="how often the server looks for schedules that are due and for"
                                                " alerts (env IPFSMASTER_SCHEDULE_TICK_SECONDS; default 15)")
    parser.add_argument("--webhook", dest="webhook_url", metavar="URL",
                        help="POST each alert's opening and closing to this URL as JSON (env IPFSMASTER_WEBHOOK_URL)")
    parser.add_argument("--webhook-secret-file", metavar="PATH",
                        help="sign the webhook's posts with this secret (the file's first line), in the header"
                             " X-IPFSMaster-Signature (env IPFSMASTER_WEBHOOK_SECRET)")
    for level, default in (("warn", 80), ("alarm", 95)):
        parser.add_argument("--repo-%s-percent" % level, action=WholeNumber, low=1, high=100, metavar="PERCENT",
                            help="the repository's %s, in percent of its StorageMax (env IPFSMASTER_REPO_%s_PERCENT;"
                                 " default %d)" % ({"warn": "warning", "alarm": "alarm"}[level], level.upper(),
                                                   default))


def add_unattended_commands(commands):
    """schedule add/ls/rm/run/disable/enable, and alerts."""
    schedule = commands.add_parser("schedule", help="run tasks on a schedule",
                                   description="Recurring tasks the server starts on its own (while it runs).")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="add a schedule; prints its id", description=(
        "Add a schedule: TYPE every DURATION (90s, 15m, 6h, 1d), daily at HH:MM or weekly on DAY at HH:MM"
        " (the server's local time). A run that would collide with a running task is skipped; one missed"
        " while the server was down runs once when it starts."))
    add.add_argument("task_type", metavar="TYPE", help="pin_sync, repo_gc, pin_recover, repo_verify, task_cleanup"
                                                       " or name_follow")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="DURATION", help="every 90s, 15m, 6h, 1d, ...")
    when.add_argument("--daily", metavar="HH:MM", help="every day at this local time")
    when.add_argument("--weekly", nargs=2, metavar=("DAY", "HH:MM"), help="every week on DAY (mon ... sun) at HH:MM")
    add.add_argument("--name", help="name_follow: the name to follow, /ipns/NAME or /ipns/DOMAIN (DNSLink)")
    add.add_argument("--keep", action=WholeNumber, low=1, high=100, metavar="N",
                     help="name_follow: how many of the CIDs it pointed to stay pinned (default 1)")
    add.add_argument("--above-percent", action=WholeNumber, low=1, high=100, metavar="PERCENT",
                     help="repo_gc: collect only when the repository is above this percentage of StorageMax")
    add.add_argument("--days", action=WholeNumber, low=1, high=36500, metavar="N",
                     help="task_cleanup: delete finished tasks older than this (default the retention period)")
    add_common(add, "--db", "--ipfs-api", "--cluster-api")
    listing = actions.add_parser("ls", help="list the schedules", description="List the schedules.")
    add_common(listing, "--db")
    add_common(listing, "--json", json="print JSON instead of a table")
    for name, text in (("rm", "delete a schedule"), ("run", "run a schedule now"),
                       ("disable", "stop a schedule from running, keeping it"),
                       ("enable", "let a disabled schedule run again")):
        sub = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("id", action=WholeNumber, low=1, metavar="ID", help="the schedule's id")
        add_common(sub, "--db", "--ipfs-api", "--cluster-api")
    alerts = commands.add_parser("alerts", help="list open and recent alerts; exit 6 if any is open",
                                 description="List the open alerts, then the recent ones. Exits 0 when none is"
                                             " open, 6 when one is (for cron and monitoring scripts).")
    add_common(alerts, "--db")
    add_common(alerts, "--json", json="print JSON instead of a table")


def first_word(argv):
    """The first word of ``argv`` that is neither a flag nor a flag's value
    (``tasks`` in ``--db X tasks``; none in ``--port 7790``), or None."""
    takes_value = SERVE_VALUES + tuple(flag for flag, spec in COMMON.items() if spec.get("action") != "store_true")
    words = iter(argv)
    for word in words:
        if word == "--":
            return None
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def parse(argv):
    """The command line's arguments; UsageError (exit code 2) for a mistake."""
    parser = build_parser()
    if first_word(argv) is None and argv[:1] not in (["-h"], ["--help"], ["--version"]):
        argv = ["serve"] + argv
    args = parser.parse_args(argv)
    command = " ".join(name for name in (args.command, getattr(args, "pin_command", None),
                                         getattr(args, "car_command", None)) if name)
    for flag in COMMON:
        name = flag[2:].replace("-", "_")
        given = getattr(args, BEFORE + name)
        delattr(args, BEFORE + name)
        if given in (None, False):
            continue
        # The others say where things are, as their environment variables do
        # (an alias may give them): a command that needs none ignores them.
        if name == "json" and not hasattr(args, name):
            parser.error("--json does not apply to %s" % command)
        if getattr(args, name, None) in (None, False):    # given after the command too: that one counts
            setattr(args, name, given)
    return args
