"""Read-your-writes across the workers of one server (`workers = N`).

Each worker keeps its own index, which its watcher brings up to date within milliseconds of
another worker's write. A client's next request can be quicker than that and reach another
worker (the SDKs pool connections; the kernel spreads them over the workers): it must still see
the write it was told is done. So a worker marks each thread it writes, before it answers, in a
small table in memory the workers share (mapped by the parent before it forks them: no file
anyone could truncate or replace): a stamp per hash bucket of thread ids, and one for the set of
threads (created, renamed or deleted). Before it reads a thread, a worker compares the thread's
bucket with the stamp it saw there when it last looked at that thread (~0.2 µs), and when they
differ it brings the thread up to date first: two stats when nothing changed (a bucket shared
with another thread), a sync when something did. A list of threads, when the set's stamp moved,
first looks in a worker thread for what changed: names on disk and in the index that differ,
and the indexed threads of buckets that moved since it last looked.

A stamp is a value no writer wrote before (a random prefix of the writer's and a counter): a
write that races another one on the same bucket leaves one of the two new values there, either of
which differs from what readers saw. A single process has no table and pays nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import mmap
import os
import struct
from pathlib import Path
from zlib import crc32

from ..ids import is_thread_id
from .sync import Indexer

log = logging.getLogger(__name__)

BUCKETS = 4096
_STAMP = struct.Struct("=Q")
_unpack = _STAMP.unpack_from
_SIZE = 8 * (BUCKETS + 1)
_SET = BUCKETS  # the last stamp: the set of threads
_ALL = "\0threads"  # the set's key among the per-thread ones


class Stamps:
    """The shared table: anonymous shared memory, made before the workers are forked."""

    def __init__(self) -> None:
        self.mem = mmap.mmap(-1, _SIZE, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)  # zeros
        self._pid = 0
        self._prefix = 0
        self._next = itertools.count(1)

    @staticmethod
    def bucket(thread_id: str) -> int:
        return crc32(thread_id.encode(errors="surrogatepass")) % BUCKETS

    def at(self, bucket: int) -> int:
        value: int = _STAMP.unpack_from(self.mem, 8 * bucket)[0]
        return value

    def mark(self, thread_id: str, thread_set: bool = False) -> int:
        """This process wrote `thread_id` (and changed the set of threads, or a thread's own
        fields, when `thread_set`)."""
        if os.getpid() != self._pid:  # first use, or forked since: a prefix of its own
            self._pid, self._next = os.getpid(), itertools.count(1)
            self._prefix = int.from_bytes(os.urandom(4), "little") << 32
        stamp = self._prefix | (next(self._next) & 0xFFFFFFFF)
        _STAMP.pack_into(self.mem, 8 * self.bucket(thread_id), stamp)
        if thread_set:
            _STAMP.pack_into(self.mem, 8 * _SET, stamp)
        return stamp

    def close(self) -> None:
        self.mem.close()


class Peers:
    """This process's view of the table: the stamps it has caught up with, and the catching up."""

    def __init__(self, stamps: Stamps, indexer: Indexer) -> None:
        self.stamps = stamps
        self.indexer = indexer
        self._mem = stamps.mem
        self._start = [stamps.at(b) for b in range(BUCKETS + 1)]  # before the index is built
        self._swept = bytes(self._mem[:8 * BUCKETS])  # the buckets when the set was last swept
        # Per thread (indexed here): its bucket's offset in the table, and the stamp seen there
        # when this process last caught up with it.
        self._seen: dict[str, tuple[int, int]] = {}
        self._syncing: dict[str, asyncio.Task[None]] = {}
        self.catch_ups = 0  # started because a stamp moved (a metric, and for tests)
        self.syncs = 0  # threads a catch-up found changed

    def behind(self, thread_id: str) -> bool:
        """Whether another process may have written this (indexed) thread since this one last
        caught up with it: the check before every read (~0.2 µs), so no await in it."""
        seen = self._seen.get(thread_id)
        if seen is None:
            threads = self.indexer.catalog.threads
            if thread_id not in threads:
                return False  # a thread new here: the caller looks for its folder anyway
            if len(self._seen) > 2 * len(threads) + 1024:  # threads deleted since: forget them
                self._seen = {k: v for k, v in self._seen.items() if k in threads or k == _ALL}
            bucket = Stamps.bucket(thread_id)
            seen = self._seen[thread_id] = (8 * bucket, self._start[bucket])
        return _unpack(self._mem, seen[0])[0] != seen[1] or (
            bool(self._syncing) and thread_id in self._syncing)

    def wrote(self, thread_id: str, thread_set: bool = False) -> None:
        """Mark a write of this process's, done and indexed, before it is acknowledged. A
        process need not catch up with its own writes: when the thread's files are exactly as
        indexed right after the mark, any write whose mark this one replaced (done before its
        mark) is in the index too, and the new stamp counts as seen. The set's stamp counts as
        seen when nobody else had moved it since this process last looked (a write of another's
        landing in the microsecond between that look and this mark is left to the watcher)."""
        before = _unpack(self._mem, 8 * _SET)[0] if thread_set else 0
        stamp = self.stamps.mark(thread_id, thread_set)
        if thread_id in self.indexer.catalog.threads and self.indexer.is_current(thread_id):
            self._seen[thread_id] = (8 * Stamps.bucket(thread_id), stamp)
        if thread_set and before == (self._seen.get(_ALL) or (0, self._start[_SET]))[1]:
            self._seen[_ALL] = (8 * _SET, stamp)

    async def thread(self, thread_id: str) -> None:
        """Catch up with whatever other processes wrote to this thread before asking."""
        if not self.behind(thread_id) and thread_id not in self._syncing:
            return
        fresh = None
        if (seen := self._seen.get(thread_id)) is not None:
            now = _unpack(self._mem, seen[0])[0]
            fresh = (seen[0], now) if now != seen[1] else None
        await self._catch_up(thread_id, fresh)

    async def threads(self) -> None:
        """The same for the set of threads (a list of them)."""
        at, stamp = self._seen.get(_ALL) or (8 * _SET, self._start[_SET])
        now = _unpack(self._mem, at)[0]
        if now != stamp or _ALL in self._syncing:
            await self._catch_up(_ALL, (at, now) if now != stamp else None)

    async def _catch_up(self, key: str, seen: tuple[int, int] | None) -> None:
        # A request arriving while a catch-up runs waits for it too (it may be after the same
        # write); a newer stamp starts another, after the one running.
        task = self._syncing.get(key)
        if seen is not None:
            self._seen[key] = seen
            self.catch_ups += 1
            task = self._syncing[key] = asyncio.create_task(self._run(key, task))
        if task is not None:
            await asyncio.shield(task)

    async def _run(self, key: str, before: asyncio.Task[None] | None) -> None:
        try:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            for thread_id in await self._affected(key):
                if not self.indexer.is_current(thread_id):
                    await self.indexer.sync(thread_id)
                    self.syncs += 1
                if thread_id not in self.indexer.catalog.threads:
                    self._seen.pop(thread_id, None)  # gone: remember nothing of it
        except Exception:  # the watcher still brings the change within milliseconds
            log.exception("catching up with another process's write to %r", key)
        finally:
            if self._syncing.get(key) is asyncio.current_task():
                del self._syncing[key]

    async def _affected(self, key: str) -> list[str]:
        if key != _ALL:
            return [key]
        now = bytes(self._mem[:8 * BUCKETS])
        last, self._swept = self._swept, now
        return await asyncio.get_running_loop().run_in_executor(None, self._sweep, last, now)

    def _sweep(self, last: bytes, now: bytes) -> list[str]:
        """The threads the set's stamp may stand for (in a worker thread): created or deleted
        ones (names on disk and in the index that differ), and indexed ones of a bucket that
        moved whose files are not as indexed (a thread.json rewritten)."""
        pairs = zip(memoryview(last).cast("Q"), memoryview(now).cast("Q"), strict=True)
        moved = {b for b, (x, y) in enumerate(pairs) if x != y}
        known = set(self.indexer.catalog.threads)
        on_disk = set(_thread_names(self.indexer.threads_dir))
        out = on_disk ^ known
        if moved:
            out.update(t for t in known & on_disk
                       if Stamps.bucket(t) in moved and not self.indexer.is_current(t))
        return sorted(out)


def _thread_names(threads_dir: Path) -> list[str]:
    """The thread folders' names, from the directory's entries alone (no stat per thread)."""
    try:
        with os.scandir(threads_dir) as entries:
            return [e.name for e in entries if is_thread_id(e.name) and e.is_dir()]
    except FileNotFoundError:
        return []
