"""DNS-rebinding guard for the keyless default: only loopback names in the Host header.

With no API key (the loopback default), any web page the user opens can try to reach the API. The
same-origin policy keeps other sites out, unless a page rebinds its own domain name to 127.0.0.1:
then the browser treats the API as that site's and lets it read everything. The Host header still
carries the page's domain, so a keyless server answers only requests addressed to a loopback name
(or the configured host).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import Forbidden, Handler
from ..keys import CONFIG

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:1337
        return host_header[1:].partition("]")[0]
    name, _, _port = host_header.rpartition(":") if host_header.count(":") == 1 else (
        host_header, "", "")
    return (name or host_header).lower()


@web.middleware
async def host_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.headers.get("Host")
    if host is not None:
        name = _hostname(host)
        if name not in LOOPBACK_NAMES and name != request.app[CONFIG].host.lower() \
                and not name.endswith(".localhost"):
            raise Forbidden(f"Host {host!a} is not served without an API key: use "
                            "localhost or 127.0.0.1, or configure api_keys.")
    return await handler(request)
