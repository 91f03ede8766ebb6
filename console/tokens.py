"""Access tokens of the pinning service API: named, one per device or
client, shown once when made, kept only as their SHA-256, revoked one at a
time. The web layer and the command line both go through here.

A token is 32 random bytes, URL-safe base64 (43 characters): too many
guesses to need a slow hash, so a plain SHA-256 is what is stored, and a
Bearer token is found by its hash with one indexed look-up.
"""

import hashlib
import re
import secrets
import sqlite3

from console.store import transaction

NAME_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
# How often last_used_at is written for one token: a burst of requests
# writes it once, not once a request.
LAST_USED_GRANULARITY = "-60 seconds"


class TokenNameTaken(Exception):
    """A token of that name exists already."""


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def valid_name(name):
    """Whether ``name`` may name a token: 1 to 64 characters, no control characters, not only spaces."""
    return isinstance(name, str) and bool(NAME_PATTERN.fullmatch(name)) and bool(name.strip())


def add_token(conn, name):
    """Make a token named ``name`` and return it (the only time it is seen);
    ValueError for a bad name, TokenNameTaken if the name is in use."""
    if not valid_name(name):
        raise ValueError(name)
    token = secrets.token_urlsafe(32)
    try:
        with transaction(conn):
            conn.execute("INSERT INTO psa_tokens (name, token_hash) VALUES (?, ?)", (name, token_hash(token)))
    except sqlite3.IntegrityError:
        raise TokenNameTaken(name)
    return token


def list_tokens(conn):
    """Every token as {name, created_at, last_used_at}, oldest first: never the token."""
    return [dict(row) for row in conn.execute(
        "SELECT name, created_at, last_used_at FROM psa_tokens ORDER BY created_at, name")]


def remove_token(conn, name):
    """Revoke the token ``name``; True if there was one."""
    with transaction(conn):
        return conn.execute("DELETE FROM psa_tokens WHERE name = ?", (name,)).rowcount == 1


def token_owner(conn, token):
    """The name of the token ``token``, or None if no token is that; notes its use."""
    if not token or len(token) > 256:
        return None
    digest = token_hash(token)
    row = conn.execute("SELECT name, last_used_at IS NULL OR last_used_at < datetime('now', ?) AS stale"
                       " FROM psa_tokens WHERE token_hash = ?", (LAST_USED_GRANULARITY, digest)).fetchone()
    if row is None:
        return None
    if row["stale"]:
        try:
            with transaction(conn):
                conn.execute("UPDATE psa_tokens SET last_used_at = datetime('now') WHERE token_hash = ?", (digest,))
        except sqlite3.OperationalError:
            pass        # the database is busy: the next use notes it
    return row["name"]
