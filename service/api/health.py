"""`GET /healthz`: 200 once the index is built, with what it holds."""

from __future__ import annotations

import dataclasses
import os

from aiohttp import web

from ..keys import CATALOG, FEED, WATCH
from ..models import encoder
from .request import json_response


async def healthz(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    threads, messages, corrupt = catalog.stats()
    body = {
        "status": "ok" if catalog.ready else "starting",
        "pid": os.getpid(),  # with workers > 1: which process answered
        "threads": threads,
        "messages": messages,
        "corrupt_lines": corrupt,
        "corrupt": {e.id: [[o, n] for o, n in e.messages.corrupt]
                    for e in catalog.threads.values() if e.messages.corrupt},
        "changes_published": request.app[FEED].published,
        "watcher": dataclasses.asdict(request.app[WATCH]),
    }
    return json_response(encoder.encode(body), 200 if catalog.ready else 503)
