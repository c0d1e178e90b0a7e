"""Bringing the catalog in step with the files, and publishing each change exactly once.

Every path that changes what is on disk ends here: the server's own writes call `sync` after
writing, the watcher calls `sync` when a file changes, and own rewrites hand their new content to
`apply_rewrite`. A sync reads from the indexed end to the last newline, so whoever wrote the bytes
they are indexed (and published) once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from pathlib import Path

from ..feed import Change, Feed, Kind
from ..store.append import Appended
from ..store.files import remove_leftovers
from ..store.layout import list_thread_ids
from ..store.lines import crc32
from . import changes, damage
from .build import extend
from .catalog import GONE_KEPT, Catalog, FileState, Tail, ThreadEntry
from .messages import CANONICAL, LARGE, MessageIndex
from .probe import Probe, Seen, as_seen, probe, same_file

log = logging.getLogger(__name__)


SETTLE_SECONDS = 0.015
SETTLE_TRIES = 20


def release_memory() -> None:
    """Hand the heap the build freed (per-chunk lists of lines and ids) back to the OS: glibc
    keeps it otherwise, and the resident size after start-up would overstate the index."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class Indexer:
    def __init__(self, threads_dir: Path, catalog: Catalog, feed: Feed) -> None:
        self.threads_dir = threads_dir
        self.catalog = catalog
        self.feed = feed
        self._locks: dict[str, asyncio.Lock] = {}
        self._tables: asyncio.Task[None] | None = None

    def lock(self, thread_id: str) -> asyncio.Lock:
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = asyncio.Lock()
        return lock

    # --- start-up -------------------------------------------------------------------------------

    async def build(self, progress_every: float = 2.0) -> None:
        """Index every thread folder; log progress (threads, MB, MB/s) on large data dirs."""
        loop = asyncio.get_running_loop()
        for name in await loop.run_in_executor(None, remove_leftovers, self.threads_dir):
            log.info("removed %s, left behind by an interrupted create or delete", name)
        names = await loop.run_in_executor(None, list_thread_ids, self.threads_dir)
        started = last = time.monotonic()
        nbytes = 0
        for i, thread_id in enumerate(names, 1):
            folder = self.threads_dir / thread_id
            try:
                result = await loop.run_in_executor(None, probe, folder, thread_id, Seen(),
                                                    False)
            except Exception:  # one unreadable folder must not keep the server from starting
                log.exception("indexing: skipped thread %s (the watcher retries it)", thread_id)
                continue
            nbytes += result.file.size if result.file is not None else 0
            self._apply(thread_id, None, result, publish=False)
            now = time.monotonic()
            if now - last >= progress_every:
                last = now
                mb = nbytes / 1e6
                log.info("indexing: %d/%d threads, %.1f MB, %.0f MB/s", i, len(names), mb,
                         mb / max(now - started, 1e-9))
        threads, messages, corrupt = self.catalog.stats()
        elapsed = time.monotonic() - started
        log.info("index ready: %d threads, %d messages, %d corrupt lines, %.1f MB in %.2f s",
                 threads, messages, corrupt, nbytes / 1e6, elapsed)
        for entry in self.catalog.threads.values():
            entry.messages.compact()
            entry.messages.reserve_table()
        release_memory()
        self.catalog.ready = True
        self._tables = asyncio.create_task(self._build_tables())

    async def _build_tables(self) -> None:
        """Build the id tables the start-up build left out (see messages.py), largest thread
        first, in a worker thread while the server already answers: a lookup then seldom has to
        build one on the event loop. Small threads build theirs on first need (microseconds).
        Each thread's index is taken when its turn comes (a full re-read may have replaced it)."""
        loop = asyncio.get_running_loop()
        order = sorted(((len(e.messages), e.id) for e in self.catalog.threads.values()
                        if len(e.messages) >= LARGE), reverse=True)
        for _, thread_id in order:
            entry = self.catalog.get(thread_id)
            if entry is None or entry.messages.has_table:
                continue
            try:
                await loop.run_in_executor(None, entry.messages.build_table)
            except Exception:  # a lookup builds that one itself
                log.exception("building the id table of thread %s", thread_id)

    async def tables_built(self) -> None:
        """Wait till the id tables the start-up build left out are built."""
        if self._tables is not None:
            await asyncio.shield(self._tables)

    def stop(self) -> None:
        """Stop background work (the id tables still to build) at shutdown."""
        if self._tables is not None:
            self._tables.cancel()

    # --- keeping up -----------------------------------------------------------------------------

    def is_current(self, thread_id: str) -> bool:
        """The thread's files are exactly as indexed, so `sync` would find nothing (most file
        events under load are this server's own appends, already indexed from the bytes it
        wrote): two stats on the loop instead of a sync's lock and worker-thread hop."""
        entry = self.catalog.get(thread_id)
        return entry is not None and as_seen(
            entry.folder, Seen(entry.thread_json, entry.file, entry.tail))

    async def sync(self, thread_id: str, stale: MessageIndex | None = None
                   ) -> ThreadEntry | None:
        """Re-read what changed in one thread folder; return its entry (None: no such thread).
        `stale`: an index a read found bytes in that are not the indexed ones (an edit in place
        the file's size and time do not show): if it is still the thread's index, messages.jsonl
        is read whole (once for any number of readers that found it so)."""
        async with self.lock(thread_id):
            entry = self.catalog.get(thread_id)
            seen = Seen() if entry is None else Seen(entry.thread_json, entry.file, entry.tail)
            whole = stale is not None and entry is not None and entry.messages is stale
            folder = self.threads_dir / thread_id
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, probe, folder, thread_id, seen, True,
                                                whole)
            if entry is not None and result.kind in ("full", "missing"):
                result = await self._settled(folder, thread_id, seen, result, whole)
            return self._apply(thread_id, entry, result)

    async def _settled(self, folder: Path, thread_id: str, seen: Seen, result: Probe,
                       whole: bool) -> Probe:
        """A rewrite by another program (Jan truncates, then writes) may be caught half done:
        read again until the file holds still, so readers never see a thread emptied and
        refilled (and subscribers no run of spurious deletions and creations)."""
        loop = asyncio.get_running_loop()
        for _ in range(SETTLE_TRIES):
            await asyncio.sleep(SETTLE_SECONDS)
            again = await loop.run_in_executor(None, probe, folder, thread_id, seen, True,
                                               whole)
            if same_file(again, result):
                return again
            result = again
        return result

    def apply_appended(self, thread_id: str, data: bytes, done: Appended) -> None:
        """Index lines this process just appended, from the bytes it wrote (no read back), when
        they directly follow what is indexed; otherwise leave them to a sync. Synchronous, so no
        other sync of the thread can interleave; skipped while one is running."""
        entry = self.catalog.get(thread_id)
        if (entry is None or self.lock(thread_id).locked() or (file := entry.file) is None
                or entry.tail.end != done.start or done.before != (file.ino, file.size,
                                                                    file.mtime_ns)
                or done.size != done.start + len(data)):
            return
        state = FileState(ino=done.ino, size=done.size, mtime_ns=done.mtime_ns)
        first = len(entry.messages)
        self._apply(thread_id, entry, Probe(kind="tail", base=done.start, data=data, file=state,
                                            own=True))
        # Lines this process encoded are canonical by construction: no check on first read.
        entry.messages.canon[first:] = bytes([CANONICAL]) * (len(entry.messages) - first)

    async def sync_through(self, thread_id: str, start: int, line: bytes) -> None:
        """Make sure the index holds `line`, which this process wrote at `start`: most often
        `apply_appended` indexed it from its own bytes already. Else waits for a sync already
        running and reads only if that did not index it, so a batch of creates costs one read,
        not one each. The line itself is looked for, not just an indexed end past it: another
        program may have replaced the file with a shorter one meanwhile."""
        crc = crc32(line)

        def held() -> bool:
            entry = self.catalog.get(thread_id)
            return entry is not None and entry.messages.has_line(start, len(line), crc)

        if held():
            return
        async with self.lock(thread_id):
            if held():
                return
        entry = await self.sync(thread_id)
        if entry is not None and not held():
            # Moved in place off another writer's line (store/append.py) after a sync read it
            # glued: same size, and maybe the same mtime on a coarse clock. Read whole.
            await self.sync(thread_id, entry.messages)

    def apply_rewrite(self, thread_id: str, data: bytes, state: FileState) -> None:
        """Index content this process just wrote in place of messages.jsonl (no second read).
        The caller holds `lock(thread_id)` across the rewrite and this call, so no sync sees the
        new file first."""
        entry = self.catalog.get(thread_id)
        if entry is None:
            return
        index, tail = MessageIndex(), Tail()
        extend(index, data, 0, tail)
        self._apply(thread_id, entry, Probe(kind="full", file=state, index=index,
                                            tail=tail))

    def apply_gone(self, thread_id: str) -> None:
        """The caller removed the thread folder (holding `lock(thread_id)`). The lock stays:
        others may be waiting on it, and a folder re-created under the same id must be synced
        under that same lock, not a fresh one beside it."""
        self._apply(thread_id, self.catalog.get(thread_id), Probe(gone=True))

    def _publish(self, kind: Kind, thread_id: str, message_id: str | None = None,
                 offset: int = 0, length: int = -1, generation: int = 0) -> None:
        self.feed.publish(Change(kind=kind, thread_id=thread_id, message_id=message_id,
                                 offset=offset, end=offset + length + 1, generation=generation))

    def _apply(self, thread_id: str, entry: ThreadEntry | None, p: Probe, publish: bool = True
               ) -> ThreadEntry | None:
        if p.gone:
            if entry is not None:
                self.catalog.remove(thread_id)
                if publish:
                    self._publish("thread.deleted", thread_id)
            return None
        created = entry is None
        changed = False
        if entry is None:
            assert p.thread is not None
            entry = ThreadEntry(id=thread_id, folder=self.threads_dir / thread_id, thread=p.thread)
            self.catalog.put(entry)
        elif p.thread is not None and p.thread != entry.thread:
            if p.thread.created_at != entry.thread.created_at:
                self.catalog.touch_order()
            entry.set_thread(p.thread)
            changed = True
        if p.thread_json is not None or p.thread_json_missing:
            entry.thread_json = p.thread_json
        if p.thread is not None:
            entry.undated = p.undated
        if publish and created:
            self._publish("thread.created", thread_id)
        elif publish and changed:
            self._publish("thread.updated", thread_id)
        before, known = entry.messages, len(entry.messages.corrupt)
        if p.kind == "tail":
            self._apply_tail(entry, p, publish)
        elif p.kind in ("full", "missing"):
            self._apply_full(entry, p, publish)
        damage.report(entry, before, known)
        if p.file is not None or p.kind == "missing":
            entry.file = p.file
        return entry

    def _apply_tail(self, entry: ThreadEntry, p: Probe, publish: bool) -> None:
        lines: list[tuple[int, int, str]] = []
        index = entry.messages
        if not p.own:
            entry.trust += 1  # it may have edited lines in place too (index/cache.py)
        first, shadowed = len(index), set(index.shadowed)
        extend(index, p.data, p.base, entry.tail, lines)
        if publish:
            for kind, mid, offset, length, _ in changes.appended(index, first, shadowed, lines):
                self._publish(kind, entry.id, mid, offset, length, entry.generation)

    def _apply_full(self, entry: ThreadEntry, p: Probe, publish: bool) -> None:
        # Not `p.index or ...`: an index of only corrupt lines has len() 0 and is still the file.
        new = p.index if p.index is not None else MessageIndex()
        old = entry.messages
        self.catalog.forget_fd(entry)
        entry.messages = new
        entry.tail = p.tail or Tail()
        entry.generation += 1
        if not publish:
            return
        for kind, mid, offset, length, before in changes.rewritten(old, new):
            self._publish(kind, entry.id, mid, offset, length, entry.generation)
            if kind == "thread.message.deleted":
                entry.gone[mid] = before
                if len(entry.gone) > GONE_KEPT:
                    del entry.gone[next(iter(entry.gone))]
