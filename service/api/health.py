"""`GET /healthz`: 200 once the index is built, with what it holds."""

from __future__ import annotations

import dataclasses
import os

from aiohttp import web

from ..index.messages import LARGE
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
        # Large threads whose id table is still being built after start-up (index/messages.py):
        # their gets by id are answered meanwhile, the first by building it on the spot.
        "id_tables_pending": sum(1 for e in catalog.threads.values()
                                 if len(e.messages) >= LARGE and not e.messages.has_table),
        "corrupt": {e.id: [[o, n] for o, n in e.messages.corrupt]
                    for e in catalog.threads.values() if e.messages.corrupt},
        "changes_published": request.app[FEED].published,
        "watcher": dataclasses.asdict(request.app[WATCH]),
    }
    return json_response(encoder.encode(body), 200 if catalog.ready else 503)
