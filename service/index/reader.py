"""Serving message lines from the index: one read at an offset for a get, one contiguous read for
a page. A line already in canonical form is served as its stored bytes; any other shape is
normalized (and the verdict is remembered per line, so each line is classified once).

Reads are `os.pread` on the event loop: a deliberate small synchronous read of bytes the page
cache holds, cheaper than a hop to a worker thread (see bench/ for the measurement); bytes the
page cache no longer holds are read by a thread instead (store/resident.py).
"""

from __future__ import annotations

from functools import partial

from ..models import encoder
from ..store import normalize, shapes
from ..store.lines import crc32, decode_object, line_id
from ..store.resident import each, pread
from . import canon
from .cache import Held, Key, LineCache
from .catalog import Catalog, ThreadEntry
from .messages import CANONICAL, NORMALIZE, UNKNOWN

# A page's lines are read with one read of the range they span unless it holds more than this
# many bytes besides four times theirs (gaps of corrupt lines, other slots): then one read each.
SPAN_SLACK = 65536


class Stale(Exception):
    """The file changed under the index (another program rewrote it); sync and retry."""


def check_current(catalog: Catalog, entry: ThreadEntry, index: object) -> None:
    """Raise Stale unless `entry` is still the thread's entry and `index` its index: for a read
    that waited (for the disk), since a rewrite or a deletion may have replaced them."""
    if catalog.get(entry.id) is not entry or entry.messages is not index:
        raise Stale(entry.id)


def serve_line(entry: ThreadEntry, slot: int, raw: bytes, cache: LineCache | None = None
               ) -> bytes:
    """The served bytes of a stored line: itself when canonical, else its normalized form (from
    `cache` when it holds it)."""
    index = entry.messages
    if crc32(raw) != index.crcs[slot]:
        # Not the line that was indexed: another program rewrote the file a moment before the
        # watcher noticed, shifting offsets or even in place, same lengths. Neither served as
        # stored nor normalized into the cache, where a value must stand for the indexed line.
        raise Stale(entry.id)
    flag = index.canon[slot]
    if flag == CANONICAL:
        return raw
    if flag == UNKNOWN:
        if canon.line(raw, entry.id, index.key_at(slot)):
            index.canon[slot] = CANONICAL
            return raw
        index.canon[slot] = NORMALIZE
    if cache is None:
        return _normalized(entry, slot, raw)
    key = (entry.uid, entry.generation, slot)
    return _from_cache(entry, slot, raw, cache, key, cache.get(key))


def _from_cache(entry: ThreadEntry, slot: int, raw: bytes, cache: LineCache, key: Key,
                held: Held | None) -> bytes:
    """The served form of the Jan-shaped line `raw` of `slot`, already found to be the indexed
    line (its CRC-32): `held` (the cache's value for `key`), now trusted again, if there is one;
    else normalized now and kept. A value made from any other bytes would pass every later check
    against the index once the line is edited back (tests/test_inplace_edits.py)."""
    if held is not None:
        held.trust = entry.trust
        return held.served
    served = _normalized(entry, slot, raw)
    cache.put(key, served, entry.trust)
    return served


def _normalized(entry: ThreadEntry, slot: int, raw: bytes) -> bytes:
    """The served form of `raw`, the indexed line of `slot` (its CRC-32 checked by the caller)."""
    index = entry.messages
    fast = shapes.served(raw, entry.id)  # the common shapes, decoded typed: the fast way
    if fast is not None:
        if not index.id_is(slot, fast[0]):
            raise Stale(entry.id)
        return fast[1]
    obj = decode_object(raw)
    if obj is None:
        # Indexed as a message, yet the full parse fails (an integer of thousands of digits in
        # a field the index skips): serve what can be read. When not even its id can be (nested
        # so deep that the parser, which shares Python's recursion budget, fails on this deeper
        # stack where it succeeded in the indexer's shallow one), serve what the index knows.
        mid = line_id(raw)
        obj = {"id": index.id_at(slot) if mid is None else mid}
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
    if entry.messages.canon[slot] == NORMALIZE:
        key = (entry.uid, entry.generation, slot)
        held = catalog.lines.get(key)
        if held is not None and held.trust == entry.trust:
            return held.served  # no read at all
        # Not held, or held from before another program appended (it may have edited the line
        # in place): read, and serve only the line the index holds.
        raw = stored_line(catalog, entry, slot)
        if crc32(raw) != entry.messages.crcs[slot]:
            raise Stale(entry.id)
        return _from_cache(entry, slot, raw, catalog.lines, key, held)
    return serve_line(entry, slot, stored_line(catalog, entry, slot), catalog.lines)


def page_data(catalog: Catalog, entry: ThreadEntry, slots: list[int]) -> bytes:
    """The served bytes of `slots` (a page: ascending or descending), joined by commas (a list's
    `data`), with one read of the range they span, or one read each when most of that range is
    not theirs: scattered slots (a run_id filter over a long thread), or a run of slots with
    a long stretch of corrupt lines between two of them (which must not be read into memory
    for a page of a few lines)."""
    if not slots:
        return b""
    index = entry.messages
    lo, hi = (slots[0], slots[-1]) if slots[0] <= slots[-1] else (slots[-1], slots[0])
    run = len(slots) == hi - lo + 1
    start, stop = index.starts[lo], index.end_of(hi)
    if stop - start > SPAN_SLACK and stop - start > SPAN_SLACK + 4 * (
            sum(index.lengths[lo:hi + 1]) if run else sum(index.lengths[s] for s in slots)):
        return b",".join(each([partial(message_bytes, catalog, entry, s) for s in slots]))
    if run and index.canon.count(NORMALIZE, lo, hi + 1) == len(slots):
        # Jan-shaped lines whose served form is cached need no read at all (as for a get).
        served = catalog.lines.get_run(entry.uid, entry.generation, entry.trust, slots)
        if served is not None:
            return b",".join(served)
    buf = pread(catalog.read_fd(entry), stop - start, start)
    if len(buf) != stop - start:
        raise Stale(entry.id)
    if run and (lines := _canonical_lines(entry, lo, hi, buf)) is not None:
        if slots[0] != lo:
            lines.reverse()  # a descending page
        return b",".join(lines)
    out = []
    for s in slots:
        at = index.starts[s] - start
        out.append(serve_line(entry, s, buf[at:at + index.lengths[s]], catalog.lines))
    return b",".join(out)


def classify(fd: int, entry: ThreadEntry, lo: int, hi: int) -> None:
    """Decide, ahead of any request, which of slots lo..hi are canonical lines (index/prover.py),
    reading the thread's file through `fd`: one read of their range, one test for a page of
    canonical ones, else line by line (a line not opening the way a canonical one does is ruled
    out by its first bytes)."""
    index = entry.messages
    start, stop = index.starts[lo], index.end_of(hi)
    buf = pread(fd, stop - start, start)
    if len(buf) != stop - start:
        raise Stale(entry.id)
    if _canonical_lines(entry, lo, hi, buf) is not None:
        return
    flags = index.canon
    for s in range(lo, hi + 1):
        if flags[s] == UNKNOWN:
            at = index.starts[s] - start
            raw = buf[at:at + index.lengths[s]]
            if crc32(raw) != index.crcs[s]:
                raise Stale(entry.id)  # rewritten under the index: a sync comes
            flags[s] = CANONICAL if canon.line(raw, entry.id, index.key_at(s)) else NORMALIZE


def _canonical_lines(entry: ThreadEntry, lo: int, hi: int, buf: bytes
                     ) -> list[memoryview] | None:
    """The lines of slots lo..hi in `buf` (read from lo's start to hi's end), if they are all
    canonical lines, one per line: known to be, or, when none is known not to be, found to be
    now (one test for the page); else None."""
    index = entry.messages
    flags, count = index.canon, hi - lo + 1
    known = flags.count(CANONICAL, lo, hi + 1)
    if known != count and flags.count(NORMALIZE, lo, hi + 1):
        return None
    if not known and not canon.may_be(buf, index.key_at(lo)):
        return None  # a page of Jan-shaped lines: no need to look further
    lines = _run(entry, lo, hi, buf)
    if lines is None or known == count:
        return lines
    if not canon.page(buf, entry.id, [index.key_at(s) for s in range(lo, hi + 1)]):
        return None
    flags[lo:hi + 1] = bytes([CANONICAL]) * count
    return lines


def _run(entry: ThreadEntry, lo: int, hi: int, buf: bytes) -> list[memoryview] | None:
    """The lines of slots lo..hi in `buf` (read from lo's start to hi's end), if it is exactly
    those lines one per line, as indexed: each line where the index puts it with the CRC it had
    when indexed, and a newline between each two (the file was not rewritten under the index, not
    even in place with the same lengths); else None, also for a gap of corrupt or blank lines
    between slots (the line-by-line path serves those)."""
    index = entry.messages
    starts, lengths, crcs = index.starts, index.lengths, index.crcs
    base = starts[lo]
    view = memoryview(buf)
    lines = []
    at = 0
    for s in range(lo, hi + 1):
        if starts[s] - base != at:
            return None
        end = at + lengths[s]
        line = view[at:end]
        if crc32(line) != crcs[s] or (s < hi and buf[end] != 10):  # 10: newline
            return None
        lines.append(line)
        at = end + 1
    return lines if at == len(buf) + 1 else None
