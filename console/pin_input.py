"""Starting the pin tasks from what a person gave (JSON, a list, the
command line's arguments): the checks, with the sentences that explain a
refusal (as ``HTTPError``), shared by the web pages and the command line.
"""

import contextlib
import os
import re

from console import guardrails
from console.cids import DEFAULT_PIN_TIMEOUT_S, MAX_INVALID_LINES, MAX_PIN_TIMEOUT_S, is_cid, new_pin_list, read_pin_list
from console.control import start_task
from console.errors import HTTPError

def json_cids(data, limit):
    cids = data.get("cids")
    if not isinstance(cids, list) or not all(isinstance(cid, str) for cid in cids):
        raise HTTPError(400, "cids must be a list of CIDs, each as text.")
    if len(cids) > limit:
        raise HTTPError(413, "Too many CIDs at once: at most {limit}.", limit=limit)
    return cids


def pin_name(value):
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.strip()) > 255 or any(
            ord(char) < 32 and not char.isspace() or ord(char) == 127 for char in value):
        raise HTTPError(400, "name must be text of at most 255 characters.")
    return " ".join(value.split())


def pin_timeout(value):
    high = MAX_PIN_TIMEOUT_S
    if value in (None, ""):
        return DEFAULT_PIN_TIMEOUT_S
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise HTTPError(400, "{name} must be a whole number from {low} to {high}.", name="timeout_s", low=1,
                        high=high)
    return value


def no_valid_cid(summary):
    if not summary["invalid"]:
        return HTTPError(400, "The list holds no CID.", extra=summary)
    if summary["invalid"] == 1:
        return HTTPError(400, "No line holds a valid CID: 1 line is not a CID (line {line}).", extra=summary,
                         line=summary["invalid_lines"][0])
    return HTTPError(400, "No line holds a valid CID: {invalid} lines are not CIDs (the first is line {line}).",
                     extra=summary, invalid=summary["invalid"], line=summary["invalid_lines"][0])


# What a pin_add takes besides its CIDs (each may be None: not given).
PIN_OPTIONS = ("timeout_s", "replication_min", "replication_max")


def replication(settings, options):
    """The replication_min/max a pin_add was given, checked; {} if none."""
    given = {name: options.get(name) for name in ("replication_min", "replication_max")
             if options.get(name) not in (None, "")}
    if given and not settings.cluster_api:
        raise HTTPError(400, "A replication factor needs an IPFS Cluster (--cluster-api).")
    for name, value in given.items():
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,4}", value.strip()):
            value = given[name] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or 1 <= value <= 1000):
            raise HTTPError(400, "{name} must be -1 (every peer) or a whole number from 1 to 1000.", name=name)
    low, high = given.get("replication_min"), given.get("replication_max")
    if low is not None and high is not None and high != -1 and (low == -1 or low > high):
        raise HTTPError(400, "replication_min cannot be more than replication_max.")
    return given


def start_pin_add(settings, conn, fill, lang=None):
    """Spool a pin list that ``fill(writer)`` writes (returning the options
    it was given, see PIN_OPTIONS, or None), then start its pin_add task.

    Returns (task id, {"valid", "invalid", "invalid_lines"}); HTTPError 400
    when no line holds a CID, before any task exists. With ``lang``, a list
    of a few CIDs is sized first, and the summary carries a
    ``storage_warning`` (in ``lang``) when they would take the repository
    past StorageMax (see guardrails.pin_warning).
    """
    token, writer = new_pin_list(settings.files)
    try:
        options = fill(writer) or {}
        timeout_s = pin_timeout(options.get("timeout_s"))
        factors = replication(settings, options)
        writer.close()
        summary = writer.summary()
        if not summary["valid"]:
            raise no_valid_cid(summary)
        params = dict(summary, pin_list=token, timeout_s=timeout_s, **settings.sync_params(), **factors)
        if writer.name:
            params["default_name"] = writer.name
        if lang is not None and summary["valid"] <= guardrails.MAX_SIZED_PINS:
            warning = guardrails.pin_warning(
                settings, [cid for cid, _ in read_pin_list(settings.files.pin_list(token))], lang)
            if warning:
                summary = dict(summary, storage_warning=warning)
        return start_task(settings, conn, "pin_add", params), summary
    except BaseException:
        writer.out.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(settings.files.pin_list(token))
        raise


def start_pin_remove(settings, conn, cids):
    """Start a pin_remove task for the CIDs among ``cids``; returns (task id,
    summary); HTTPError 400 when none is a CID."""
    valid, invalid = [], []
    for number, cid in enumerate(cids, 1):
        if is_cid(cid.strip()):
            valid.append(cid.strip())
        else:
            invalid.append(number)
    summary = {"valid": len(valid), "invalid": len(invalid), "invalid_lines": invalid[:MAX_INVALID_LINES]}
    if not valid:
        raise no_valid_cid(summary)
    return start_task(settings, conn, "pin_remove", dict(summary, cids=valid, **settings.sync_params())), summary
