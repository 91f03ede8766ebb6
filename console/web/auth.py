"""Who may use the console: the password, sessions and the login lock-out
(``Authenticator``), and the checks every request passes first (its Host,
and for a POST its origin).
"""

import hashlib
import hmac
import secrets
import threading
import time
from urllib.parse import urlsplit

from console.errors import HTTPError
from console.web.http import cookie_value, is_loopback

SESSION_COOKIE = "ipfsmaster_session"


class Authenticator:
    """Password login, sessions and the login rate limit.

    Without a password everyone on the (loopback-only) address may use the
    console. With one, a request needs a session cookie from the login form
    or ``Authorization: Bearer <password>``. The password is kept only as a
    keyed hash and compared in constant time; session tokens are random,
    kept server-side (as hashes) and expire; failed passwords, from the
    login form or a bearer header alike, are limited per client address.
    A lock-out ends FAILURE_WINDOW seconds after it began and never touches
    a valid session, so nobody can lock the owner out for good.
    """

    SESSION_SECONDS = 12 * 3600
    MAX_SESSIONS = 1000
    MAX_FAILURES = 5
    FAILURE_WINDOW = 300

    def __init__(self, password):
        self._key = secrets.token_bytes(32)
        self._password = self._hash(password) if password else None
        self._sessions = {}   # token hash -> expiry (monotonic)
        self._failures = {}   # client address -> recent failure times
        self._lock = threading.Lock()

    @property
    def enabled(self):
        return self._password is not None

    def _hash(self, secret):
        return hmac.new(self._key, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def check_password(self, given):
        return self.enabled and hmac.compare_digest(self._hash(given), self._password)

    def start_session(self):
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= self.MAX_SESSIONS:
                self._sessions = {k: v for k, v in self._sessions.items() if v > now}
                while len(self._sessions) >= self.MAX_SESSIONS:
                    self._sessions.pop(min(self._sessions, key=self._sessions.get))
            self._sessions[self._hash(token)] = now + self.SESSION_SECONDS
        return token

    def end_session(self, token):
        with self._lock:
            self._sessions.pop(self._hash(token), None)

    def session_valid(self, token):
        key = self._hash(token)
        with self._lock:
            expiry = self._sessions.get(key)
            if expiry is not None and expiry < time.monotonic():
                del self._sessions[key]
                expiry = None
        return expiry is not None

    def allows(self, environ, address, token_check=None):
        """True if the request carries a valid session cookie or bearer password
        (or a bearer credential that ``token_check`` accepts, if given).

        A wrong bearer password counts as a failed login from ``address``,
        and while that address is locked out a bearer password is not even
        compared (429).
        """
        if not self.enabled:
            return True
        token = cookie_value(environ, SESSION_COOKIE)
        if token and self.session_valid(token):
            return True
        scheme, _, credential = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            if token_check is not None and not self.seconds_until_allowed(address) and token_check(credential.strip()):
                return True
            return self.try_password(address, credential.strip())
        return False

    def try_password(self, address, given):
        """Check a password from ``address``: 429 while it is locked out; a
        failure counts towards the lock-out, a success forgets the failures."""
        wait = self.seconds_until_allowed(address)
        if wait:
            raise HTTPError(429, "Too many failed logins. Try again in {seconds} seconds.",
                            headers=[("Retry-After", str(wait))], seconds=wait)
        if not self.check_password(given):
            self.record_failure(address)
            return False
        with self._lock:
            self._failures.pop(address, None)
        return True

    def seconds_until_allowed(self, address):
        """0 if this address may try a password now, else how long to wait."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if t > now - self.FAILURE_WINDOW]
            self._failures[address] = recent
            if len(recent) < self.MAX_FAILURES:
                return 0
            return int(recent[0] + self.FAILURE_WINDOW - now) + 1

    def record_failure(self, address):
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10000:
                self._failures = {key: times for key, times in self._failures.items()
                                  if times and times[-1] > now - self.FAILURE_WINDOW}
                if len(self._failures) > 10000:
                    self._failures.clear()
            self._failures.setdefault(address, []).append(now)


def host_name(host):
    """The name or address in a Host header, without its port or brackets, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def check_host(environ, settings):
    """Without a password, answer only to a loopback name or the address we
    listen on: a page whose own name was rebound to 127.0.0.1 (DNS rebinding)
    reaches us with its name in Host, and must get nothing."""
    host = environ.get("HTTP_HOST")
    if host is None:
        return  # HTTP/1.0 without Host: not a browser, which always sends it
    name = host_name(host)
    if is_loopback(name) or name == host_name(settings.host):
        return
    raise HTTPError(421, "This console answers only at its own address, such as http://127.0.0.1, not at {host}.",
                    host=host[:100])


def check_same_origin(environ):
    """Refuse a state-changing request that a page on another site sent."""
    if environ.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        raise HTTPError(403, "Cross-site requests are not allowed.")
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return
    host = environ.get("HTTP_HOST") or "%s:%s" % (environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", ""))
    if urlsplit(origin).netloc.lower() != host.lower():
        raise HTTPError(403, "Cross-site requests are not allowed.")
