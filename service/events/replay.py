"""What a resuming stream replays, a block at a time: the journal after a `Last-Event-ID`, or a
thread's messages after one of them (`?after=`). Memory stays bounded however far back it goes:
the journal is read in blocks, a thread's ids a chunk at a time, events built per chunk."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from ..index.catalog import Catalog, ThreadEntry
from ..index.messages import MessageIndex
from ..index.reader import Stale, message_bytes
from ..store.resident import NotResident, Range
from .journal import Journal
from .subscription import CREATED, Event

Replay = tuple[int, str, str]  # (event id, thread id, message id) of a creation to replay
CHUNK = 256  # thread messages taken (and events built) at a time
HISTORY = 4096  # ids of an ?after= replay remembered to find its place again after a rewrite
# The id of a replayed message that has no journal record (written before the journal began, or
# journaled too long ago to be remembered): its position in the thread, `0:<message id>`. Sent
# back as Last-Event-ID to the thread's stream, it resumes after that message.
POSITION_ID = "0:"
Built = tuple[list[Event], set[str], set[str]]
Read = Callable[..., Awaitable[Built]]  # runs `events`: the repository's `Reader.call`


class Sync(Protocol):
    """`Indexer.sync`: index a thread now; given the index a read found stale, read it whole."""

    def __call__(self, thread_id: str, stale: MessageIndex | None = None
                 ) -> Awaitable[ThreadEntry | None]: ...


async def since(journal: Journal, event_id: int, thread_id: str | None
                ) -> tuple[AsyncIterator[list[Replay]], int]:
    """The creations journaled after `event_id` (of one thread, or all), in blocks, and the id it
    counts from (clamped to the journal's end: an id from elsewhere cannot mute later events).
    It stops at the journal's end as it is now; later ones reach the stream live."""
    loop = asyncio.get_running_loop()
    start, stop = await loop.run_in_executor(None, journal.bounds, event_id)

    async def blocks() -> AsyncIterator[list[Replay]]:
        offset = start
        while offset < stop:
            entries, offset = await loop.run_in_executor(
                None, journal.read_block, offset, stop, thread_id)
            items = [(o, rec.t, rec.m) for o, rec in entries if rec.m is not None]
            if items:
                yield items
    return blocks(), start


async def after_message(catalog: Catalog, journal: Journal, entry: ThreadEntry, slot: int
                        ) -> AsyncIterator[list[Replay]]:
    """The messages of a thread after `slot` (`?after=<message_id>`), a chunk at a time. A rewrite
    of the file meanwhile (another program deleted or edited a message) moves slots: it goes on
    after the last message it gave, found again by id."""
    thread_id, generation = entry.id, entry.generation
    # The ids given lately (at first: the `after` message), newest last: a rewrite only removes
    # lines or changes them in place, so it goes on after the newest of them still there.
    given: deque[str] = deque([entry.messages.id_at(slot)], maxlen=HISTORY)
    while True:
        now = catalog.get(thread_id)
        if now is None:
            return
        index = now.messages
        if now.generation != generation:
            generation = now.generation
            slot = _newest_given(index, given, min(slot, len(index) - 1))
        upto = min(slot + 1 + CHUNK, len(index))
        if slot + 1 >= upto:
            return
        index.holes()  # the earlier copies of a repeated id are known (and not given)
        shadowed = index.shadowed
        ids = [index.id_at(s) for s in range(slot + 1, upto) if s not in shadowed]
        given.extend(ids)
        yield [(journal.id_of(thread_id, mid) or 0, thread_id, mid) for mid in ids]
        slot = upto - 1
        await asyncio.sleep(0)


def _newest_given(index: MessageIndex, given: deque[str], below: int) -> int:
    """The slot of the newest given message a rewrite left; if none of the last HISTORY is
    left, about where they began (slots only move down when lines go)."""
    for mid in reversed(given):
        if (slot := index.find(mid)) >= 0:
            return slot
    return max(below - len(given), -1)


class ReplayBehind(RuntimeError):
    """A replay could not read a message it must send (its thread is being rewritten by another
    process): the stream ends and its client resumes from the last id it got."""


async def built(catalog: Catalog, journal: Journal, items: list[Replay], watermark: int,
                sync: Sync | None, tries: int,
                read: Read) -> list[Event]:
    """Creation events for replay items whose messages exist. One another process journaled
    that this one has not indexed yet (its watcher has not caught up) is not gone: its thread
    is synced first, or it would be skipped now and dropped when it comes live (its id is
    below what the replay sent). One indexed but not readable where the index says (another
    process rewrote the file since) is synced for and read again, up to `tries` times; if it
    still is not, the stream ends (`ReplayBehind`) before sending past it, and its client
    resumes. `read` runs the reads (a `Reader.call`: bytes the page cache dropped are loaded
    by threads, all of a chunk's at once, not waited for on the loop)."""
    out, missing, stale = await read(events, catalog, journal, items, watermark)
    found_stale: dict[str, MessageIndex] = {}
    for _ in range(tries):
        if not (missing or stale) or sync is None:
            break
        for thread_id in missing | stale:
            with contextlib.suppress(Exception):
                # Stale again after a sync: its index holds bytes edited in place; the second
                # sync reads the file whole (see Indexer.sync).
                entry = await sync(thread_id, found_stale.get(thread_id))
                if thread_id in stale and entry is not None:
                    found_stale[thread_id] = entry.messages
        out, _, stale = await read(events, catalog, journal, items, watermark)
        missing = set()  # still not indexed after a sync: gone
    if stale:
        raise ReplayBehind(f"threads {sorted(stale)} are being rewritten")
    return out


def events(catalog: Catalog, journal: Journal, items: list[Replay], watermark: int) -> Built:
    """Creation events for replay items whose messages still exist, each once: a record that a
    later one of the same message superseded (it was deleted, then restored) is skipped. Only
    when this process knows the later one: one that has not read the journal that far since
    (no append of its own) must not skip the newer record for the older it remembers. Also
    the threads of the messages not found (deleted, or not indexed here yet), and of those
    indexed but not readable where the index says (another process rewrote the file since):
    those must not be skipped, or they are lost to the stream (later live, below its ids)."""
    out: list[Event] = []
    missing: set[str] = set()
    stale: set[str] = set()
    dropped: list[Range] = []  # under Reader.call: bytes to load before a second run
    for journal_id, thread_id, message_id in items:
        if journal_id and (latest := journal.id_of(thread_id, message_id)) is not None \
                and latest > journal_id:
            continue
        entry = catalog.get(thread_id)
        slot = entry.messages.find(message_id) if entry is not None else -1
        if entry is None or slot < 0:
            missing.add(thread_id)
            continue
        try:
            data = message_bytes(catalog, entry, slot)
        except NotResident as exc:
            dropped += exc.ranges
            continue
        except (Stale, OSError):
            stale.add(thread_id)
            continue
        event_id = str(journal_id) if journal_id else _position_id(message_id, watermark)
        out.append(Event(CREATED, event_id, data, thread_id, journal_id, message_id))
    if dropped:
        raise NotResident(dropped)
    return out, missing, stale


def message(catalog: Catalog, entry: ThreadEntry, message_id: str) -> bytes | None:
    """The served bytes of a message, or None when it is gone."""
    slot = entry.messages.find(message_id)
    if slot < 0:
        return None
    try:
        return message_bytes(catalog, entry, slot)
    except (Stale, OSError):
        return None


def _position_id(message_id: str, watermark: int) -> str:
    """A replayed message's id when it has no journal record: its position (or, for an id that
    cannot travel in an SSE id field or a header, the watermark)."""
    if message_id.isascii() and message_id.isprintable() and message_id.strip() == message_id:
        return POSITION_ID + message_id
    return str(watermark)
