"""Group commit: concurrent creates on a thread share one write and one fsync.

Callers `await append(line)`; the first caller of a batch starts a drain task that writes
everything queued so far under the thread lock in a worker thread, fsyncs once (per the policy)
and resolves every caller's future with the offset its line starts at. The lines are indexed (and
their events sent) as soon as they are in the file, while the fsync runs: every other reader of
the file sees them from then on anyway; only the callers' answers wait for the disk. A bounded
queue per thread makes a flood of creates wait instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .append import Appended, Contended, append_lines

T = TypeVar("T")


class ThreadWriter:
    """All in-process writes to one thread: batched appends, and exclusive work (rewrites)."""

    def __init__(self, folder: Path, durable: bool, queue_limit: int,
                 observe: Callable[[float], None] | None = None,
                 written: Callable[[bytes, Appended], None] | None = None) -> None:
        self.folder = folder
        self.durable = durable
        self.observe = observe  # told the seconds each batch's write + fsync took (metrics)
        # Told each batch's bytes and where they landed once they are in the file, before the
        # fsync and before any caller is answered (the index takes them from here instead of
        # reading them back; events go out from there without waiting for the disk).
        self.written = written
        self.lock = asyncio.Lock()  # in-process; the flock in store.files covers other processes
        self._limit = queue_limit
        self._queued = 0  # lines appended or waiting to be (bounded by the limit)
        self._room: deque[asyncio.Future[None]] = deque()  # callers waiting for room
        self._pending: list[tuple[bytes, asyncio.Future[int]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def append(self, line: bytes) -> int:
        """Append one line (no trailing newline); return the offset it starts at once durable."""
        loop = asyncio.get_running_loop()
        while self._queued >= self._limit:  # full: wait for room (rare; no lock on the fast path)
            waiter: asyncio.Future[None] = loop.create_future()
            self._room.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: hand the room on
                raise
        # Counted until written, not until its caller goes: a caller cancelled here cancels only
        # its own future, and its line is written with its batch all the same (the drain skips
        # answering a future that is done), so it holds its room in the queue until then.
        self._queued += 1
        fut: asyncio.Future[int] = loop.create_future()
        self._pending.append((line, fut))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._run())
        return await fut

    def _wake_one(self) -> None:
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._write(loop, batch)
            finally:
                self._queued -= len(batch)
                for _ in batch:
                    self._wake_one()

    async def _write(self, loop: asyncio.AbstractEventLoop,
                     batch: list[tuple[bytes, asyncio.Future[int]]]) -> None:
        """Write one batch and answer its callers (their offsets, or the error)."""
        data = b"".join(line + b"\n" for line, _ in batch)
        told: Callable[[Appended], None] | None = None
        if self.written is not None:
            tell = self.written

            def in_file(done: Appended) -> None:  # in the worker thread, before its fsync
                with contextlib.suppress(RuntimeError):  # the loop is closing: nobody to tell
                    loop.call_soon_threadsafe(tell, data, done)
            told = in_file
        try:
            async with self.lock:
                began = time.perf_counter()
                # `written` runs on the loop before this await returns (the same thread queues
                # both callbacks, in order), so the index has the lines before callers hear back.
                done = await loop.run_in_executor(
                    None, append_lines, self.folder, data, self.durable, told)
                if self.observe is not None:
                    self.observe(time.perf_counter() - began)
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else OSError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        start = done.start
        for n, (line, fut) in enumerate(batch):
            if not fut.done():
                if n == 0 and done.lost_first:  # glued to another writer's line: never served
                    fut.set_exception(Contended("an append's first line is glued to another "
                                                "writer's"))
                else:
                    fut.set_result(start)
            start += len(line) + 1

    async def exclusive(self, fn: Callable[[], T]) -> T:
        """Run blocking `fn` in a worker thread with no append of this process in flight."""
        async with self.lock:
            return await asyncio.get_running_loop().run_in_executor(None, fn)
