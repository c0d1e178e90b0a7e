"""Serving message lines from the index: one read at an offset for a get, one contiguous read for
a page. A line already in canonical form is served as its stored bytes; any other shape is
normalized (and the verdict is remembered per line, so each line is classified once).

Reads are `os.pread` on the event loop: a deliberate small synchronous read of bytes the page
cache holds, cheaper than a hop to a worker thread (see bench/ for the measurement).
"""

from __future__ import annotations

import zlib

from ..models import encoder, message_decoder
from ..store import normalize
from ..store.files import pread
from ..store.lines import BAD_LINE, decode_object, line_id
from .cache import LineCache
from .catalog import Catalog, ThreadEntry
from .messages import CANONICAL, NORMALIZE, UNKNOWN


class Stale(Exception):
    """The file changed under the index (another program rewrote it); sync and retry."""


def serve_line(entry: ThreadEntry, slot: int, raw: bytes, cache: LineCache | None = None
               ) -> bytes:
    """The served bytes of a stored line: itself when canonical, else its normalized form (from
    `cache` when it holds it)."""
    index = entry.messages
    flag = index.canon[slot]
    if flag == CANONICAL:
        # Still the very line (another program may have rewritten the file in place, shifting
        # every offset, a moment before the watcher noticed): its id opens it, as it was.
        mid = index.key_at(slot)
        if raw[7:8 + len(mid)] == mid + b'"' and raw[:7] == b'{"id":"' and raw[-1:] == b"}":
            return raw
        raise Stale(entry.id)
    if flag == UNKNOWN:
        try:
            msg = message_decoder.decode(raw)
            if (msg.thread_id == entry.id and msg.id == index.id_at(slot)
                    and encoder.encode(msg) == raw):
                index.canon[slot] = CANONICAL
                return raw
        except BAD_LINE:
            pass
        index.canon[slot] = NORMALIZE
    if cache is None:
        return _normalized(entry, slot, raw)
    key = (entry.uid, entry.generation, slot)
    served = cache.get(key)
    if served is None:
        served = _normalized(entry, slot, raw)
        cache.put(key, served)
    return served


def _normalized(entry: ThreadEntry, slot: int, raw: bytes) -> bytes:
    index = entry.messages
    obj = decode_object(raw)
    if obj is None:
        # Indexed as a message, yet the full parse fails (an integer of thousands of digits in
        # a field the index skips): serve what can be read, unless it is not the indexed line.
        mid = line_id(raw)
        if mid is None and zlib.crc32(raw) == index.crcs[slot]:
            # The very line the index took for a message, yet unreadable here: nested so deep
            # that the parser, which shares Python's recursion budget, fails on this deeper
            # stack where it succeeded in the indexer's shallow one. Serve what the index knows.
            mid = index.id_at(slot)
        if mid is None:
            raise Stale(entry.id)
        obj = {"id": mid}
    mid = obj.get("id")
    if (mid if isinstance(mid, str) else str(mid)) != index.id_at(slot):
        raise Stale(entry.id)
    return encoder.encode(normalize.message(obj, entry.id))


def stored_line(catalog: Catalog, entry: ThreadEntry, slot: int) -> bytes:
    """The line of `slot` as stored (no newline), any shape."""
    index = entry.messages
    length = index.lengths[slot]
    raw = pread(catalog.read_fd(entry), length, index.starts[slot])
    if len(raw) != length:
        raise Stale(entry.id)
    return raw


def message_bytes(catalog: Catalog, entry: ThreadEntry, slot: int) -> bytes:
    if entry.messages.canon[slot] == NORMALIZE:  # a cached one needs no read at all
        key = (entry.uid, entry.generation, slot)
        served = catalog.lines.get(key)
        if served is None:
            served = _normalized(entry, slot, stored_line(catalog, entry, slot))
            catalog.lines.put(key, served)
        return served
    return serve_line(entry, slot, stored_line(catalog, entry, slot), catalog.lines)


def page_bytes(catalog: Catalog, entry: ThreadEntry, slots: list[int]) -> list[bytes]:
    """The served bytes of `slots` (in the order given) with one read of the range they span,
    or one read each when they are scattered (a run_id filter over a long thread)."""
    if not slots:
        return []
    index = entry.messages
    lo, hi = min(slots), max(slots)
    start, stop = index.starts[lo], index.end_of(hi)
    wanted = sum(index.lengths[s] for s in slots)
    if stop - start > 4 * wanted + 65536:
        return [message_bytes(catalog, entry, s) for s in slots]
    buf = pread(catalog.read_fd(entry), stop - start, start)
    if len(buf) != stop - start:
        raise Stale(entry.id)
    out = []
    for s in slots:
        at = index.starts[s] - start
        out.append(serve_line(entry, s, buf[at:at + index.lengths[s]], catalog.lines))
    return out
