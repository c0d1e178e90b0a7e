"""Canonical verdicts ahead of requests: after start-up, every line's, in the background.

A stored line is served as its bytes once it is known to be canonical (index/canon.py); until
then the first read of it decodes and re-encodes it (~6 µs a line, ~120 µs for a page of 20).
After a restart no line is known, those the server wrote itself included, so the first page of
each stretch of a long thread pays that. Here the verdicts are decided once the id tables are
built, newest threads first, a slice at a time on the event loop: at most 64 lines and 256 KB
(lines over 1 MB are left to their first read). While requests come in (the loop ran other work
between two slices), each slice is followed by a pause three times as long: the pass then takes
at most a quarter of the loop; on an idle server it runs flat out. Reads of bytes the page cache
dropped go through the reader (store/resident.py), on a descriptor of the prover's own (the
catalog's few open files stay those requests use). A thread rewritten meanwhile is left to its
next reads. `prove_lines = false` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from functools import partial

from ..store.files import open_file
from ..store.layout import MESSAGES
from .catalog import Catalog, ThreadEntry
from .messages import UNKNOWN, MessageIndex
from .reader import Stale, check_current, classify

log = logging.getLogger(__name__)

SLICE = 64  # lines decided at most between two turns of the event loop
SLICE_BYTES = 256 << 10  # ... and bytes read (~2 ms of decoding when canonical)
LONG_LINE = 1 << 20  # lines longer than this are left to their first read
BUSY = 0.0002  # seconds other work took in one turn of the loop that mean requests are coming
PAUSE = 3  # then each slice is followed by a pause this many times as long

Read = Callable[..., Awaitable[None]]  # runs `classify` (Reader.call)


async def prove(catalog: Catalog, tables: Awaitable[None], read: Read) -> None:
    """Decide every line's verdict, once `tables` (the id tables' build) is done."""
    await tables
    for entry in reversed(catalog.ordered()):  # newest first
        try:
            await _thread(catalog, entry, read)
        except asyncio.CancelledError:
            raise
        except Exception:  # a thread that cannot be read now: its reads decide
            log.debug("proving lines of thread %s", entry.id, exc_info=True)


def slice_end(index: MessageIndex, lo: int) -> int:
    """The last slot of the slice that starts at `lo` (a long line: a slice of its own)."""
    starts, lengths, hi = index.starts, index.lengths, lo
    last = min(lo + SLICE, len(index)) - 1
    while hi < last and lengths[hi + 1] <= LONG_LINE \
            and index.end_of(hi + 1) - starts[lo] <= SLICE_BYTES:
        hi += 1
    return hi


async def _thread(catalog: Catalog, entry: ThreadEntry, read: Read) -> None:
    index, lo = entry.messages, 0
    if not index.canon.count(UNKNOWN):
        return
    again = partial(check_current, catalog, entry, index)
    loop = asyncio.get_running_loop()
    try:
        fd = open_file(entry.folder / MESSAGES, os.O_RDONLY)
    except OSError:
        return
    try:
        while lo < len(index):
            hi = slice_end(index, lo)
            try:
                again()  # rewritten or deleted since: its new index is decided by its reads
                if index.canon.count(UNKNOWN, lo, hi + 1) and index.lengths[lo] <= LONG_LINE:
                    started = loop.time()
                    await read(classify, fd, entry, lo, hi, again=again)
                    took = loop.time() - started
                    turned = loop.time()
                    await asyncio.sleep(0)
                    if loop.time() - turned > BUSY:  # requests waited: give them the loop
                        await asyncio.sleep(PAUSE * took)
            except (Stale, OSError, ValueError):
                return
            lo = hi + 1
            await asyncio.sleep(0)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
