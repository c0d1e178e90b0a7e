"""The hub: change feed -> SSE events -> subscribers, each with a bounded buffer.

Changes are taken from the feed in order, message creations are journaled (which gives them their
event ids), and each change becomes one event whose data is the REST JSON of the object. A
subscriber whose buffer fills is dropped (its stream ends; it resumes with Last-Event-ID), so a
stalled client never makes the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from ..feed import Change, Feed
from ..index.catalog import Catalog, ThreadEntry
from ..index.reader import Stale, message_bytes
from ..models import encoder
from .journal import Journal, Record

log = logging.getLogger(__name__)

CREATED = "thread.message.created"
Replay = tuple[int, str, str]  # (event id, thread id, message id) of a creation to replay
POKE_SECONDS = 1.0


class Event:
    """One SSE event; its wire form is built once, however many streams it goes to."""

    __slots__ = ("_frame", "data", "id", "journal_id", "message_id", "name", "thread_id")

    def __init__(self, name: str, id: str, data: bytes, thread_id: str, journal_id: int,
                 message_id: str | None) -> None:
        self.name = name
        self.id = id
        self.data = data
        self.thread_id = thread_id
        self.journal_id = journal_id  # > 0 for message creations
        self.message_id = message_id
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        """The event on the wire. Compact JSON holds no raw newline, so `data` is one line."""
        if self._frame is None:
            self._frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (
                self.id.encode(), self.name.encode(), self.data)
        return self._frame


class Subscription:
    def __init__(self, thread_id: str | None, limit: int) -> None:
        self.thread_id = thread_id
        self.limit = limit
        self.dropped = False
        self.closed = False
        self.on_drop: Callable[[], None] | None = None  # e.g. abort a connection stuck writing
        self.after_seq = 0  # changes up to this feed sequence number are not for this stream
        # Set by the stream once live: writes a frame to the client now, False if it cannot
        # (the client is behind). Used only while nothing is queued and the stream is not itself
        # writing, so order holds; it spares a task wake-up per subscriber per event.
        self.direct: Callable[[bytes], bool] | None = None
        self.busy = False
        self.sent_upto = 0  # creations up to this event id were replayed: skip them live
        self.sent_ids: set[str | None] = set()
        self._queue: deque[Event] = deque()
        self._wake = asyncio.Event()

    def wanted(self, event: Event) -> bool:
        """False for a creation the stream's replay already sent."""
        return not (event.name == CREATED and (0 < event.journal_id <= self.sent_upto
                                               or event.message_id in self.sent_ids))

    def push(self, event: Event) -> None:
        if self.closed:
            return
        if (self.direct is not None and not self._queue and not self.busy
                and (not self.wanted(event) or self.direct(event.frame))):
            return
        if len(self._queue) >= self.limit:
            self.dropped = True  # too slow: drop it rather than buffer without bound
            self._queue.clear()
            self.close()
            if self.on_drop is not None:
                self.on_drop()
            return
        self._queue.append(event)
        self._wake.set()

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
        if not events and self.closed:
            return None
        return events


class Hub:
    def __init__(self, catalog: Catalog, feed: Feed, journal: Journal, limit: int) -> None:
        self.catalog = catalog
        self.journal = journal
        self.limit = limit
        self.subscribers: set[Subscription] = set()
        self.watermark = 0  # highest event id emitted: the id of events that create nothing
        self._changes: deque[tuple[int, Change]] = deque()
        self._seq = 0  # changes received from the feed so far
        self._wake = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._poke_task: asyncio.Task[None] | None = None
        feed.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        self._seq += 1
        self._changes.append((self._seq, change))
        self._wake.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.journal.load)
        missing = self._unjournaled()
        if missing:
            await loop.run_in_executor(None, self.journal.append, missing)
        self.watermark = self.journal.end
        self._pump_task = asyncio.create_task(self._pump())
        self._poke_task = asyncio.create_task(self._poke_all())

    async def stop(self) -> None:
        for sub in list(self.subscribers):
            sub.close()
        for task in (self._pump_task, self._poke_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poke_all(self) -> None:
        """One timer for every stream (not one per stream): each second, idle handlers check
        that their client is still connected."""
        while True:
            await asyncio.sleep(POKE_SECONDS)
            for sub in tuple(self.subscribers):
                sub.poke()

    def subscribe(self, thread_id: str | None, resuming: bool = False) -> Subscription:
        """A new stream. A live-only one skips changes already received from the feed (still on
        their way through the journal) when it subscribed: it starts from now. A resuming one
        takes them, since its replay may not include them yet (duplicates are dropped by id)."""
        sub = Subscription(thread_id, self.limit)
        sub.after_seq = 0 if resuming else self._seq
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        sub.close()

    # --- start-up: journal what was written while no Threadline ran ------------------------------

    @staticmethod
    def _ids_from(entry: ThreadEntry, first_slot: int) -> list[str]:
        index = entry.messages
        return [index.id_at(slot) for slot in range(max(first_slot, 0), len(index))]

    def _unjournaled(self) -> list[Record]:
        records: list[Record] = []
        for entry in self.catalog.ordered():
            index = entry.messages
            last = self.journal.last.get(entry.id)
            if last is None and not self.journal.existed:
                ids = self._ids_from(entry, len(index) - 1) if len(index) else []
                records.append(Record(t=entry.id, b=ids[-1] if ids else None))
                continue
            known = last.m or last.b if last is not None else None
            slot = index.find(known) if known else -1
            # No record: the thread appeared while no Threadline ran, all of it is new. Its last
            # journaled message since deleted: walk the whole thread, skipping what is journaled.
            for mid in self._ids_from(entry, slot + 1):
                if self.journal.id_of(entry.id, mid) is None:
                    records.append(Record(t=entry.id, m=mid))
        return records

    # --- live ------------------------------------------------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = list(self._changes)
            self._changes.clear()
            created = [Record(t=c.thread_id, m=c.message_id, o=c.end)
                       for _, c in batch if c.kind == CREATED]
            try:
                ids = await loop.run_in_executor(None, self.journal.append, created) \
                    if created else []
            except OSError:
                log.exception("event journal: append failed; events keep flowing with "
                              "watermark ids")
                ids = [self.watermark] * len(created)
            if not self.subscribers:  # nobody listening: the journal is all that must happen
                self.watermark = max(self.watermark, *ids) if ids else self.watermark
                continue
            it = iter(ids)
            for seq, change in batch:
                jid = next(it) if change.kind == CREATED else 0
                try:
                    event = self.event(change, jid)
                    if event is not None:
                        self.fan_out(event, seq)
                except Exception:  # one bad change must not end every stream for good
                    log.exception("event hub: could not publish %s of thread %s", change.kind,
                                  change.thread_id)

    def fan_out(self, event: Event, seq: int) -> None:
        for sub in tuple(self.subscribers):
            if (sub.thread_id is None or sub.thread_id == event.thread_id) and seq > sub.after_seq:
                sub.push(event)
                if sub.dropped:
                    self.subscribers.discard(sub)

    def event(self, change: Change, journal_id: int = 0) -> Event | None:
        """The SSE event for a change, or None when its object is already gone again."""
        self.watermark = max(self.watermark, journal_id)
        tid, mid, kind = change.thread_id, change.message_id, change.kind
        event_id = str(journal_id or self.watermark)
        if kind == "thread.deleted":
            data = encoder.encode({"id": tid, "object": "thread.deleted", "deleted": True})
        elif kind == "thread.message.deleted":
            data = encoder.encode({"id": mid, "object": "thread.message.deleted",
                                   "deleted": True, "thread_id": tid})
        else:
            entry = self.catalog.get(tid)
            if entry is None:
                return None
            if mid is None:
                data = entry.thread_bytes
            else:
                found = self.message(entry, mid)
                if found is None:
                    return None
                data = found
        return Event(kind, event_id, data, tid, journal_id, mid)

    def message(self, entry: ThreadEntry, message_id: str) -> bytes | None:
        slot = entry.messages.find(message_id)
        if slot < 0:
            return None
        try:
            return message_bytes(self.catalog, entry, slot)
        except (Stale, OSError):
            return None

    async def replay_since(self, event_id: int, thread_id: str | None
                           ) -> tuple[list[Replay], int]:
        """What to replay after `event_id`, from the journal (events are built later, a chunk at
        a time), and the id it counts from (clamped to the journal's end)."""
        entries, since = await asyncio.get_running_loop().run_in_executor(
            None, self.journal.read_after, event_id, thread_id)
        return [(offset, rec.t, rec.m) for offset, rec in entries if rec.m], since

    def replay_after_message(self, entry: ThreadEntry, slot: int) -> list[Replay]:
        """What to replay for the messages after `slot` of a thread (`?after=<message_id>`)."""
        return [(self.journal.id_of(entry.id, mid) or 0, entry.id, mid)
                for mid in self._ids_from(entry, slot + 1)]

    def replay_events(self, items: list[Replay]) -> list[Event]:
        """Creation events for replay items whose messages still exist."""
        events = []
        for journal_id, thread_id, message_id in items:
            entry = self.catalog.get(thread_id)
            data = self.message(entry, message_id) if entry is not None else None
            if data is not None:
                events.append(Event(CREATED, str(journal_id or self.watermark), data, thread_id,
                                    journal_id, message_id))
        return events
