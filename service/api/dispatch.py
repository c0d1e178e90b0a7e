"""The hot reads' URLs matched without the router's general walk.

aiohttp's router matches a request by building a `yarl.URL` of its path, then walking the path
back one segment at a time through a table of prefixes and trying each candidate's regular
expression: ~20k instructions of the ~180k a bare aiohttp request costs, and more than a
message get costs in the store. A get of a message and a list of messages are the requests that
matter for speed, and their paths are simple: `/v1/threads/{thread_id}/messages[/{message_id}]`.

`fast_resolve` answers those two shapes by splitting the raw path, when each segment is plain
(unreserved characters only: nothing to percent-decode, no dot segment to normalize), so the
router's answer would be the very same route and values. Anything else (an escape, another method,
another path, HEAD) goes to the router as before. The match it returns is the router's own type,
so the application treats it like any other (the gate, the metrics label, `request.match_info`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

PREFIX = "/v1/threads/"
_PLAIN = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]*").fullmatch  # an unreserved segment

Resolve = Callable[[web.Request], Awaitable[UrlMappingMatchInfo]]


def fast_resolve(router: web.UrlDispatcher, get: web.AbstractRoute, lst: web.AbstractRoute
                 ) -> None:
    """Have `router` match GET `/v1/threads/{thread_id}/messages/{message_id}` (route `get`) and
    GET `/v1/threads/{thread_id}/messages` (route `lst`) itself, the general way for the rest."""
    general: Resolve = router.resolve

    async def resolve(request: web.Request) -> UrlMappingMatchInfo:
        raw = request.raw_path
        if request.method == hdrs.METH_GET and raw.startswith(PREFIX):
            parts = raw.partition("?")[0].split("/")  # "", "v1", "threads", id, "messages", id
            n = len(parts)
            if (n == 6 or n == 5) and parts[4] == "messages" and _PLAIN(parts[3]):
                if n == 5:
                    return UrlMappingMatchInfo({"thread_id": parts[3]}, lst)
                if _PLAIN(parts[5]):
                    return UrlMappingMatchInfo({"thread_id": parts[3], "message_id": parts[5]},
                                               get)
        return await general(request)

    router.resolve = resolve  # type: ignore[method-assign]
