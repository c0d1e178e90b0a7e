"""SSE endpoints: `GET /v1/threads/{thread_id}/events` and `GET /v1/events`.

Subscribe first, then replay (from the journal after `Last-Event-ID`, or after `?after=<message>`),
then stream live events, skipping live ones the replay already sent: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp_sse import EventSourceResponse

from ..errors import InvalidRequest
from ..events.hub import POSITION_ID, Event, Replay, Subscription, Write
from ..keys import CONFIG, HUB, REPO
from .request import query

DIRECT_LIMIT = 64 * 1024  # bytes waiting in the transport beyond which fan-out stops writing
log = logging.getLogger(__name__)
REPLAY_CHUNK = 256  # replayed events built and written at a time
SEND_TIMEOUT = 10.0  # a client that accepts nothing for this long is cut off (it can resume)


def _last_event_id(request: web.Request) -> int | None:
    """A journal event id, or None: no id sent. A thread stream's position id (`0:<message>`)
    is taken apart by `_resume_point`; anywhere else it is invalid."""
    raw = _raw_last_event_id(request)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidRequest(f"Invalid Last-Event-ID {raw!a}: expected an event id this server "
                             "sent.", param="last_event_id")
    return int(raw)


def _raw_last_event_id(request: web.Request) -> str | None:
    return request.headers.get("Last-Event-ID") or query(request).get("last_event_id")


def _resume_point(request: web.Request) -> tuple[int | None, str | None]:
    """Where a thread stream starts: (journal event id, None), or (None, message id) for
    `?after=` and for the position ids of its replays; a Last-Event-ID goes before `?after=`
    (EventSource reconnects to the same URL, sending the last id it saw)."""
    raw = _raw_last_event_id(request)
    if raw and raw.startswith(POSITION_ID) and len(raw) > len(POSITION_ID):
        return None, raw[len(POSITION_ID):]
    last = _last_event_id(request)
    return (last, None) if last is not None else (None, query(request).get("after"))


async def thread_events(request: web.Request) -> web.StreamResponse:
    # A JSON 404 before streaming for an unknown thread.
    entry = await request.app[REPO].thread(request.match_info["thread_id"])
    hub = request.app[HUB]
    last, after = _resume_point(request)
    if after is not None:
        slot = entry.messages.find(after)
        if slot >= 0:
            if request.method == "HEAD":
                return _head()
            sub = hub.subscribe(entry.id, resuming=True)
            return await _stream(request, sub, hub.replay_after_message(entry, slot), None)
        if after != query(request).get("after"):
            last = 0  # resuming after a message since deleted: every journaled one of the thread
        else:
            raise InvalidRequest(f"Invalid 'after': no message found with id '{after}'.",
                                 param="after")
    if request.method == "HEAD":
        return _head()
    return await _subscribe_and_stream(request, entry.id, last)


async def all_events(request: web.Request) -> web.StreamResponse:
    last = _last_event_id(request)
    if request.method == "HEAD":
        return _head()
    return await _subscribe_and_stream(request, None, last)


def _head() -> web.Response:
    """HEAD: a stream's headers, no stream."""
    return web.Response(content_type="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _subscribe_and_stream(request: web.Request, thread_id: str | None, last: int | None
                                ) -> web.StreamResponse:
    """Subscribe first, then read what to replay: nothing can fall between the two."""
    hub = request.app[HUB]
    sub = hub.subscribe(thread_id, resuming=last is not None)
    try:
        replay: AsyncIterator[list[Replay]] | None = None
        if last is not None:
            replay, last = await hub.replay_since(last, thread_id)
    except BaseException:
        hub.unsubscribe(sub)
        raise
    return await _stream(request, sub, replay, last)


def _direct_writer(transport: Any, chunked: bool) -> Callable[[Sequence[Event]], Write | None]:
    """The socket write that sends events, made by the hub's fan-out: no task switch per
    subscriber. Each event is one HTTP chunk when the response is chunked (HTTP/1.1); an
    HTTP/1.0 response is the bare event stream. Declines when the client is not keeping up (its
    bytes are still in the kernel's and our buffers): the events are then queued for the
    stream's own task, which waits for the client to drain."""
    # Duck-typed: uvloop's transports are not asyncio.WriteTransport subclasses.
    send = transport.write

    def direct(events: Sequence[Event]) -> Write | None:
        if transport.is_closing() or transport.get_write_buffer_size() > DIRECT_LIMIT:
            return None
        return send, b"".join(e.chunk if chunked else e.frame for e in events)
    return direct


async def _send(resp: EventSourceResponse, sub: Subscription, data: bytes) -> None:
    """Write to the stream, waiting for the client to take it for at most SEND_TIMEOUT (then
    TimeoutError: it is cut off and resumes). `busy` meanwhile: the fan-out queues events for
    the stream instead of writing them, and a shutdown cuts the connection instead of waiting."""
    sub.busy = True
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await resp.write(data)
    finally:
        sub.busy = False


async def _nothing() -> AsyncIterator[list[Replay]]:
    return
    yield


async def _stream(request: web.Request, sub: Subscription,
                  replay: AsyncIterator[list[Replay]] | None, last: int | None
                  ) -> web.StreamResponse:
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
        await _send(resp, sub, b": connected\n\n")
        sub.resume_from(last or 0)
        async for items in replay or _nothing():  # bounded memory however far back
            if sub.closed:  # shutting down (or dropped): stop replaying
                break
            for i in range(0, len(items), REPLAY_CHUNK):
                if sub.closed:
                    break
                built = await hub.replay_events(items[i:i + REPLAY_CHUNK])
                if built:
                    await _send(resp, sub, b"".join(e.frame for e in built))
                    sub.sent_upto = max(sub.sent_upto, *(e.journal_id for e in built))
                    sub.high = max(sub.high, *(e.num for e in built))
                    # sent_upto covers the journaled ones: a resume from far back must not keep
                    # every id it replayed for the stream's whole life.
                    sub.sent_ids.update(e.message_id for e in built if not e.journal_id)
        if transport is not None:
            # aiohttp chunks a response of unknown length for HTTP/1.1 only (`resp.chunked` is
            # no guide: aiohttp_sse sets it after the headers are out, whatever the version).
            sub.go_live(_direct_writer(transport, request.version >= HttpVersion11),
                        transport.is_closing)
        while (events := await sub.wait()) is not None:
            if not events:  # poked: is the client still there?
                if transport is None or transport.is_closing() or not resp.is_connected():
                    break
                continue
            # Frames are built once per event, whatever the number of subscribers.
            chunk = b"".join(e.frame for e in sub.fitted(events))
            if chunk:
                await _send(resp, sub, chunk)
    except (ConnectionError, TimeoutError, RuntimeError):
        pass  # the client went away or stalled; it resumes with Last-Event-ID
    except Exception:
        if not resp.prepared:
            raise  # still time for a JSON error
        # Headers are out: no error response can follow. End the stream; the client resumes.
        log.exception("event stream failed; closing it")
    finally:
        hub.unsubscribe(sub)
        if resp.prepared:
            with contextlib.suppress(Exception):
                resp.stop_streaming()
    return resp
