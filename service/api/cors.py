"""CORS for browser clients on other origins (`cors_origins`): preflights answered here, and the
allowed origin echoed on every response, error and event-stream responses included.

Off by default: with no origins configured nothing is added and browsers keep other sites' scripts
from reading the API. The headers are added in `on_response_prepare` rather than after the handler
returns, because an event stream has sent its headers long before its handler returns.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import error_response
from ..keys import CONFIG

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
# What the openai SDK and EventSource need at least; a preflight's own list is echoed instead.
DEFAULT_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID"
MAX_AGE = "600"


def allowed_origin(request: web.Request) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when this origin gets no CORS."""
    origin = request.headers.get("Origin")
    origins = request.app[CONFIG].cors_origins
    if origin is None or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def _is_preflight(request: web.Request) -> bool:
    return (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers)


def preflight(request: web.Request) -> web.Response | None:
    """The answer to a preflight (before keys are checked: browsers never send credentials on
    one), or None for any other request."""
    if not _is_preflight(request) or not request.app[CONFIG].cors_origins:
        return None
    origin = allowed_origin(request)
    if origin is None:
        return error_response(403, f"Origin '{request.headers['Origin']}' is not allowed.",
                              "invalid_request_error")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers")
        or DEFAULT_ALLOW_HEADERS,
        "Access-Control-Max-Age": MAX_AGE,
    })


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    origin = allowed_origin(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    if origin != "*":
        response.headers.add("Vary", "Origin")


def setup_cors(app: web.Application) -> None:
    app.on_response_prepare.append(add_cors_headers)
