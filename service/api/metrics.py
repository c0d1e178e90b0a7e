"""`GET /metrics` (Prometheus text format) and the middleware that counts every request."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from ..errors import Handler
from ..keys import CATALOG, FEED, HUB, METRICS, REPO, WATCH
from ..metrics import Metrics

CLIENT_CLOSED = 499  # nginx's code for a request the client abandoned


def route_of(request: web.Request) -> str:
    """The route template (`/v1/threads/{thread_id}`), never the raw path: ids must not become
    label values. Anything that matched no route is one label."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED
        raise
    finally:
        request.app[METRICS].observe_request(request.method, route_of(request), status,
                                             time.perf_counter() - started)


async def metrics_handler(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


def setup_metrics(app: web.Application) -> None:
    """Create the app's metrics over its state (call once the state is in place)."""
    hub = app[HUB]
    metrics = app[METRICS] = Metrics(app[CATALOG], app[FEED], app[WATCH],
                                     lambda: len(hub.subscribers))
    app[REPO].on_append = metrics.fsync.observe
