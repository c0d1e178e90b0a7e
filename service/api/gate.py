"""What every request goes through: the CORS preflight, the key or Host check, the one error
path and the request metrics, wrapped around each handler once, when its route is registered.

This is the work of four middlewares without their cost: each middleware adds a coroutine layer
to every request, and any middleware at all makes aiohttp add a layer of its own. With none, the
app calls the wrapped handler directly. Requests that match no route reach `unmatched`, the last
route, and get their 404 or 405 through the same wrapper.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from multidict import istr

from ..config import Config
from ..errors import Handler, render
from ..metrics import Metrics
from .auth import key_check
from .cors import preflight
from .hosts import host_guard
from .request import expect_continue

CLIENT_CLOSED = 499  # nginx's code for a request the client abandoned
UNMATCHED = "unmatched"  # the metrics label of requests that matched no route

Check = Callable[[web.Request], None]
# As OpenAI sends it; the SDKs expose it (`request_id`). An istr: set without case folding.
REQUEST_ID = istr("X-Request-Id")


def request_ids() -> Callable[[], str]:
    """Unique request ids, `req_` + this process's random prefix + a counter: cheaper than a
    random id per request, and unique across processes and restarts all the same."""
    prefix = "req_" + os.urandom(6).hex()
    counter = itertools.count(0x10000000)
    return lambda: prefix + hex(next(counter))[2:]


def request_check(config: Config) -> Check | None:
    """Keys when configured; else, unless remote clients are allowed, the DNS-rebinding guard."""
    if config.api_keys:
        return key_check(config)
    if not config.allow_unauthenticated_remote:
        return host_guard(config)
    return None


class Gate:
    def __init__(self, config: Config, metrics: Metrics) -> None:
        self.check = request_check(config)
        self.cors = bool(config.cors_origins)
        self.metrics = metrics
        self.request_id = request_ids()

    def __call__(self, route: str, handler: Handler) -> Handler:
        """`handler` behind the checks, errors rendered as the envelope, counted as `route`."""
        observe = self.metrics.requests.observer(route)
        check = self.check
        cors = self.cors
        clock = time.perf_counter
        new_id = self.request_id

        async def gated(request: web.Request) -> web.StreamResponse:
            started = clock()
            status = 500
            try:
                try:
                    response: web.StreamResponse | None = preflight(request) if cors else None
                    if response is None:
                        if check is not None:
                            check(request)
                        response = await handler(request)
                except web.HTTPException as exc:
                    if exc.status < 400:  # a redirect is an answer, not an error
                        status = exc.status
                        raise
                    response = render(exc)
                except ConnectionResetError:
                    # The client went away before its body arrived: nobody to answer. Counted
                    # as a client's close (not as a server error), nothing logged.
                    status = CLIENT_CLOSED
                    return web.Response(status=CLIENT_CLOSED)
                except Exception as exc:  # ApiError, msgspec's, and the last line of defence
                    response = render(exc)
                status = response.status
                if status >= 400:  # on errors only: a header costs ~5% of a get's instructions
                    response.headers[REQUEST_ID] = new_id()
                return response
            except asyncio.CancelledError:
                status = CLIENT_CLOSED
                raise
            finally:
                observe(request.method, status, clock() - started)
        gated.__wrapped__ = handler  # type: ignore[attr-defined]  # what it gates (openapi.py)
        return gated

    def expect(self, route: str) -> Callable[[web.Request], Awaitable[web.Response | None]]:
        """aiohttp's handler of a request's `Expect` header for `route`. It runs before the
        route's handler (and so before `gated`): the same checks run here first, so a client
        that may not send its body (no key, a foreign Host, a body over the limit, another
        expectation) is told so before it uploads anything; counted, with a request id."""
        observe = self.metrics.requests.observer(route)
        check = self.check
        cors = self.cors
        clock = time.perf_counter
        new_id = self.request_id

        async def expect(request: web.Request) -> web.Response | None:
            if cors and preflight(request) is not None:
                return None  # a CORS preflight: `gated` answers it, as without the header
            started = clock()
            try:
                if check is not None:
                    check(request)
                if route == UNMATCHED:
                    await unmatched(request)  # a 404 or 405, whatever body it declares
                await expect_continue(request)
            except Exception as exc:
                response = render(exc)
                response.headers[REQUEST_ID] = new_id()
                response.force_close()  # the body it declared, if it comes, is not read
                observe(request.method, response.status, clock() - started)
                return response
            return None
        return expect


def unanswered(route: web.AbstractRoute) -> bool:
    """Whether `route` only gives what matches no route (a 404 or 405 envelope)."""
    return getattr(route.handler, "__wrapped__", None) is unmatched


async def unmatched(request: web.Request) -> web.StreamResponse:
    """No route matched: 405 if the path exists with other methods, else 404 (what aiohttp's
    router would say, as the envelope)."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            match, methods = await resource.resolve(request)
            if match is None:
                allowed |= methods
    allowed.discard(hdrs.METH_ANY)
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()
