"""Canonical verdicts ahead of requests: after start-up, every line's, in the background.

A stored line is served as its bytes once it is known to be canonical (index/canon.py); until
then the first read of it decodes and re-encodes it (~6 µs a line, ~120 µs for a page of 20).
After a restart no line is known, those the server wrote itself included, so the first page of
each stretch of a long thread pays that. Here the verdicts are decided once the id tables are
built, a few dozen lines at a time on the event loop (requests go between two slices), newest
threads first; reads of bytes the page cache dropped go through the reader (store/resident.py).
A thread rewritten meanwhile is left to its next reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from .catalog import Catalog, ThreadEntry
from .messages import UNKNOWN
from .reader import Stale, classify

log = logging.getLogger(__name__)

SLICE = 64  # lines decided between two turns of the event loop (~0.4 ms when canonical)

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


def _current(catalog: Catalog, entry: ThreadEntry, index: object) -> None:
    """The thread was not rewritten or deleted since its lines began to be decided."""
    if catalog.get(entry.id) is not entry or entry.messages is not index:
        raise Stale(entry.id)


async def _thread(catalog: Catalog, entry: ThreadEntry, read: Read) -> None:
    index, lo = entry.messages, 0
    again = partial(_current, catalog, entry, index)
    while lo < len(index):
        hi = min(lo + SLICE, len(index)) - 1
        try:
            again()  # rewritten or deleted since: its new index is decided by its reads
            if index.canon.count(UNKNOWN, lo, hi + 1):
                await read(classify, catalog, entry, lo, hi, again=again)
        except (Stale, OSError, ValueError):
            return
        lo = hi + 1
        await asyncio.sleep(0)
