"""Handler of the alerts: the open ones first, then the recent ones."""

from console import alerts
from console.web.http import json_response


def handle_alerts(req):
    """The open alerts, newest first, then those closed lately; each message in the reader's language."""
    return json_response({"alerts": alerts.list_alerts(req.db, req.lang)})
