"""The watcher: keeps the index in step with what other programs do to the data folder.

A watchfiles task reports changed paths; each names a thread, and that thread is synced (the same
`Indexer.sync` the server's own writes use, which reads only the bytes past the indexed end). Syncs
are coalesced per thread: while one runs, further changes mark the thread dirty and it runs once
more. A periodic reconcile catches anything a lost or overflowed notification missed. One failing
thread is logged and never stops the watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, awatch

from .config import Config
from .index.sync import Indexer
from .store.layout import MESSAGES, THREAD_JSON, list_thread_ids, thread_id_of

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 30.0


@dataclass
class WatchStats:
    batches: int = 0
    paths: int = 0
    syncs: int = 0
    unchanged: int = 0  # changes found already indexed (own appends), no sync needed
    errors: int = 0
    last_batch_at: float = 0.0
    last_lag_ms: float = 0.0  # from a batch arriving to its threads being synced
    reconciles: int = 0  # full passes done (the first one: the watch is in place)
    running: bool = False
    polling: bool = False  # stats the files on a timer (`watch_polling`) rather than OS events


class Syncer:
    """Runs `Indexer.sync` for threads, at most one at a time per thread, never losing a request."""

    def __init__(self, indexer: Indexer, stats: WatchStats) -> None:
        self.indexer = indexer
        self.stats = stats
        self._running: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()

    def request(self, thread_id: str) -> asyncio.Task[None]:
        task = self._running.get(thread_id)
        if task is not None:
            self._dirty.add(thread_id)
            return task
        task = self._running[thread_id] = asyncio.create_task(self._run(thread_id))
        return task

    async def _run(self, thread_id: str) -> None:
        try:
            while True:
                self._dirty.discard(thread_id)
                try:
                    if self.indexer.is_current(thread_id):
                        self.stats.unchanged += 1
                    else:
                        await self.indexer.sync(thread_id)
                        self.stats.syncs += 1
                except Exception:
                    self.stats.errors += 1
                    log.exception("watcher: syncing thread %s failed; will retry on its next "
                                  "change", thread_id)
                if thread_id not in self._dirty:
                    return
        finally:
            self._running.pop(thread_id, None)

    async def drain(self) -> None:
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)


def _relevant(threads_dir: Path) -> object:
    def accept(change: Change, path: str) -> bool:
        p = Path(path)
        if p.parent == threads_dir:  # a thread folder appearing or vanishing
            return True
        return p.name in (MESSAGES, THREAD_JSON) and p.parent.parent == threads_dir
    return accept


Batch = tuple[set[str], int]  # the threads to sync, and how many paths changed


async def _notified(config: Config, root: Path, stop: asyncio.Event) -> AsyncIterator[Batch]:
    async for changes in awatch(
        root,
        watch_filter=_relevant(root),  # type: ignore[arg-type]
        debounce=config.watch_debounce_ms,
        step=config.watch_step_ms,
        stop_event=stop,
        recursive=True,
        ignore_permission_denied=True,
    ):
        ids = {thread_id_of(root, Path(path)) for _, path in changes}
        yield {t for t in ids if t is not None}, len(changes)


Signature = tuple[tuple[int, int, int] | None, ...]


def _signature(folder: Path) -> Signature:
    out: list[tuple[int, int, int] | None] = []
    for name in (THREAD_JSON, MESSAGES):
        try:
            st = os.stat(folder / name)
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def scan(threads_dir: Path) -> dict[str, Signature]:
    """Every thread folder with (inode, size, mtime in ns) of its two files: blocking."""
    return {t: _signature(threads_dir / t) for t in list_thread_ids(threads_dir)}


async def _polled(config: Config, root: Path, stop: asyncio.Event) -> AsyncIterator[Batch]:
    """Stat every thread's files each interval and report the threads that differ. Not
    watchfiles' `force_polling`: its poller (notify's) compares mtimes in whole seconds and not
    sizes, so a second change within the same second as the one before was never reported."""
    loop = asyncio.get_running_loop()
    before: dict[str, Signature] = {}  # so the first pass syncs every thread: the catch-up
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), config.watch_poll_interval_ms / 1000)
            return
        now = await loop.run_in_executor(None, scan, root)
        changed = {t for t in before.keys() | now.keys() if before.get(t) != now.get(t)}
        before = now
        if changed:
            yield changed, len(changed)


def _batches(config: Config, root: Path, stop: asyncio.Event, polling: bool
             ) -> AsyncIterator[Batch]:
    return (_polled if polling else _notified)(config, root, stop)


def _undecodable_path(exc: BaseException) -> bool:
    """Whether watchfiles failed on a path that is not UTF-8 (its Rust side cannot make a string
    of it, and drops the whole batch, other threads' changes with it, each time that path
    changes again)."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_undecodable_path(e) for e in exc.exceptions)
    return "Unable to decode path" in str(exc)


async def reconcile(indexer: Indexer, syncer: Syncer) -> None:
    """Sync every thread on disk and every thread in the index (cheap: two stats each)."""
    loop = asyncio.get_running_loop()
    on_disk = await loop.run_in_executor(None, list_thread_ids, indexer.threads_dir)
    for thread_id in set(on_disk) | set(indexer.catalog.threads):
        syncer.request(thread_id)
    await syncer.drain()
    syncer.stats.reconciles += 1


async def _catch_up(indexer: Indexer, syncer: Syncer) -> None:
    await asyncio.sleep(0.1)
    try:
        await reconcile(indexer, syncer)
    except Exception:
        log.exception("reconcile failed")


async def run(config: Config, indexer: Indexer, syncer: Syncer, stop: asyncio.Event) -> None:
    stats = syncer.stats
    # Absolute, as the paths watchfiles reports are (for a relative data dir, like the default
    # `./data`, they would otherwise never match and every change would be dropped).
    threads_dir = config.threads_dir.absolute()
    catch_up: asyncio.Task[None] | None = None
    polling = config.watch_polling
    while not stop.is_set():
        try:
            threads_dir.mkdir(parents=True, exist_ok=True)
            stats.running, stats.polling = True, polling
            # Whatever changed while no watcher was running; started a moment after the watch
            # itself so that nothing falls between the two. Kept, so that it is not collected
            # half-way and is cancelled with the watcher.
            catch_up = asyncio.create_task(_catch_up(indexer, syncer))
            async for ids, paths in _batches(config, threads_dir, stop, polling):
                arrived = time.monotonic()
                stats.batches += 1
                stats.paths += paths
                stats.last_batch_at = time.time()
                tasks = [syncer.request(t) for t in ids]
                if tasks:
                    await asyncio.gather(*tasks, return_exceptions=True)
                stats.last_lag_ms = (time.monotonic() - arrived) * 1000
        except Exception as exc:
            stats.errors += 1
            if not polling and _undecodable_path(exc):
                # Polling reads names as Python does (any bytes), and still sees changes within
                # watch_poll_interval_ms; a failing notifier would miss them for good.
                polling = True
                log.warning("a path under %s is not valid UTF-8 (%s), which file notifications "
                            "cannot report: polling every %d ms instead", threads_dir, exc,
                            config.watch_poll_interval_ms)
            else:
                log.exception("watcher failed; restarting in 1 s")
        if catch_up is not None:
            catch_up.cancel()
        stats.running = False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def run_reconciler(indexer: Indexer, syncer: Syncer, stop: asyncio.Event) -> None:
    while True:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONCILE_SECONDS)
            return
        try:
            await reconcile(indexer, syncer)
        except Exception:
            log.exception("reconcile failed")


@contextlib.asynccontextmanager
async def watching(config: Config, indexer: Indexer, stats: WatchStats) -> AsyncIterator[None]:
    """Run the watcher and the reconciler for the duration of the block."""
    if not config.watch:
        yield
        return
    syncer = Syncer(indexer, stats)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run(config, indexer, syncer, stop)),
             asyncio.create_task(run_reconciler(indexer, syncer, stop))]
    try:
        yield
    finally:
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=2.0)
        for t in pending:
            t.cancel()
        # No sync may still be applying changes once the index is closed after this block.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(syncer.drain(), 2.0)
