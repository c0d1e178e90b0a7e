"""Reads on the event loop that never wait for the disk.

A get or a list page reads its bytes with one `pread` on the event loop: a copy from the page
cache, ~2 µs, cheaper than any hop to a thread. But the page cache does not keep a large file
for ever: the kernel drops pages nobody read for a while (on this project's VMs a reclaim daemon
pages out whatever went untouched for ~30 s), and a read of a dropped page waits for the disk,
~60-100 µs here and far more on a busy disk, with the whole loop, every other client, waiting too.

So a read path runs under `Reader.call`: `pread` then asks the kernel for the bytes with
`RWF_NOWAIT` (the page cache only: on a miss the kernel starts the disk read and returns without
waiting for it, ~6-30 µs) and raises `NotResident` instead of waiting. `call` has reader threads
wait for those bytes (the disk reads of many requests overlap) and runs the read again, now from
memory. Gets, list pages, the SSE replay and the background prover read this way; elsewhere
(worker threads, the live SSE path, whose lines were just written) `pread` is the plain read.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import files

T = TypeVar("T")

REPEATS = 2  # misses of the same bytes, each loaded again, before a read that may wait
LOADS = 256  # loads for one call (a read of many scattered lines) before a read that may wait
GAP = 64 << 10  # missed ranges closer than this are loaded by one read (a replay's lines)
SPAN = 4 << 20  # ... as long as that read stays this short
MAX_READ = 0x7FFFF000  # the most one read(2) returns: a longer range is read in parts, waiting
READERS = 16  # threads waiting for the disk at once: enough to keep a disk's queue busy

_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)  # None: not Linux, or too old a Python
_only_resident: contextvars.ContextVar[bool] = contextvars.ContextVar("only_resident",
                                                                      default=False)


Range = tuple[int, int, int]  # (fd, length, offset)


class NotResident(Exception):
    """Bytes asked for are not all in the page cache: reading them would wait for the disk."""

    def __init__(self, ranges: list[Range]) -> None:
        super().__init__(ranges)
        self.ranges = ranges


def load(fd: int, length: int, offset: int) -> None:
    """Read the bytes (in a reader thread), so that they are in the page cache. The descriptor
    may have been closed and even reused meanwhile (a rewrite, the open-file limit): the read
    then fails or warms the wrong pages, and the retry finds out."""
    with contextlib.suppress(OSError):
        files.pread(fd, length, offset)


def merged(ranges: list[Range]) -> list[Range]:
    """The reads that load `ranges`: those of one file less than GAP apart become one read (the
    lines of a replay or of a filtered page lie close together), at most SPAN long."""
    out: list[Range] = []
    for fd, length, offset in sorted(set(ranges), key=lambda r: (r[0], r[2])):
        if out:
            last_fd, last_length, last_offset = out[-1]
            end = max(last_offset + last_length, offset + length)
            if fd == last_fd and offset <= last_offset + last_length + GAP \
                    and end - last_offset <= SPAN:
                out[-1] = (fd, end - last_offset, last_offset)
                continue
        out.append((fd, length, offset))
    return out


def each(fns: list[Callable[[], T]]) -> list[T]:
    """Every `fn()`, and under `Reader.call` the bytes all of them missed in one `NotResident`
    (a read of scattered lines then waits for their disk reads together, not one after another)."""
    out: list[T] = []
    missed: list[Range] = []
    for fn in fns:
        try:
            out.append(fn())
        except NotResident as exc:
            missed += exc.ranges
    if missed:
        raise NotResident(missed)
    return out


def pread(fd: int, length: int, offset: int) -> bytes:
    """`files.pread`, but under `attempt` (`Reader.call`) it raises `NotResident` rather than
    wait for the disk."""
    global _NOWAIT
    if _NOWAIT is None or not _only_resident.get() or length > MAX_READ:
        return files.pread(fd, length, offset)
    buf = bytearray(length)
    try:
        got = os.preadv(fd, [buf], offset, _NOWAIT)
    except BlockingIOError:
        raise NotResident([(fd, length, offset)]) from None
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        _NOWAIT = None  # a file system that cannot tell: plain reads from now on
        return files.pread(fd, length, offset)
    if got == length:
        return buf  # type: ignore[return-value]  # a bytearray: every reader takes one, no copy
    if offset + got < os.fstat(fd).st_size:
        raise NotResident([(fd, length, offset)])  # part of the range is cached, part is not
    return bytes(buf[:got])  # short: the file ends sooner (rewritten: the caller finds out)


def attempt(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` reading from memory only: `NotResident` names what it would have waited for.
    The fast path of `Reader.call` (no coroutine, no allocation), for callers that go on to
    `Reader.after_miss` themselves."""
    token = _only_resident.set(True)
    try:
        return fn(*args)
    finally:
        _only_resident.reset(token)


class Reader:
    """Runs read paths on the loop, from memory only, with their disk reads in threads."""

    def __init__(self, threads: int = READERS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="threadline-read")
        self.loads = 0  # ranges read by reader threads (a metric)
        self.fallbacks = 0  # calls that read on the loop after all, bytes missing again (metric)

    async def call(self, fn: Callable[..., T], *args: object,
                   again: Callable[[], None] | None = None) -> T:
        """`fn(*args)`, its misses loaded by threads and then run again; `again()` first checks
        that what `args` name is still current after the wait (it raises if not)."""
        try:
            return attempt(fn, *args)
        except NotResident as miss:
            return await self.after_miss(miss, fn, *args, again=again)

    async def after_miss(self, miss: NotResident, fn: Callable[..., T], *args: object,
                         again: Callable[[], None] | None = None) -> T:
        """`call`, once `fn(*args)` has missed `miss`."""
        loop = asyncio.get_running_loop()
        seen: dict[Range, int] = {}
        loads = 0
        ranges = miss.ranges
        while True:
            for r in ranges:
                seen[r] = seen.get(r, 0) + 1
            reads = merged(ranges)
            loads += len(reads)
            if loads > LOADS or max(seen[r] for r in ranges) > REPEATS:
                break  # memory is that short, or the read that scattered: let it wait
            self.loads += len(reads)
            await asyncio.gather(*(loop.run_in_executor(self._pool, load, *r) for r in reads))
            if again is not None:
                again()
            try:
                return attempt(fn, *args)
            except NotResident as exc:
                ranges = exc.ranges
        self.fallbacks += 1
        return fn(*args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
