"""The ids of an index's slots, packed, and the open-addressing table that finds a slot by id.

Memory per id: its UTF-8 bytes, 4 bytes for where they end, and 6 to 11 bytes of table (4-byte
entries at load 1/3 to 2/3); no Python object per id.

The table is derived from the ids alone, so it need not exist before the server answers: at
start-up it would cost about a third of the build (a hash and a random write per id, ~0.4 s for
1M messages). Until it is built a lookup searches the newest ids (where the start-up journal
check and most traffic look) and builds the table when the id is not among them; `build` also
runs in a worker thread right after start-up (`Indexer.build`). Appends go on while it is built.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from itertools import accumulate

_EMPTY = 0
RECENT_IDS = 64 << 10  # bytes of the newest ids a lookup searches while there is no table
RECENT_SEARCHES = 8  # lookups that may search them before one builds the table
_BLOCK = 4096  # ids hashed per copy of their bytes while filling a table


class IdTable:
    """Slot ids, in slot order. `lock` is the index's (held for appends, and to publish the
    table). `shadowed` collects the slots whose id a later slot has again, found as ids enter
    the table (an id names its last line)."""

    __slots__ = ("_building", "_ends", "_ids", "_lock", "_searches", "_spare", "_table",
                 "shadowed")

    def __init__(self, lock: threading.Lock) -> None:
        self._ids = bytearray()  # every id's UTF-8 bytes, back to back
        self._ends = array("I")  # where each slot's id ends in _ids
        self._lock = lock
        self.shadowed: set[int] = set()
        self._table: array[int] | None = None  # built on first need (see the module docstring)
        self._spare: array[int] | None = None  # room set aside for the table (reserve)
        self._searches = 0  # lookups answered without the table (see find)
        self._building = threading.Lock()  # one table build at a time

    def append(self, key: bytes) -> None:
        """Add the id of the next slot (the caller holds the lock, and calls `enter_from`
        once the slot's other arrays have it too)."""
        self._ids += key
        self._ends.append(len(self._ids))

    def extend(self, ids: list[str], text: str) -> None:
        """Add the ids of the next slots, `text` being their concatenation (as for `append`)."""
        end = len(self._ids)
        if text.isascii():  # ids are ASCII in practice: one encode, lengths in characters
            self._ids += text.encode("ascii")
            id_ends = list(accumulate(map(len, ids), initial=end))
        else:
            keys = [i.encode(errors="surrogatepass") for i in ids]
            self._ids += b"".join(keys)
            id_ends = list(accumulate(map(len, keys), initial=end))
        del id_ends[0]
        self._ends.fromlist(id_ends)

    def enter_from(self, first: int) -> None:
        """Enter the ids of slots `first`.. into the table, when it is built (the caller holds
        the lock)."""
        if self._table is not None:
            self._insert_from(first)

    def key(self, slot: int) -> bytes:
        """The id of `slot` as UTF-8 bytes."""
        return bytes(self._ids[self._ends[slot - 1] if slot else 0 : self._ends[slot]])

    def holds(self, slot: int, key: bytes) -> bool:
        """Whether `slot` holds the id `key` (compared in place: no copy of the slot's id)."""
        ends = self._ends
        start = ends[slot - 1] if slot else 0
        return ends[slot] - start == len(key) and self._ids.startswith(key, start)

    def find(self, key: bytes) -> int:
        """Slot of the last id `key`, or -1. With no table yet, the first few lookups search the
        newest ids first, and the table is built when the id is not among them; while another
        thread is building it, the lookup searches all ids rather than wait."""
        table = self._table
        if table is None:
            if self._searches < RECENT_SEARCHES:  # then a loop over many ids: build it
                self._searches += 1
                if (slot := self.search(key, len(self._ids) - RECENT_IDS)) >= 0:
                    return slot
            table = self.build(wait=False)
            if table is None:  # being built elsewhere: a byte search (ms) beats the wait
                return self.search(key, 0)
        mask = len(table) - 1
        i = hash(key) & mask
        found = -1
        ids, ends, size = self._ids, self._ends, len(key)
        while (entry := table[i]) != _EMPTY:  # entries are slot + 1
            if entry > found + 1:  # compared in place: no copy of each candidate's id
                end = ends[entry - 1]
                start = ends[entry - 2] if entry > 1 else 0
                if end - start == size and ids.startswith(key, start):
                    found = entry - 1
            i = (i + 1) & mask
        return found

    def occurs_before(self, key: bytes, slot: int) -> bool:
        """Whether a slot before `slot` has the id `key`, by a search of the packed ids (for a
        large index whose table is not built yet: milliseconds)."""
        return slot > 0 and self.search(key, 0, self._ends[slot - 1]) >= 0

    def search(self, key: bytes, low: int, high: int | None = None) -> int:
        """The last slot with this id among those whose ids lie at or after byte `low` (and end
        by `high`) of the packed ids, by a search of them (a match must start and end on id
        boundaries); -1: none."""
        ids, ends = self._ids, self._ends
        low, high = max(0, low), len(ids) if high is None else high
        while key and (at := ids.rfind(key, low, high)) >= 0:
            slot = bisect_right(ends, at)
            if (ends[slot - 1] if slot else 0) == at and ends[slot] == at + len(key):
                return slot
            high = at + len(key) - 1
        return -1

    def build(self, wait: bool = True) -> array[int] | None:
        """The table, built now if it is not yet (from any thread); None if `wait` is False and
        another thread is building it. The ids of existing slots never change, so they are
        entered without holding the lock (appends go on meanwhile); under the lock go only the
        slots appended since. Readers see the table only once it is complete."""
        table = self._table
        if table is not None:
            return table
        if not self._building.acquire(blocking=wait):
            return None
        try:
            if self._table is not None:
                return self._table
            with self._lock:
                count, spare, self._spare = len(self._ends), self._spare, None
            size = _table_size(count)
            table = spare if spare is not None and len(spare) >= size else _zeros(size)
            self._enter(table, len(table) - 1, 0, count)
            while True:
                with self._lock:
                    total = len(self._ends)
                    if total * 3 <= len(table) * 2:
                        self._enter(table, len(table) - 1, count, total)
                        self._table = table
                        return table
                # Many appends while it was built: a bigger one, filled outside the lock again.
                table = _zeros(_table_size(total))
                self._enter(table, len(table) - 1, 0, total)
                count = total
        finally:
            self._building.release()

    @property
    def built(self) -> bool:
        return self._table is not None

    def reserve(self) -> None:
        """Set aside the (zeroed) memory of the table the ids will need, without building it:
        so the resident size once an index is built is what it will stay."""
        with self._lock:
            if self._table is None:
                self._spare = _zeros(_table_size(len(self._ends)))

    def _insert_from(self, first: int) -> None:
        """Enter slots `first`.. into the built table, growing it as needed (the caller holds
        the lock, and the table exists)."""
        count = len(self._ends)
        table = self._table
        assert table is not None
        if count * 3 > len(table) * 2:
            table = _zeros(_table_size(count))
            self._enter(table, len(table) - 1, 0, count)
            self._table = table
        else:
            self._enter(table, len(table) - 1, first, count)

    def _enter(self, table: array[int], mask: int, first: int, count: int) -> None:
        ends, ids = self._ends, self._ids
        for block in range(first, count, _BLOCK):
            last = min(block + _BLOCK, count)
            base = ends[block - 1] if block else 0
            keys = bytes(ids[base : ends[last - 1]])  # a bytes slice per id from here
            start = 0
            for slot in range(block, last):  # entries are slot + 1 (0 = empty)
                end = ends[slot] - base
                key = keys[start:end]
                start = end
                i = hash(key) & mask
                while entry := table[i]:
                    # The same id entered before (entries go in slot order) is a duplicate line,
                    # shadowed by this one. Its last byte rules out most others at the cost of
                    # one comparison (ids of one thread tend to share their length and start).
                    if ids[ends[entry - 1] - 1] == key[-1]:
                        at = ends[entry - 2] if entry > 1 else 0
                        if ends[entry - 1] - at == len(key) and ids.startswith(key, at):
                            self.shadowed.add(entry - 1)
                    i = (i + 1) & mask
                table[i] = slot + 1

    def compact(self) -> None:
        """Drop the spare room kept for growth (the caller holds the lock)."""
        self._ends = array(self._ends.typecode, self._ends)
        self._ids = bytearray(self._ids)

    def nbytes(self) -> int:
        """Bytes held: the packed ids, their ends, and the table or the room set aside for it."""
        table = self._table if self._table is not None else self._spare
        return (len(self._ids) + self._ends.itemsize * len(self._ends)
                + (4 * len(table) if table is not None else 0))


def _zeros(size: int) -> array[int]:
    return array("i", bytes(4 * size))


def _table_size(count: int) -> int:
    """Entries of a table for `count` slots: a power of two, at load at most 2/3."""
    size = 8
    while size * 2 < count * 3:
        size *= 2
    return size
