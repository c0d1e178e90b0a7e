"""`GET /metrics` (Prometheus text format); requests are counted by the gate."""

from __future__ import annotations

from aiohttp import web

from ..keys import CATALOG, FEED, HUB, METRICS, REPO, WATCH
from ..metrics import Metrics


async def metrics_handler(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


def setup_metrics(app: web.Application) -> None:
    """Create the app's metrics over its state (call once the state is in place)."""
    hub = app[HUB]
    metrics = app[METRICS] = Metrics(app[CATALOG], app[FEED], app[WATCH],
                                     lambda: len(hub.subscribers), app[REPO].peers,
                                     app[REPO].reader)
    app[REPO].on_append = metrics.fsync.observe
