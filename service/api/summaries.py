"""`GET /v1/thread_summaries?ids=a,b`: what the viewer's thread list shows beyond the thread object.

A Jan-style extension (the OpenAI thread object has no title, count or activity time): per thread
the message count (from the index, no I/O), the `created_at` of the newest message and the text of
the first one (one line read each). Under `/v1` so the API key guards it like the rest. Unknown ids
are left out rather than failing the batch: a thread may vanish between the list and this call.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from ..errors import ApiError, InvalidRequest
from ..index.paging import Order
from ..keys import REPO
from ..repo import Repository
from .request import json_response, query

MAX_IDS = 100
PREVIEW_CHARS = 200


class Summary(msgspec.Struct, kw_only=True):
    id: str
    object: str = "thread.summary"
    message_count: int
    last_activity_at: int
    preview: str | None


class SummaryList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Summary]


class _View(msgspec.Struct):
    created_at: int
    content: list[dict[str, Any]]


class _Page(msgspec.Struct):
    data: list[_View]


_page = msgspec.json.Decoder(_Page)
_encoder = msgspec.json.Encoder()


def _text(view: _View) -> str | None:
    for part in view.content:
        text = part.get("text")
        if part.get("type") == "text" and isinstance(text, dict):
            value = text.get("value")
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:PREVIEW_CHARS]
    return None


async def _edge(repo: Repository, thread_id: str, order: Order) -> _View | None:
    # One line read by offset, exactly what GET .../messages?limit=1 does: small and deliberate.
    data = _page.decode(await repo.list_messages(thread_id, 1, order, None, None, None)).data
    return data[0] if data else None


async def summary(repo: Repository, thread_id: str) -> Summary:
    entry = await repo.thread(thread_id)
    created_at = entry.thread.created_at
    count = len(entry.messages)
    first = await _edge(repo, thread_id, "asc") if count else None
    last = await _edge(repo, thread_id, "desc") if count > 1 else first
    return Summary(id=thread_id, message_count=count,
                   last_activity_at=max(created_at, last.created_at if last else 0),
                   preview=_text(first) if first else None)


async def thread_summaries(request: web.Request) -> web.Response:
    ids = [i for i in query(request).get("ids", "").split(",") if i]
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"Invalid 'ids': at most {MAX_IDS} ids per call.", param="ids")
    repo = request.app[REPO]
    found = []
    for thread_id in dict.fromkeys(ids):
        try:
            found.append(await summary(repo, thread_id))
        except ApiError:
            continue  # unknown or vanished thread: left out
    return json_response(_encoder.encode(SummaryList(data=found)))
