"""SSE endpoints: `GET /v1/threads/{thread_id}/events` and `GET /v1/events`.

Subscribe first, then replay (from the journal after `Last-Event-ID`, or after `?after=<message>`),
then stream live events, skipping live ones the replay already sent: no gap, no duplicate.
"""

from __future__ import annotations

import contextlib

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ..errors import InvalidRequest
from ..events.hub import CREATED, Replay, Subscription
from ..keys import CONFIG, HUB, REPO

REPLAY_CHUNK = 256  # replayed events built and written at a time
SEND_TIMEOUT = 10.0  # a client that accepts nothing for this long is cut off (it can resume)


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidRequest(f"Invalid Last-Event-ID {raw!a}: expected an event id this server "
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
        sub = hub.subscribe(entry.id, resuming=True)
        return await _stream(request, sub, hub.replay_after_message(entry, slot), None)
    return await _subscribe_and_stream(request, entry.id, last)


async def all_events(request: web.Request) -> web.StreamResponse:
    return await _subscribe_and_stream(request, None, _last_event_id(request))


async def _subscribe_and_stream(request: web.Request, thread_id: str | None, last: int | None
                                ) -> web.StreamResponse:
    """Subscribe first, then read what to replay: nothing can fall between the two."""
    hub = request.app[HUB]
    sub = hub.subscribe(thread_id, resuming=last is not None)
    try:
        replay: list[Replay] = []
        if last is not None:
            replay, last = await hub.replay_since(last, thread_id)
    except BaseException:
        hub.unsubscribe(sub)
        raise
    return await _stream(request, sub, replay, last)


async def _stream(request: web.Request, sub: Subscription, replay: list[Replay],
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
        # Flush the headers now: a client (EventSource's onopen, a readiness check) should not
        # wait for the first event or ping to learn the stream is open.
        await resp.write(b": connected\n\n")
        sent_upto = last or 0
        sent_ids: set[str | None] = set()
        for i in range(0, len(replay), REPLAY_CHUNK):  # bounded memory however far back
            built = hub.replay_events(replay[i:i + REPLAY_CHUNK])
            if built:
                await resp.write(b"".join(e.frame for e in built))
                sent_upto = max(sent_upto, *(e.journal_id for e in built))
                sent_ids.update(e.message_id for e in built)
        while (events := await sub.wait()) is not None:
            if not events:  # poked: is the client still there?
                if transport is None or transport.is_closing() or not resp.is_connected():
                    break
                continue
            # Frames are built once per event, whatever the number of subscribers.
            chunk = b"".join(e.frame for e in events
                             if not (e.name == CREATED and (0 < e.journal_id <= sent_upto
                                                            or e.message_id in sent_ids)))
            if chunk:
                await resp.write(chunk)
    except (ConnectionError, TimeoutError, RuntimeError):
        pass  # the client went away or stalled; it resumes with Last-Event-ID
    finally:
        hub.unsubscribe(sub)
        if resp.prepared:
            with contextlib.suppress(Exception):
                resp.stop_streaming()
    return resp
