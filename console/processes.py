"""Worker processes: starting them detached, telling whether they live, and
ending one that ignored its cancel, on POSIX and on Windows.

A pid is only ever signalled once it is known to be the task's own worker:
pids are reused.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

from console import shipped
from console.settings import ENVIRONMENT
from console.store import utc_seconds

# os.name as the process functions see it; the tests fake other systems here.
OS_NAME = os.name
# Where Linux shows its processes; macOS and the BSDs have no /proc.
PROC_DIR = "/proc"
# How long a worker that ignores SIGTERM has before SIGKILL.
KILL_AFTER_SECONDS = 3

# DETACHED_PROCESS already means no console, so no window either.
WINDOWS_DETACH_FLAGS = (getattr(subprocess, "DETACHED_PROCESS", 0x00000008)
                        | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x00000200))


def detach_options(os_name=None):
    """Popen options that detach a worker from the server and its terminal."""
    if (os_name or OS_NAME) == "nt":
        return {"creationflags": WINDOWS_DETACH_FLAGS}
    return {"start_new_session": True}


def spawn_worker(settings, task_id):
    """Start ``worker.py TASK_ID`` (in a zipapp: ``ARCHIVE worker TASK_ID``)
    detached, its output going to the task's log."""
    files = settings.files
    files.make_folder()
    log_path = files.log(task_id)
    # -S: the worker needs nothing but the standard library, and skipping
    # site-packages (and whatever their .pth files import) saves most of its start.
    script, folder = shipped.worker_command()
    args = [sys.executable, "-S"] + script + [str(int(task_id)), "--db", os.path.abspath(settings.db)]
    env = dict(os.environ)
    env.pop("IPFSMASTER_PASSWORD", None)  # the worker has no use for it
    # Credentials go through the environment: never in argv or the task's parameters.
    for name in ("ipfs_auth", "cluster_auth"):
        if getattr(settings, name):
            env[ENVIRONMENT[name][0]] = getattr(settings, name)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                close_fds=True, cwd=folder, env=env, **detach_options())
    finally:
        os.close(fd)
    # Collect the exit status so a finished worker does not linger as a zombie
    # (a zombie still answers to its pid and would look alive).
    threading.Thread(target=proc.wait, name="reap-%d" % proc.pid, daemon=True).start()
    return proc.pid


def has_proc():
    return os.path.isdir(os.path.join(PROC_DIR, "self"))


def process_alive(pid):
    """True if a process with this pid exists and has not exited."""
    if not pid or pid <= 0:
        return False
    if OS_NAME == "nt":
        return _windows_process_alive(pid)
    if has_proc():
        try:
            with open(os.path.join(PROC_DIR, "%d" % pid, "stat"), "rb") as f:
                # The state follows the command name in parentheses; Z is a zombie.
                return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except FileNotFoundError:
            return False
        except (OSError, IndexError):
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_task_worker(pid, task_id, created_at=None, started_at=None):
    """True if ``pid`` is a live worker process for this task: pids are
    reused, and a forced cancel must never end someone else's process.

    On POSIX the process's command line is a worker's for the task (see
    is_worker_command); on Windows, which has no cheap way to read it, the process must have been
    created between the task's ``created_at`` and ``started_at`` (when its
    worker claimed it), which a process that took over the pid later was not.
    """
    if not process_alive(pid):
        return False
    if OS_NAME == "nt":
        return _windows_created_between(pid, created_at, started_at)
    return is_worker_command(command_line(pid), task_id)


def is_worker_command(argv, task_id):
    """True for a worker's command line (bytes): ``... worker.py ... TASK_ID ...``,
    or the zipapp's ``... ARCHIVE worker TASK_ID ...``."""
    task = str(int(task_id)).encode()
    if any(arg.endswith(b"worker.py") for arg in argv):
        return task in argv
    return any(arg == b"worker" and following == task for arg, following in zip(argv, argv[1:]))


def command_line(pid):
    """A process's arguments as bytes ([] if it cannot be read): from /proc,
    else from ``ps``."""
    if has_proc():
        try:
            with open(os.path.join(PROC_DIR, "%d" % pid, "cmdline"), "rb") as f:
                return f.read().split(b"\0")
        except FileNotFoundError:
            return []
        except OSError:
            pass
    try:
        out = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(int(pid))], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return out.split()


def terminate_process(pid, task_id):
    """End a task's worker that ignored its cancel: SIGTERM, then SIGKILL if
    it is still there KILL_AFTER_SECONDS later; TerminateProcess on Windows."""
    if OS_NAME == "nt":
        _windows_terminate(pid)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    # Not a daemon: `ipfsmaster.py reap` waits for it before it exits.
    threading.Thread(target=kill_if_still_there, args=(pid, task_id), name="kill-%d" % pid).start()


def kill_if_still_there(pid, task_id):
    deadline = time.monotonic() + KILL_AFTER_SECONDS
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.05)
    if is_task_worker(pid, task_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _windows_created_between(pid, created_at, started_at):
    created = _windows_process_created(pid)
    try:
        low, high = utc_seconds(created_at), utc_seconds(started_at)
    except (TypeError, ValueError):  # not started, or a time written by hand
        return False
    # The timestamps are whole seconds, cut down: a second of slack each way.
    return created is not None and low - 1 <= created <= high + 1


def _windows_process_alive(pid):
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _windows_process_created(pid):
    """When a process was created, in seconds since the epoch, or None."""
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        # Each FILETIME counts 100 ns since 1601-01-01 UTC in 64 bits.
        created, exited, kernel, user = (ctypes.c_ulonglong() for _ in range(4))
        if not kernel32.GetProcessTimes(handle, ctypes.byref(created), ctypes.byref(exited),
                                        ctypes.byref(kernel), ctypes.byref(user)):
            return None
        return created.value / 10 ** 7 - 11644473600
    finally:
        kernel32.CloseHandle(handle)


def _windows_terminate(pid):
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x0001, False, pid)  # PROCESS_TERMINATE
    if handle:
        try:
            kernel32.TerminateProcess(handle, 1)
        finally:
            kernel32.CloseHandle(handle)
