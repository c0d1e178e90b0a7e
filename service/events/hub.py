"""The hub: change feed -> SSE events -> subscribers, each with a bounded buffer.

Changes are taken from the feed in order, message creations are journaled (which gives them their
event ids; recorder.py), and each change becomes one event whose data is the REST JSON of the
object. A subscriber whose buffer fills is dropped (its stream ends; it resumes with
Last-Event-ID), so a stalled client never makes the server buffer without bound.

Latency: the journal is written on the event loop when its lock is free (a worker-thread hop
costs more than the write), and a batch's events are written straight to the subscribers' sockets
(`Subscription.direct`; fanout.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator

from ..feed import Change, Feed
from ..index.catalog import Catalog, ThreadEntry
from ..models import encoder
from . import fanout, replay
from .journal import Journal, Record
from .order import HOLD_SECONDS, InOrder
from .recorder import Recorder
from .replay import POSITION_ID, Replay
from .subscription import CREATED, Event, Subscription, Write

__all__ = ["CREATED", "POSITION_ID", "Event", "Hub", "Replay", "Subscription", "Write"]
log = logging.getLogger(__name__)

POKE_SECONDS = 1.0
# Changes with a journal record: creations (their event ids) and deletions (so that a message or
# thread restored later, even after a restart, is a new creation).
JOURNALED = (CREATED, "thread.message.deleted", "thread.deleted")
SYNC_TRIES = 3  # syncs a message's event may wait for when the index is behind its file


class Hub:
    def __init__(self, catalog: Catalog, feed: Feed, journal: Journal, read: replay.Read,
                 limit: int, limit_bytes: int = 8 << 20,
                 sync: replay.Sync | None = None) -> None:
        self.catalog = catalog
        self._read = read  # runs a replay's reads (Reader.call: no disk waits on the loop)
        self.journal = journal
        self.order = InOrder(journal)
        self._sync = sync  # index a thread now (for another process's creation to come sooner)
        self.recorder = Recorder(catalog, journal, sync)
        self._syncing: dict[str, asyncio.Task[None]] = {}
        self.limit = limit
        self.limit_bytes = limit_bytes
        # In the order they subscribed (a dict, not a set): a fan-out goes round them in that
        # order from a random place.
        self.subscribers: dict[Subscription, None] = {}
        self.watermark = 0  # highest event id emitted: the id of events that create nothing
        self._changes: deque[tuple[int, Change]] = deque()
        self._seq = 0  # changes received from the feed so far
        self._wake = asyncio.Event()
        self._inflight: list[tuple[int, Event]] = []  # the batch being fanned out
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
        await self.recorder.catch_up()
        self.watermark = self.journal.end
        self._pump_task = asyncio.create_task(self._pump())
        self._poke_task = asyncio.create_task(self._poke_all())

    async def stop(self) -> None:
        for sub in list(self.subscribers):
            sub.close()
        for task in (self._pump_task, self._poke_task, *self._syncing.values()):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poke_all(self) -> None:
        """One timer for every stream (not one per stream): each second, the handlers of streams
        whose client is gone (or that cannot tell without their handler) are woken to end."""
        while True:
            await asyncio.sleep(POKE_SECONDS)
            for sub in tuple(self.subscribers):
                if sub.gone is None or sub.gone():
                    sub.poke()

    def subscribe(self, thread_id: str | None, resuming: bool = False) -> Subscription:
        """A new stream. A live-only one skips changes already received from the feed (still on
        their way through the journal) when it subscribed: it starts from now. A resuming one
        takes them, since its replay may not include them yet (duplicates are dropped by id)."""
        sub = Subscription(thread_id, self.limit, self.limit_bytes)
        sub.after_seq = 0 if resuming else self._seq
        self.subscribers[sub] = None
        # A fan-out under way will not reach it: it takes that batch's events for its thread.
        mine = [e for _, e in self._inflight if thread_id in (None, e.thread_id)] if resuming \
            else []
        if mine:
            sub.push(mine)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.pop(sub, None)
        sub.close()

    # --- live ------------------------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            if self.order.held:  # waiting for another process's creation: not for long
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), HOLD_SECONDS / 20)
            else:
                await self._wake.wait()
            self._wake.clear()
            batch = list(self._changes)
            self._changes.clear()
            # Creations and deletions, in feed order (a thread deleted and restored within one
            # batch: its restored messages come after the deletion, with new ids).
            records = [Record(t=c.thread_id, m=c.message_id, o=c.end) if c.kind == CREATED
                       else Record(t=c.thread_id, m=c.message_id, d=True)
                       for _, c in batch if c.kind in JOURNALED]
            ids = await self.recorder.ids(records, self.watermark) if records else []
            if not self.subscribers:  # nobody listening: the journal is all that must happen
                self.watermark = max(self.watermark, *ids) if ids else self.watermark
                self.order.held = []
                self.journal.unseen(time.monotonic() - HOLD_SECONDS)  # drops the stale ones
                continue
            events: list[tuple[int, Event]] = []
            it = iter(ids)
            for seq, change in batch:
                jid = next(it) if change.kind in JOURNALED else 0
                if jid < 0:
                    continue  # a creation seen in a file since rewritten without it
                try:
                    event = self.event(change, jid)
                    stale = None
                    for _ in range(SYNC_TRIES):
                        if (event is not None or change.message_id is None or not self._sync
                                or not self.recorder.has(change.thread_id,
                                                         change.message_id)):
                            break  # sent, or gone (its deletion follows)
                        # Indexed, yet its bytes are not where the index says: another process
                        # rewrote the file since (a delete). The index catches up first; if
                        # that changed nothing, the file is read whole (an edit in place).
                        synced = await self._sync(change.thread_id, stale)
                        stale = synced.messages if synced is not None else None
                        event = self.event(change, jid)
                except Exception:  # one bad change must not end every stream for good
                    log.exception("event hub: could not publish %s of thread %s", change.kind,
                                  change.thread_id)
                    continue
                if event is not None:
                    events.append((seq, event))
            events, waiting_for = self.order.release(events)
            for thread_id in waiting_for - self._syncing.keys():
                if self._sync is not None:
                    self._syncing[thread_id] = asyncio.create_task(self._sync_thread(thread_id))
            if events:
                await self.fan_out(events)

    async def _sync_thread(self, thread_id: str) -> None:
        """Index a thread another process journaled a creation of, which an event is held for.
        Found new, it comes through the feed; otherwise (deleted since, or indexed here before)
        it will not: the held events stop waiting for it."""
        started = time.monotonic()
        try:
            assert self._sync is not None
            await self._sync(thread_id)
            coming = {c.message_id for _, c in self._changes
                      if c.thread_id == thread_id and c.kind == CREATED}
            self.journal.settle_unseen(thread_id, started, coming.__contains__)
            self._wake.set()  # what was held for it may go now
        except Exception:
            log.debug("event hub: sync of thread %s failed", thread_id, exc_info=True)
        finally:
            self._syncing.pop(thread_id, None)

    async def fan_out(self, events: list[tuple[int, Event]]) -> None:
        """Hand a batch of (feed sequence number, event) to every stream it is for, in order.
        The next batch waits for this one, so no stream sees events out of order."""
        self._inflight = events
        try:
            await fanout.deliver(self.subscribers, events)
        finally:
            self._inflight = []

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
                found = replay.message(self.catalog, entry, mid)
                if found is None:
                    return None
                data = found
        return Event(kind, event_id, data, tid, journal_id, mid)

    async def replay_since(self, event_id: int, thread_id: str | None
                           ) -> tuple[AsyncIterator[list[Replay]], int]:
        return await replay.since(self.journal, event_id, thread_id)

    def replay_after_message(self, entry: ThreadEntry, slot: int
                             ) -> AsyncIterator[list[Replay]]:
        return replay.after_message(self.catalog, self.journal, entry, slot)

    async def replay_events(self, items: list[Replay]) -> list[Event]:
        """Creation events for replay items whose messages exist (see `replay.built`)."""
        return await replay.built(self.catalog, self.journal, items, self.watermark, self._sync,
                                  SYNC_TRIES, self._read)

