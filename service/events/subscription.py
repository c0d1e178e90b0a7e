"""One SSE event (its wire form built once) and one stream's subscription with a bounded buffer.

The hub hands each subscription the events meant for it. While the stream is live, idle and its
client keeping up, it answers with the socket write to make (`direct`), which the hub makes in
its fan-out: no task switch per subscriber per event. Otherwise they are queued for the stream's
own task; a queue that fills drops the subscriber (its stream ends; it resumes with
Last-Event-ID), so a stalled client never makes the server buffer without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

CREATED = "thread.message.created"
Write = tuple[Callable[[bytes], Any], bytes]  # a socket write to make now: (write, data)


class Event:
    """One SSE event; its wire forms are built once, however many streams it goes to."""

    __slots__ = ("_chunk", "_frame", "data", "id", "journal_id", "message_id", "name", "num",
                 "thread_id")

    def __init__(self, name: str, id: str, data: bytes, thread_id: str, journal_id: int,
                 message_id: str | None) -> None:
        self.name = name
        self.id = id
        # Ids never go down on a stream: compared as numbers. A replayed message older than the
        # journal has a position id (`0:<message id>`), before every journaled one.
        self.num = int(id) if id.isdigit() else 0
        self.data = data
        self.thread_id = thread_id
        self.journal_id = journal_id  # > 0 for message creations
        self.message_id = message_id
        self._frame: bytes | None = None
        self._chunk: bytes | None = None

    @property
    def frame(self) -> bytes:
        """The event on the wire. Compact JSON holds no raw newline, so `data` is one line."""
        if self._frame is None:
            self._frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (
                self.id.encode(), self.name.encode(), self.data)
        return self._frame

    def with_id(self, num: int) -> Event:
        """The same event under a later id (see `Subscription.fitted`)."""
        return Event(self.name, str(num), self.data, self.thread_id, self.journal_id,
                     self.message_id)

    @property
    def chunk(self) -> bytes:
        """The frame as one HTTP/1.1 chunk (for writes that bypass the response's writer)."""
        if self._chunk is None:
            frame = self.frame
            self._chunk = b"%x\r\n%s\r\n" % (len(frame), frame)
        return self._chunk


class Subscription:
    # Slots: a fan-out reads these for every stream on every event.
    __slots__ = ("_queue", "_queued_bytes", "_skip", "_wake", "after_seq", "busy", "closed",
                 "direct", "dropped", "gone", "high", "limit", "limit_bytes", "on_drop",
                 "sent_ids", "sent_upto", "thread_id")

    def __init__(self, thread_id: str | None, limit: int, limit_bytes: int = 8 << 20) -> None:
        self.thread_id = thread_id
        self.limit = limit  # events queued at most
        self.limit_bytes = limit_bytes  # and bytes of them, beyond the first batch
        self._queued_bytes = 0
        self.dropped = False
        self.closed = False
        self.on_drop: Callable[[], None] | None = None  # e.g. abort a connection stuck writing
        self.after_seq = 0  # changes up to this feed sequence number are not for this stream
        # Set by the stream once live: the write that sends events to the client, to be made at
        # once, or None if the client is behind. Used only while nothing is queued and the
        # stream is not itself writing, so order holds; it spares a task wake-up per subscriber
        # per event.
        self.direct: Callable[[Sequence[Event]], Write | None] | None = None
        # Set by the stream once live: True once its client is gone (checked each second
        # without waking the stream's task).
        self.gone: Callable[[], bool] | None = None
        self.busy = False
        self.sent_upto = 0  # creations up to this event id were replayed: skip them live
        self.sent_ids: set[str | None] = set()
        self._skip = False  # it replayed: live creations may be ones it already sent
        self.high = 0  # a replaying stream's highest event id sent (see fitted)
        self._queue: deque[Event] = deque()
        self._wake = asyncio.Event()

    def go_live(self, direct: Callable[[Sequence[Event]], Write | None],
                gone: Callable[[], bool]) -> None:
        """The stream's replay is written: from now on events may go straight to its client."""
        self._skip = bool(self.sent_upto or self.sent_ids)
        self.gone = gone
        self.direct = direct

    def resume_from(self, last: int) -> None:
        """The client resumes after event `last`: creations up to it are not sent again, and no
        event goes out under a lower id (another worker's update or deletion may carry one)."""
        self.sent_upto = self.high = last

    def wanted(self, event: Event) -> bool:
        """False for a creation the stream's replay already sent."""
        return not (event.name == CREATED and (0 < event.journal_id <= self.sent_upto
                                               or event.message_id in self.sent_ids))

    def fitted(self, events: Sequence[Event]) -> list[Event]:
        """What a stream that replayed sends of live `events`: not the creations its replay
        already sent, and an update or deletion live since before the replay reached its end
        under the id the stream has reached: a resume from an id lower than that would replay
        creations the stream already sent. (Live-only streams get the hub's order, in which
        ids never go down.)"""
        out = []
        high = self.high
        for e in events:
            if not self.wanted(e):
                continue
            if e.num < high and e.name != CREATED:
                e = e.with_id(high)
            high = max(high, e.num)
            out.append(e)
        self.high = high
        return out

    def push(self, events: Sequence[Event]) -> Write | None:
        """Hand over events for this stream, in order: either the write that sends them, which
        the caller makes before anything else can write to this stream, or None (queued for the
        stream's task, dropped as already sent, or the subscriber dropped)."""
        if self.closed:
            return None
        if self.direct is not None and not self._queue and not self.busy:
            if self._skip:
                events = self.fitted(events)
                if not events:
                    return None
            write = self.direct(events)
            if write is not None:
                return write
        size = sum(len(e.data) for e in events)
        if (len(self._queue) + len(events) > self.limit
                or (self._queue and self._queued_bytes + size > self.limit_bytes)):
            self.dropped = True  # too slow: drop it rather than buffer without bound
            self._queue.clear()
            self._queued_bytes = 0
            self.close()
            if self.on_drop is not None:
                self.on_drop()
            return None
        self._queue.extend(events)
        self._queued_bytes += size
        self._wake.set()
        return None

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    def poke(self) -> None:
        """Wake the stream's handler with nothing to send, to check its client is still there."""
        self._wake.set()

    async def wait(self) -> list[Event] | None:
        """Every event queued (several, after a burst: written as one), [] when only poked,
        None once closed."""
        if not self._queue:
            if self.closed:
                return None
            self._wake.clear()
            await self._wake.wait()
        events = list(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        if not events and self.closed:
            return None
        return events
