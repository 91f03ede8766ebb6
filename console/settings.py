"""The console's configuration (defaults, then the environment, then flags),
its secrets, and where a task's files live.

The bottom layer: it imports nothing of the project.
"""

import contextlib
import os
import re
from urllib.parse import unquote, urlsplit

DEFAULTS = {
    "host": "127.0.0.1",
    "port": 7789,
    "db": "ipfsmaster.db",
    "ipfs_api": "http://127.0.0.1:5001",
    "stale_seconds": 30,
    "cancel_grace_seconds": 10,
    "retention_days": 30,
    "max_upload_bytes": 4 * 1024 ** 3,
    "request_timeout": 60,
    "password": None,
    "ipfs_auth": None,
    "cluster_api": None,
    "cluster_auth": None,
    "gateway": None,
    "trust_proxy": False,
    "sample_seconds": 60,
    "schedule_tick_seconds": 15,
    "webhook_url": None,
    "webhook_secret": None,
    "repo_warn_percent": 80,
    "repo_alarm_percent": 95,
}


def yes_or_no(raw):
    """An on/off setting from the environment: 1/yes/true/on or 0/no/false/off."""
    value = raw.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError(raw)


# The least each number setting may be: a zero or negative interval would
# fail every task at once, or never let one be cancelled.
LOWEST = {"stale_seconds": 1, "cancel_grace_seconds": 1, "retention_days": 1, "max_upload_bytes": 1,
          "request_timeout": 1, "sample_seconds": 1}
LOWEST.update(schedule_tick_seconds=1, repo_warn_percent=1, repo_alarm_percent=1)
# The most a percentage setting may be.
HIGHEST = {"repo_warn_percent": 100, "repo_alarm_percent": 100}

# What each kind of environment value must be, as an error message says it.
KIND_NAMES = {int: "a whole number", str: "text", yes_or_no: "yes or no"}

# Setting name -> (environment variable, type).
ENVIRONMENT = {
    "host": ("IPFSMASTER_HOST", str),
    "port": ("IPFSMASTER_PORT", int),
    "db": ("IPFSMASTER_DB", str),
    "ipfs_api": ("IPFSMASTER_IPFS_API", str),
    "stale_seconds": ("IPFSMASTER_STALE_SECONDS", int),
    "cancel_grace_seconds": ("IPFSMASTER_CANCEL_GRACE_SECONDS", int),
    "retention_days": ("IPFSMASTER_RETENTION_DAYS", int),
    "max_upload_bytes": ("IPFSMASTER_MAX_UPLOAD_BYTES", int),
    "request_timeout": ("IPFSMASTER_REQUEST_TIMEOUT", int),
    "password": ("IPFSMASTER_PASSWORD", str),
    "ipfs_auth": ("IPFSMASTER_IPFS_AUTH", str),
    "cluster_api": ("IPFSMASTER_CLUSTER_API", str),
    "cluster_auth": ("IPFSMASTER_CLUSTER_AUTH", str),
    "gateway": ("IPFSMASTER_GATEWAY", str),
    "trust_proxy": ("IPFSMASTER_TRUST_PROXY", yes_or_no),
    "sample_seconds": ("IPFSMASTER_SAMPLE_SECONDS", int),
    "schedule_tick_seconds": ("IPFSMASTER_SCHEDULE_TICK_SECONDS", int),
    "webhook_url": ("IPFSMASTER_WEBHOOK_URL", str),
    "webhook_secret": ("IPFSMASTER_WEBHOOK_SECRET", str),
    "repo_warn_percent": ("IPFSMASTER_REPO_WARN_PERCENT", int),
    "repo_alarm_percent": ("IPFSMASTER_REPO_ALARM_PERCENT", int),
}


SECRET_SETTINGS = ("password", "ipfs_auth", "cluster_auth")
SECRET_SETTINGS += ("webhook_secret",)


class Settings:
    """The console's configuration: defaults, then the environment, then flags."""

    def __init__(self, **overrides):
        for name, value in DEFAULTS.items():
            setattr(self, name, value)
        for name, value in overrides.items():
            if name not in DEFAULTS:
                raise TypeError("unknown setting %r" % name)
            if value is not None:
                setattr(self, name, value)

    @classmethod
    def from_environment(cls, environ=None, **flags):
        """Settings from ``environ`` (default ``os.environ``), overridden by flags."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, (variable, kind) in ENVIRONMENT.items():
            raw = environ.get(variable, "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise SystemExit("%s must be %s, not %r" % (variable, KIND_NAMES[kind], raw))
        values.update((name, value) for name, value in flags.items() if value is not None)
        for name, low in LOWEST.items():
            if name in values and values[name] < low:
                raise SystemExit("--%s (%s) must be at least %d, not %d"
                                 % (name.replace("_", "-"), ENVIRONMENT[name][0], low, values[name]))
        for name, high in HIGHEST.items():
            if values.get(name, 0) > high:
                raise SystemExit("--%s (%s) must be at most %d, not %d"
                                 % (name.replace("_", "-"), ENVIRONMENT[name][0], high, values[name]))
        warn = values.get("repo_warn_percent", DEFAULTS["repo_warn_percent"])
        alarm = values.get("repo_alarm_percent", DEFAULTS["repo_alarm_percent"])
        if warn > alarm:
            raise SystemExit("--repo-warn-percent (%d) must not be above --repo-alarm-percent (%d)" % (warn, alarm))
        if not 0 <= values.get("port", 0) <= 65535:
            raise SystemExit("--port (IPFSMASTER_PORT) must be from 0 to 65535, not %d" % values["port"])
        if values.get("webhook_url") and not is_http_url(values["webhook_url"]):
            raise SystemExit("--webhook (IPFSMASTER_WEBHOOK_URL) must be an http:// or https:// URL with a host,"
                             " not %r" % values["webhook_url"])
        return cls(**values)

    def __repr__(self):
        shown = {name: getattr(self, name) for name in DEFAULTS if name not in SECRET_SETTINGS}
        return "Settings(%s)" % ", ".join("%s=%r" % item for item in sorted(shown.items()))

    def sync_params(self):
        """A task's parameters that say where the node (and the cluster, if any) is."""
        params = {"ipfs_api": self.ipfs_api}
        if self.cluster_api:
            params["cluster_api"] = self.cluster_api
        return params

    @property
    def task_dir(self):
        """The folder beside the database that holds task logs and upload spools."""
        return self.files.folder

    @property
    def files(self):
        return TaskFiles(self.db)


class TaskFiles:
    """The one place that knows where each task's files live: a folder beside
    the database (``ipfsmaster.db`` -> ``ipfsmaster-tasks/``), owner-only."""

    def __init__(self, db_path):
        base, _ = os.path.splitext(os.path.abspath(db_path))
        self.folder = base + "-tasks"

    def _path(self, name):
        return os.path.join(self.folder, name)

    def make_folder(self):
        os.makedirs(self.folder, mode=0o700, exist_ok=True)

    def log(self, task_id):
        """The worker's output."""
        return self._path("task-%d.log" % int(task_id))

    def spool(self, task_id):
        """Where an upload task's file waits for its worker."""
        return self._path("task-%d.upload" % int(task_id))

    def heartbeat(self, task_id):
        """A file whose modification time a running worker renews: a sign of
        life that no lock on the database can hold up."""
        return self._path("task-%d.alive" % int(task_id))

    def undone(self, task_id):
        """The items a pin task failed, as they fail, for its retry."""
        return self._path("task-%d.undone" % int(task_id))

    def inherited(self, task_id):
        """The items a retry took over from the task it retries, written in
        full before it begins (see tasks.common.PinItems)."""
        return self._path("task-%d.inherited" % int(task_id))

    def pin_list(self, token):
        """Where a pin_add task's list waits (shared by the task and its retries)."""
        if not re.fullmatch(r"[0-9a-f]{16,64}", token or ""):
            raise ValueError("not a pin list token")
        return self._path("pins-%s.list" % token)

    def incoming(self, token):
        """An upload being received, before its task exists."""
        return self._path("incoming-%s.upload" % token)

    def of_task(self, task_id):
        """Every file a task may have left behind."""
        return [self.log(task_id), self.spool(task_id), self.heartbeat(task_id), self.undone(task_id),
                self.inherited(task_id)]

    def discard_spool(self, task_id):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.spool(task_id))


def read_secret_file(path, what):
    """The first line of a file holding a secret (a password, API credentials)."""
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().strip()
    except OSError as exc:
        raise SystemExit("cannot read the %s file %s: %s" % (what, path, exc.strerror))
    if not secret:
        raise SystemExit("the %s file %s is empty" % (what, path))
    return secret


def split_api_credentials(api_url):
    """An API URL with ``user:password@`` moved out: (clean URL, 'basic:user:password' or None).

    Credentials must never reach task parameters, the browser or a log line.
    """
    parts = urlsplit(api_url)
    if parts.username is None:
        return api_url, None
    clean = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return clean, "basic:%s:%s" % (unquote(parts.username), unquote(parts.password or ""))


def is_http_url(url):
    """Whether ``url`` is http:// or https:// with a host and, if any, a port from 1 to 65535."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:          # a port that is not a number, or past 65535; a broken [IPv6] host
        return False
