"""The command line: ``main`` parses, then runs the command's function from
one table. Each command function takes (args, settings, conn) and returns
one of the exit codes below (the README's table says the same).
"""

import contextlib
import functools
import json
import logging
import os
import shutil
import sys
import time

from console import bundle, exports, guardrails, node, tokens
from console.car import NotACar, read_roots
from console.cli.output import (count, damage_found, field_lines, not_cids, partial_failure, progress_line, shown,
                                size, task_lines)
from console.cli.parser import parse
from console.cli.exits import DONE, FAILED, NO_SUCH_TASK, OUTPUT_CLOSED, PARTIAL, REFUSED, USAGE
from console.cli.unattended import list_alerts, schedule
from console.control import cancel_task, cleanup_tasks, mark_stale_tasks, retry_task, start_task
from console.errors import AlreadyRetried, HTTPError, NotRetryable, TaskConflict, TaskStateError
from console.framing import IPFSError
from console.messages import NO_CLUSTER, translate
from console.pin_input import pin_name, start_pin_add, start_pin_remove
from console.rpc import ClusterClient
from console.settings import DEFAULTS, Settings, read_secret_file, split_api_credentials
from console.store import FINAL_STATUSES, connect, get_task, init_db, list_tasks, task_as_json
from console.web.server import serve

TASK_LINE = "%6s  %-11s  %-9s  %4s  %-19s  %s"


def main(argv=None):
    """Run ``ipfsmaster.py`` with ``argv``; returns the exit code."""
    try:
        code = run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()      # here, so that a closed pipe is noticed here, not at exit
    except BrokenPipeError:     # the only pipes a command writes to are its output and error
        silence_output()
        return OUTPUT_CLOSED
    return code


def silence_output():
    """Point standard output and error at the null device: what is still
    buffered for a reader that has gone must not fail again at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):   # not real files (a test's captured output)
        pass


def run(argv):
    """Parse ``argv`` and run its command; returns the exit code."""
    args = parse(argv)
    if args.command == "bundle":
        return bundle.main(args.output)
    settings = settings_from(args)
    os.umask(0o077)  # the database, its journal, logs and spool: owner only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "serve":
        serve(settings)
        return DONE
    init_db(settings.db)
    conn = connect(settings.db)
    try:
        return COMMANDS[args.command](args, settings, conn)
    finally:
        conn.close()


def settings_from(args):
    """The settings: defaults, the environment, then the flags given."""
    flags = {name: getattr(args, name, None) for name in DEFAULTS}
    if args.command == "cleanup":
        flags["retention_days"] = args.days
    if getattr(args, "password_file", None):
        flags["password"] = read_secret_file(args.password_file, "password")
    if getattr(args, "ipfs_auth_file", None):
        flags["ipfs_auth"] = read_secret_file(args.ipfs_auth_file, "IPFS API credentials")
    if getattr(args, "cluster_auth_file", None):
        flags["cluster_auth"] = read_secret_file(args.cluster_auth_file, "IPFS Cluster API credentials")
    if getattr(args, "webhook_secret_file", None):
        flags["webhook_secret"] = read_secret_file(args.webhook_secret_file, "webhook secret")
    settings = Settings.from_environment(**flags)
    settings.ipfs_api, credentials = split_api_credentials(settings.ipfs_api)
    settings.ipfs_auth = settings.ipfs_auth or credentials
    if settings.cluster_api:
        settings.cluster_api, credentials = split_api_credentials(settings.cluster_api)
        settings.cluster_auth = settings.cluster_auth or credentials
    return settings


# ---------------------------------------------------------------------------
# Commands that start a task
# ---------------------------------------------------------------------------

def sync(args, settings, conn):
    return run_task_command(args, settings, conn, lambda: (
        start_task(settings, conn, "pin_sync", settings.sync_params()), {}))


def recover(args, settings, conn):
    if not settings.cluster_api:
        print(NO_CLUSTER, file=sys.stderr)
        return USAGE
    return run_task_command(args, settings, conn, lambda: (
        start_task(settings, conn, "pin_recover", settings.sync_params()), {}), partial=partial_failure)


def gc(args, settings, conn):
    return run_task_command(args, settings, conn, lambda: (
        start_task(settings, conn, "repo_gc", {"ipfs_api": settings.ipfs_api}), {}))


def verify(args, settings, conn):
    """Check every block of the node's repository; exit 5 when some are damaged."""
    return run_task_command(args, settings, conn, lambda: (
        start_task(settings, conn, "repo_verify", {"ipfs_api": settings.ipfs_api}), {}), partial=damage_found)


def car(args, settings, conn):
    """car import FILE, and car export CID."""
    if args.car_command == "export":
        return export_car(args, settings)
    try:
        with open(args.file, "rb") as f:
            read_roots(f)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        print("Cannot read %s: %s" % (args.file, exc.strerror), file=sys.stderr)
        return USAGE
    except NotACar as exc:
        print("%s is not a CAR: %s." % (args.file, exc), file=sys.stderr)
        return USAGE
    params = {"ipfs_api": settings.ipfs_api, "file_name": args.name or os.path.basename(args.file), "size": size}
    try:
        return run_task_command(args, settings, conn, lambda: (start_task(
            settings, conn, "car_import", params,
            prepare=lambda task_id: spool_copy(settings, args.file, task_id)), {}), partial=partial_failure)
    except OSError as exc:
        print("Cannot hand %s to a task: %s" % (args.file, exc.strerror or exc), file=sys.stderr)
        return FAILED


def spool_copy(settings, path, task_id):
    """Put a file where a task's spooled input waits: a hard link when it can
    (no copy of a large CAR), else a copy. The task removes it, not the file."""
    settings.files.make_folder()
    try:
        os.link(path, settings.files.spool(task_id))
    except OSError:
        shutil.copyfile(path, settings.files.spool(task_id))


def export_car(args, settings):
    """Write the DAG under a CID as a CAR file (or to standard output with
    ``-o -``); a file is written whole or not at all."""
    cid = args.cid.strip()
    output = args.output or cid + ".car"
    try:
        pieces = node.export_car(settings, cid)
    except HTTPError as error:
        print(translate(error.template, "en", **error.values), file=sys.stderr)
        return USAGE if error.status == 400 else FAILED
    try:
        if output == "-":
            write_out(pieces)
            return DONE
        if not write_whole(output, pieces):
            return USAGE
    except IPFSError as exc:
        print("The export of %s broke off: %s" % (cid, exc), file=sys.stderr)
        return FAILED
    finally:
        pieces.close()
    print("Wrote %s (%s)." % (output, size(os.path.getsize(output))), file=sys.stderr)
    return DONE


def write_whole(output, pieces):
    """Write the byte pieces to ``output`` whole or not at all: into
    ``output.part-PID`` first, renamed when complete. False (said on
    stderr) when it cannot be written."""
    partial = "%s.part-%d" % (output, os.getpid())
    try:
        with open(partial, "wb") as out:
            for piece in pieces:
                out.write(piece)
        os.replace(partial, output)
    except OSError as exc:
        print("Cannot write %s: %s" % (output, exc.strerror), file=sys.stderr)
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
    return True


def pins(args, settings, conn):
    """pins export: every pin that matches, as CSV or JSON lines, to standard output or a file."""
    pieces = exports.pin_export(conn, args.export_format, args.search.strip(), args.status or "", args.sort)
    try:
        if not args.output or args.output == "-":
            write_out(pieces)
            return DONE
        return DONE if write_whole(args.output, pieces) else USAGE
    finally:
        pieces.close()


def write_out(pieces):
    """Byte pieces to standard output (a reader that goes away ends the command quietly, in ``main``)."""
    sys.stdout.flush()
    for piece in pieces:
        sys.stdout.buffer.write(piece)


def pin(args, settings, conn):
    """pin add CID... | -f FILE, and pin rm CID..."""
    if args.pin_command == "rm":
        return run_task_command(args, settings, conn, lambda: start_pin_remove(settings, conn, args.cids),
                                where="argument", partial=partial_failure)

    if bool(args.cids) == bool(args.file):
        print("Give CIDs or -f FILE (one of the two).", file=sys.stderr)
        return USAGE

    def fill(writer):
        writer.name = pin_name(args.name)
        if args.file:
            with contextlib.ExitStack() as stack:
                source = sys.stdin.buffer if args.file == "-" else stack.enter_context(open(args.file, "rb"))
                for block in iter(lambda: source.read(65536), b""):
                    writer.feed(block)
        for cid in args.cids:
            writer.add_line(cid)
        return {"timeout_s": args.timeout, "replication_min": args.replication_min,
                "replication_max": args.replication_max}

    where = "line" if args.file else "argument"
    try:
        return run_task_command(args, settings, conn, lambda: start_pin_add(settings, conn, fill, "en"),
                                where=where, partial=partial_failure)
    except OSError as exc:
        print("Cannot read %s: %s" % (args.file, exc.strerror), file=sys.stderr)
        return USAGE


def run_task_command(args, settings, conn, start, where="line", partial=None):
    """Start a task with ``start()`` -> (id, details), then print it or
    wait for it. ``where``: what a pin task's CIDs were given on (lines of
    a file, or arguments); ``partial``: for a task that exits with PARTIAL
    when it completed with failed items, the function that says so
    (``partial_failure``, ``damage_found``), given the task."""
    try:
        task_id, details = start()
    except TaskConflict as conflict:
        template, values = conflict.message()
        print(translate(template, "en", **values), file=sys.stderr)
        return REFUSED
    except HTTPError as error:
        if error.extra.get("invalid"):      # not one CID among the input
            print("No %s holds a valid CID: %s" % (where, not_cids(error.extra, where)), file=sys.stderr)
        else:
            print(translate(error.template, "en", **error.values), file=sys.stderr)
        return USAGE
    if details.get("invalid"):
        print(not_cids(details, where), file=sys.stderr)
    if details.get("storage_warning"):
        print(details["storage_warning"], file=sys.stderr)
    if not args.wait:
        print(json.dumps(dict(details, taskId=task_id)) if args.json else task_id)
        return DONE
    if not args.json:
        print(task_id)
        sys.stdout.flush()      # the id is worth having while the task runs
    task = wait_for_task(settings, conn, task_id)
    if args.json:
        print(json.dumps(task, ensure_ascii=False, indent=2))
    if task["status"] != "completed":
        print("Task %d %s: %s" % (task_id, task["status"], task["error_message"] or ""), file=sys.stderr)
        return FAILED
    if not args.json:
        print("\n".join(field_lines(task["result"] or {})), file=sys.stderr)
    failure = partial and partial(task)
    if failure:
        print(failure, file=sys.stderr)
        return PARTIAL
    return DONE


def wait_for_task(settings, conn, task_id, out=None):
    """Draw the task's progress (on standard error) until it ends; returns
    it as JSON. The line is redrawn only when it changes."""
    out = out or sys.stderr
    drawn = ""
    while True:
        mark_stale_tasks(conn, settings)
        task = task_as_json(get_task(conn, task_id))
        line = progress_line(task)
        if line != drawn:
            out.write("\r" + line.ljust(len(drawn)))
            out.flush()
            drawn = line
        if task["status"] in FINAL_STATUSES:
            out.write("\n")
            return task
        time.sleep(0.5)


# ---------------------------------------------------------------------------
# The node and the cluster
# ---------------------------------------------------------------------------

def show_node(args, settings, conn):
    """The node's overview; exit code 1 if it cannot be reached."""
    try:
        overview = node.node_overview(settings, fresh=True)
        overview.update(guardrails.storage_state(settings, overview))
    except IPFSError as exc:
        print(translate("The IPFS node cannot be reached: {reason}", "en", reason=str(exc)), file=sys.stderr)
        return FAILED
    print(json.dumps(overview, ensure_ascii=False, indent=2) if args.json else "\n".join(field_lines(overview)))
    return DONE


def show_peers(args, settings, conn):
    """The cluster's peers, as it lists them now; exit code 1 if it cannot be reached."""
    if not settings.cluster_api:
        print(NO_CLUSTER, file=sys.stderr)
        return USAGE
    client = ClusterClient(settings.cluster_api, settings.cluster_auth)
    try:
        peers = list(client.stream("peers", method="GET"))
    except IPFSError as exc:
        print(str(exc), file=sys.stderr)
        return FAILED
    finally:
        client.close()
    if args.json:
        print(json.dumps({"peers": peers}, ensure_ascii=False, indent=2))
        return DONE
    print("%-20s  %-52s  %-10s  %s" % ("NAME", "ID", "VERSION", "ERROR"))
    for peer in peers:
        ipfs = peer.get("ipfs") or {}
        print("%-20s  %-52s  %-10s  %s" % (shown(peer.get("peername")), shown(peer.get("id")),
                                           shown((peer.get("version") or "")[:10]),
                                           peer.get("error") or ipfs.get("error") or ""))
    return DONE


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

def list_task_rows(args, settings, conn):
    mark_stale_tasks(conn, settings)
    if args.csv:
        pieces = exports.task_export(conn, args.status, args.task_type)
        try:
            write_out(pieces)
        finally:
            pieces.close()
        return DONE
    rows, total = list_tasks(conn, args.status, args.task_type, args.limit, 0)
    tasks = [task_as_json(row) for row in rows]
    if args.json:
        print(json.dumps({"tasks": tasks, "total": total}, ensure_ascii=False, indent=2))
    elif not tasks:
        print("No tasks%s." % (" match" if args.status or args.task_type else " yet"))
    else:
        print(TASK_LINE % ("ID", "TYPE", "STATUS", "DONE", "CREATED (UTC)", "MESSAGE"))
        for task in tasks:
            print(TASK_LINE % (task["id"], task["task_type"], task["status"], "%d%%" % task["percentage"],
                               task["created_at"], task["error_message"] or task["current_item"] or ""))
    return DONE


def one_task(command):
    """A command on the task ``args.id``: 4 if there is none, 3 if its state forbids it."""
    @functools.wraps(command)
    def run(args, settings, conn):
        mark_stale_tasks(conn, settings)
        if get_task(conn, args.id) is None:
            print("There is no task %d." % args.id, file=sys.stderr)
            return NO_SUCH_TASK
        try:
            return command(args, settings, conn)
        except NotRetryable:
            print("Task %d cannot be retried: its input is gone." % args.id, file=sys.stderr)
        except AlreadyRetried as exc:
            print("Task %d has already been retried: task %d." % (args.id, exc.retry_id), file=sys.stderr)
        except TaskStateError as exc:
            print("Task %d is %s; that is not possible now." % (args.id, exc.status), file=sys.stderr)
        except TaskConflict as conflict:
            template, values = conflict.message()
            print(translate(template, "en", **values), file=sys.stderr)
        return REFUSED
    return run


@one_task
def show(args, settings, conn):
    task = task_as_json(get_task(conn, args.id))
    print(json.dumps(task, ensure_ascii=False, indent=2) if args.json else "\n".join(task_lines(task)))
    return DONE


@one_task
def cancel(args, settings, conn):
    print(cancel_task(settings, conn, args.id))
    return DONE


@one_task
def retry(args, settings, conn):
    print(retry_task(settings, conn, args.id, ipfs_api=args.ipfs_api and settings.ipfs_api))
    return DONE


def cleanup(args, settings, conn):
    removed = cleanup_tasks(conn, settings, settings.retention_days)
    print("Removed %s older than %s." % (count(len(removed), "finished task"), count(settings.retention_days, "day")))
    return DONE


def reap(args, settings, conn):
    changed = mark_stale_tasks(conn, settings)
    print("Marked %s failed." % count(len(changed), "stale task"))
    return DONE


def token(args, settings, conn):
    """token add NAME | ls [--json] | rm NAME: the pinning service's access tokens."""
    if args.token_command == "add":
        try:
            made = tokens.add_token(conn, args.name)
        except ValueError:
            print("A token's name is 1 to 64 characters, without control characters.", file=sys.stderr)
            return USAGE
        except tokens.TokenNameTaken:
            print("There is a token named %s already: revoke it first (token rm), or choose another name."
                  % args.name, file=sys.stderr)
            return REFUSED
        print("Token %s: use it as the key of the pinning service at http://HOST:PORT/psa. It is shown this once."
              % args.name)
        print(made)
        return DONE
    if args.token_command == "ls":
        rows = tokens.list_tokens(conn)
        if args.json:
            print(json.dumps({"tokens": rows}, ensure_ascii=False))
        elif not rows:
            print("No tokens. Make one with: token add NAME")
        else:
            print("%-24s  %-19s  %s" % ("NAME", "CREATED", "LAST USED"))
            for row in rows:
                print("%-24s  %-19s  %s" % (row["name"], row["created_at"], row["last_used_at"] or "never"))
        return DONE
    if not tokens.remove_token(conn, args.name):
        print("There is no token named %s." % args.name, file=sys.stderr)
        return NO_SUCH_TASK
    print("Revoked %s." % args.name)
    return DONE


# Every command but serve and bundle, by its name on the command line.
COMMANDS = {
    "sync": sync, "recover": recover, "gc": gc, "verify": verify, "pin": pin, "pins": pins, "car": car,
    "node": show_node,
    "peers": show_peers,
    "tasks": list_task_rows, "show": show, "cancel": cancel, "retry": retry, "cleanup": cleanup, "reap": reap,
    "token": token,
}
COMMANDS.update(schedule=schedule, alerts=list_alerts)
