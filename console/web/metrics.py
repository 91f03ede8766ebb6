"""The handler of ``GET /metrics``, for Prometheus (see console/metrics.py).

Open on loopback without a password like the rest; with a password set,
Prometheus sends it as a Bearer token (its ``authorization`` setting).
"""

from console import metrics
from console.web.http import Response


def handle_metrics(req):
    """The console's figures in Prometheus's text format."""
    return Response(metrics.render(req.db, req.settings).encode("utf-8"), content_type=metrics.CONTENT_TYPE,
                    headers=[("Cache-Control", "no-store")])
