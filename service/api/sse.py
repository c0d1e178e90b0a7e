"""SSE endpoints: `GET /v1/threads/{thread_id}/events` and `GET /v1/events`.

Subscribe first, then replay (from the journal after `Last-Event-ID`, or after `?after=<message>`),
then stream live events, skipping live ones the replay already sent: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ..errors import InvalidRequest
from ..events.hub import CREATED, Event, Subscription
from ..keys import CONFIG, HUB, REPO

SEND_TIMEOUT = 10.0  # a client that accepts nothing for this long is cut off (it can resume)
POLL = 1.0  # how often an idle stream checks that its client is still there


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidRequest(f"Invalid Last-Event-ID '{raw}': expected an event id this server "
                             "sent.", param="last_event_id")
    return int(raw)


async def thread_events(request: web.Request) -> web.StreamResponse:
    # A JSON 404 before streaming for an unknown thread.
    entry = await request.app[REPO].thread(request.match_info["thread_id"])
    hub = request.app[HUB]
    last = _last_event_id(request)
    after = request.query.get("after")
    if after is not None and last is None:
        slot = entry.messages.find(after)
        if slot < 0:
            raise InvalidRequest(f"Invalid 'after': no message found with id '{after}'.",
                                 param="after")
        sub = hub.subscribe(entry.id)
        return await _stream(request, sub, hub.replay_after_message(entry, slot), last)
    sub = hub.subscribe(entry.id)
    replay = await hub.replay_since(last, entry.id) if last is not None else []
    return await _stream(request, sub, replay, last)


async def all_events(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    last = _last_event_id(request)
    sub = hub.subscribe(None)
    replay = await hub.replay_since(last, None) if last is not None else []
    return await _stream(request, sub, replay, last)


async def _send(resp: EventSourceResponse, event: Event) -> None:
    await resp.send(event.data.decode(), id=event.id, event=event.name)


async def _stream(request: web.Request, sub: Subscription, replay: list[Event],
                  last: int | None) -> web.StreamResponse:
    hub = request.app[HUB]
    resp = EventSourceResponse(sep="\n", ping_interval=request.app[CONFIG].sse_ping_seconds,
                               send_timeout=SEND_TIMEOUT)
    transport = request.transport
    if transport is not None:
        # A dropped subscriber's handler may be blocked writing to a client that reads nothing:
        # cut the connection so the handler ends now (the client resumes with Last-Event-ID).
        sub.on_drop = transport.abort
    try:
        await resp.prepare(request)
        sent_upto = last or 0
        sent_ids: set[str | None] = set()
        for event in replay:
            await _send(resp, event)
            sent_upto = max(sent_upto, event.journal_id)
            sent_ids.add(event.message_id)
        while True:
            try:
                live = await asyncio.wait_for(sub.next(), POLL)
            except TimeoutError:
                if transport is None or transport.is_closing() or not resp.is_connected():
                    break
                continue
            if live is None:
                break
            if live.name == CREATED and (0 < live.journal_id <= sent_upto
                                         or live.message_id in sent_ids):
                continue
            await _send(resp, live)
    except (ConnectionResetError, TimeoutError, RuntimeError):
        pass  # the client went away or stalled; it resumes with Last-Event-ID
    finally:
        hub.unsubscribe(sub)
        if resp.prepared:
            with contextlib.suppress(Exception):
                resp.stop_streaming()
    return resp
