"""Optional API keys: `Authorization: Bearer <key>` on every API route when keys are set."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web

from ..config import Config
from ..errors import Unauthorized


def key_check(config: Config) -> Callable[[web.Request], None]:
    """The check for each request: a Bearer key on every API route (preflights carry none)."""
    keys = [k.encode() for k in config.api_keys]

    def check(request: web.Request) -> None:
        if request.method == "OPTIONS" or not request.path.startswith("/v1"):
            return
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("You didn't provide an API key. Provide it in the Authorization "
                               "header as 'Bearer YOUR_KEY'.")
        given = token.encode(errors="surrogateescape")  # header bytes that were not UTF-8
        if not any(hmac.compare_digest(given, k) for k in keys):
            raise Unauthorized("Incorrect API key provided.")
    return check
