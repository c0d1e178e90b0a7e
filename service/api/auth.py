"""Optional API keys: `Authorization: Bearer <key>` on every API route when keys are set."""

from __future__ import annotations

import hmac

from aiohttp import web

from ..errors import Handler, Unauthorized
from ..keys import CONFIG

OPEN_PATHS = ("/healthz",)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    keys = request.app[CONFIG].api_keys
    if keys and request.method != "OPTIONS" and request.path.startswith("/v1"):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("You didn't provide an API key. Provide it in the Authorization "
                               "header as 'Bearer YOUR_KEY'.")
        given = token.encode(errors="surrogateescape")  # header bytes that were not UTF-8
        if not any(hmac.compare_digest(given, k.encode()) for k in keys):
            raise Unauthorized("Incorrect API key provided.")
    return await handler(request)
