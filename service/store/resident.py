"""Reads on the event loop that never wait for the disk.

A get or a list page reads its bytes with one `pread` on the event loop: a copy from the page
cache, ~2 µs, cheaper than any hop to a thread. But the page cache does not keep a large file
for ever: the kernel drops pages nobody read for a while (on this project's VMs a reclaim daemon
pages out whatever went untouched for ~30 s), and a read of a dropped page waits for the disk,
~60 µs here and far more on a busy disk, with the whole loop, every other client, waiting too.

So a read path runs under `only_resident`: `pread` then asks the kernel for the bytes with
`RWF_NOWAIT` (the page cache only; a miss starts the disk read and fails at once) and raises
`NotResident` instead of waiting. `call` catches it, has a reader thread wait for those bytes
(the disk reads of many requests then overlap), and runs the read again, now from memory.
Elsewhere (worker threads, the SSE replay) `pread` is the plain blocking read.
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

TRIES = 3  # reads from memory tried before one that may wait (the pages went again meanwhile)
READERS = 16  # threads waiting for the disk at once: enough to keep a disk's queue busy

_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)  # None: not Linux, or too old a Python
_only_resident: contextvars.ContextVar[bool] = contextvars.ContextVar("only_resident",
                                                                      default=False)


class NotResident(Exception):
    """The bytes asked for are not all in the page cache: reading them would wait for the disk."""

    def __init__(self, fd: int, length: int, offset: int) -> None:
        super().__init__(fd, length, offset)
        self.fd, self.length, self.offset = fd, length, offset

    def load(self) -> None:
        """Read the bytes (in a reader thread), so that they are in the page cache. The
        descriptor may have been closed and even reused meanwhile (a rewrite, the open-file
        limit): the read then fails or warms the wrong pages, and the retry finds out."""
        with contextlib.suppress(OSError):
            files.pread(self.fd, self.length, self.offset)


def pread(fd: int, length: int, offset: int) -> bytes:
    """`files.pread`, but under `only_resident` it raises `NotResident` rather than wait."""
    global _NOWAIT
    if _NOWAIT is None or not _only_resident.get():
        return files.pread(fd, length, offset)
    buf = bytearray(length)
    try:
        got = os.preadv(fd, [buf], offset, _NOWAIT)
    except BlockingIOError:
        raise NotResident(fd, length, offset) from None
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        _NOWAIT = None  # a file system that cannot tell: plain reads from now on
        return files.pread(fd, length, offset)
    if got != length and offset + got < os.fstat(fd).st_size:
        raise NotResident(fd, length, offset)  # part of the range is cached, part is not
    return bytes(buf) if got == length else bytes(buf[:got])  # short: the file ends sooner


class Reader:
    """Runs read paths on the loop, from memory only, with their disk reads in threads."""

    def __init__(self, threads: int = READERS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="threadline-read")
        self.waits = 0  # reads that had to wait for the disk (a metric)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        for _ in range(TRIES):
            token = _only_resident.set(True)
            try:
                return fn(*args)
            except NotResident as exc:
                miss = exc
            finally:
                _only_resident.reset(token)
            self.waits += 1
            await loop.run_in_executor(self._pool, miss.load)
        return fn(*args)  # evicted again each time (memory is that short): wait on the loop

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
