"""The handler of ``GET /api/history``: the samples the console keeps (see
console/history.py), for the pages' charts and for scripts."""

from console import history
from console.web.http import json_response


def handle_history(req):
    """The samples from ``since`` (an ISO 8601 time; default all of them), oldest first."""
    raw = req.arg("since").strip()
    since = history.parse_since(raw) if raw else None
    return json_response({"samples": history.samples_since(req.db, since)})
