"""Per-thread message index: packed arrays of line positions and ids, and an open-addressing table.

Memory per message (documented in the README): 8 (start) + 4 (length) + 4 (CRC-32 of the line, to
tell an edited line from an unchanged one when another program rewrites the file) + 1 (canonical
flag) + the id's bytes + 4 (where they end) + 6 to 11 (hash table at load 1/3 to 2/3, 4-byte
entries): 55 to 60 bytes for a 28-byte `msg_...` id, and no Python object per message. The ids are
kept so that a message another program removes can still be named in its deletion event.
Slots are positions in file order; a rewrite of the file builds a fresh index.

The id table is derived from the ids alone, so it need not exist before the server answers: at
start-up it would cost about a third of the build (a hash and a random write per id, ~0.4 s for 1M
messages). Until it is built a lookup searches the newest ids (where the start-up journal check
and most traffic look) and builds the table when the id is not among them; `build_table` also
runs in a worker thread right after start-up (`Indexer.build`). Appends go on while it is built.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate

from .paging import visible_before

_EMPTY = 0
UNKNOWN, CANONICAL, NORMALIZE = 0, 1, 2
LARGE = 4096  # indexes of at least this many messages get their table built ahead of need
RECENT_IDS = 64 << 10  # bytes of the newest ids a lookup searches while there is no table
RECENT_SEARCHES = 8  # lookups that may search them before one builds the table
_BLOCK = 4096  # ids hashed per copy of their bytes while filling a table


class MessageIndex:
    __slots__ = ("_building", "_holes", "_id_ends", "_ids", "_lock", "_searches", "_spare",
                 "_table", "canon", "corrupt", "corrupt_crcs", "crcs", "lengths", "run_ids",
                 "shadowed", "starts")

    def __init__(self) -> None:
        self.starts = array("q")
        self.lengths = array("I")
        self.crcs = array("I")
        self.canon = bytearray()
        self._ids = bytearray()  # every id's UTF-8 bytes, back to back
        self._id_ends = array("I")  # where each slot's id ends in _ids
        self.run_ids: dict[int, str] = {}  # sparse: most Jan messages have no run
        self.corrupt: list[tuple[int, int]] = []  # (offset, length) of lines that are not messages
        self.corrupt_crcs: list[int] = []  # and the CRC-32 of each (logged once: index/damage.py)
        # Slots whose id a later line has again (a damaged file): an id names its last line, so
        # these are neither listed nor served. Found as ids enter the table.
        self.shadowed: set[int] = set()
        # Shadowed, sorted, and the visible slots before each (made when asked for).
        self._holes: tuple[list[int], list[int]] | None = None
        self._table: array[int] | None = None  # built on first need (see the module docstring)
        self._spare: array[int] | None = None  # room set aside for the table (reserve_table)
        self._searches = 0  # lookups answered without the table (see find)
        self._lock = threading.Lock()  # appends, and publishing the table
        self._building = threading.Lock()  # one table build at a time

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, start: int, length: int, message_id: str, run_id: str | None, crc: int) -> int:
        key = message_id.encode(errors="surrogatepass")
        with self._lock:
            slot = len(self.starts)
            self.starts.append(start)
            self.lengths.append(length)
            self.crcs.append(crc)
            self.canon.append(UNKNOWN)
            self._ids += key
            self._id_ends.append(len(self._ids))
            if run_id is not None:
                self.run_ids[slot] = run_id
            if self._table is not None:
                self._insert_from(slot)
        return slot

    def add_many(self, starts: Iterable[int], lengths: Iterable[int], ids: list[str],
                 crcs: Iterable[int], run_ids: dict[int, str], text: str | None = None) -> None:
        """Append many messages at once (the start-up and tail paths): C-level array extends, the
        ids packed with one join (`text`, when the caller has it). `run_ids` maps positions in
        these lists to run ids."""
        if text is None:
            text = "".join(ids)
        with self._lock:
            first = len(self.starts)
            end = len(self._ids)
            if text.isascii():  # ids are ASCII in practice: one encode, lengths in characters
                self._ids += text.encode("ascii")
                id_ends = list(accumulate(map(len, ids), initial=end))
            else:
                keys = [i.encode(errors="surrogatepass") for i in ids]
                self._ids += b"".join(keys)
                id_ends = list(accumulate(map(len, keys), initial=end))
            del id_ends[0]
            self._id_ends.fromlist(id_ends)
            # fromlist: for "q" arrays several times faster than extend
            self.starts.fromlist(starts if isinstance(starts, list) else list(starts))
            self.lengths.fromlist(lengths if isinstance(lengths, list) else list(lengths))
            self.crcs.extend(crcs)
            self.canon.extend(bytes(len(ids)))
            for i, run_id in run_ids.items():
                self.run_ids[first + i] = run_id
            if self._table is not None:
                self._insert_from(first)

    def has_line(self, start: int, length: int, crc: int) -> bool:
        """Whether a message line of this length and CRC-32 is indexed at `start` (a line this
        process appended: indexed from its own bytes, or in a file another program replaced)."""
        slot = bisect_left(self.starts, start)
        return (slot < len(self.starts) and self.starts[slot] == start
                and self.lengths[slot] == length and self.crcs[slot] == crc)

    def add_corrupt(self, start: int, length: int, crc: int) -> None:
        self.corrupt.append((start, length))
        self.corrupt_crcs.append(crc)

    def _key(self, slot: int) -> bytes:
        return bytes(self._ids[self._id_ends[slot - 1] if slot else 0 : self._id_ends[slot]])

    def key_at(self, slot: int) -> bytes:
        """The id of `slot` as UTF-8 bytes."""
        return self._key(slot)

    def id_at(self, slot: int) -> str:
        return self._key(slot).decode(errors="surrogatepass")

    def id_is(self, slot: int, message_id: str) -> bool:
        """Whether `slot` holds `message_id` (compared in place: no copy of the slot's id)."""
        key = message_id.encode(errors="surrogatepass")
        ends = self._id_ends
        start = ends[slot - 1] if slot else 0
        return ends[slot] - start == len(key) and self._ids.startswith(key, start)

    def find(self, message_id: str) -> int:
        """Slot of the last line with this id, or -1. With no table yet, the first few lookups
        search the newest ids first, and the table is built when the id is not among them;
        while another thread is building it, the lookup searches all ids rather than wait."""
        key = message_id.encode(errors="surrogatepass")
        table = self._table
        if table is None:
            if self._searches < RECENT_SEARCHES:  # then a loop over many ids: build it
                self._searches += 1
                if (slot := self._search(key, len(self._ids) - RECENT_IDS)) >= 0:
                    return slot
            table = self.build_table(wait=False)
            if table is None:  # being built elsewhere: a byte search (ms) beats the wait
                return self._search(key, 0)
        mask = len(table) - 1
        i = hash(key) & mask
        found = -1
        ids, ends, size = self._ids, self._id_ends, len(key)
        while (entry := table[i]) != _EMPTY:  # entries are slot + 1
            if entry > found + 1:  # compared in place: no copy of each candidate's id
                end = ends[entry - 1]
                start = ends[entry - 2] if entry > 1 else 0
                if end - start == size and ids.startswith(key, start):
                    found = entry - 1
            i = (i + 1) & mask
        return found

    def holes(self) -> tuple[list[int], list[int]] | None:
        """The shadowed slots, sorted, and how many slots are not before each; None but in a
        damaged file. They are known once the id table is: a small index's is built now if it
        is not yet; a large one's is built in a worker thread after start-up (None till then:
        a list must not wait for it)."""
        if self._table is None and (len(self.starts) >= LARGE
                                    or self.build_table(wait=False) is None):
            return None
        if not self.shadowed:
            return None
        with self._lock:
            if self._holes is None:
                holes = sorted(self.shadowed)
                self._holes = holes, visible_before(holes)
            return self._holes

    def occurs_before(self, message_id: str, slot: int) -> bool:
        """Whether a slot before `slot` has this id, by a search of the packed ids (for a large
        index whose table is not built yet: milliseconds)."""
        key = message_id.encode(errors="surrogatepass")
        return slot > 0 and self._search(key, 0, self._id_ends[slot - 1]) >= 0

    def _search(self, key: bytes, low: int, high: int | None = None) -> int:
        """The last slot with this id among those whose ids lie at or after byte `low` (and end
        by `high`) of the packed ids, by a search of them (a match must start and end on id
        boundaries); -1: none."""
        ids, ends = self._ids, self._id_ends
        low, high = max(0, low), len(ids) if high is None else high
        while key and (at := ids.rfind(key, low, high)) >= 0:
            slot = bisect_right(ends, at)
            if (ends[slot - 1] if slot else 0) == at and ends[slot] == at + len(key):
                return slot
            high = at + len(key) - 1
        return -1

    def build_table(self, wait: bool = True) -> array[int] | None:
        """The id table, built now if it is not yet (from any thread); None if `wait` is False
        and another thread is building it. The ids of existing slots never change, so they are
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
                count, spare, self._spare = len(self.starts), self._spare, None
            size = _table_size(count)
            table = spare if spare is not None and len(spare) >= size else _zeros(size)
            self._enter(table, len(table) - 1, 0, count)
            while True:
                with self._lock:
                    total = len(self.starts)
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
    def has_table(self) -> bool:
        return self._table is not None

    def reserve_table(self) -> None:
        """Set aside the (zeroed) memory of the table the index will need, without building it:
        so the resident size once an index is built is what it will stay."""
        with self._lock:
            if self._table is None:
                self._spare = _zeros(_table_size(len(self.starts)))

    def _insert_from(self, first: int) -> None:
        """Enter slots `first`.. into the built table, growing it as needed (caller holds the
        lock, and the table exists)."""
        count = len(self.starts)
        table = self._table
        assert table is not None
        if count * 3 > len(table) * 2:
            table = _zeros(_table_size(count))
            self._enter(table, len(table) - 1, 0, count)
            self._table = table
        else:
            self._enter(table, len(table) - 1, first, count)

    def _enter(self, table: array[int], mask: int, first: int, count: int) -> None:
        ends, ids = self._id_ends, self._ids
        for block in range(first, count, _BLOCK):
            last = min(block + _BLOCK, count)
            base = ends[block - 1] if block else 0
            keys = bytes(self._ids[base : ends[last - 1]])  # a bytes slice per id from here
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
                            self._holes = None
                    i = (i + 1) & mask
                table[i] = slot + 1

    def compact(self) -> None:
        """Drop the spare room arrays keep for growth (up to an eighth): worth a copy once the
        start-up build is done, for large threads."""
        if len(self.starts) < 10_000:
            return
        with self._lock:
            self.starts = array(self.starts.typecode, self.starts)
            self.lengths = array(self.lengths.typecode, self.lengths)
            self.crcs = array(self.crcs.typecode, self.crcs)
            self._id_ends = array(self._id_ends.typecode, self._id_ends)
            self.canon = bytearray(self.canon)
            self._ids = bytearray(self._ids)

    def listed_before(self, slot: int, count: int) -> list[str]:
        """The ids of up to `count` listed slots before `slot`, nearest first (an earlier copy
        of a repeated id is not listed): where a deleted message stood, for list cursors."""
        self.holes()  # the earlier copies are known once the id table is (built now if small)
        out: list[str] = []
        before = slot - 1
        while before >= 0 and len(out) < count:
            if before not in self.shadowed:
                out.append(self.id_at(before))
            before -= 1
        return out

    def end_of(self, slot: int) -> int:
        return self.starts[slot] + self.lengths[slot]

    def slots_with_run(self, run_id: str) -> list[int]:
        return sorted(slot for slot, rid in self.run_ids.items() if rid == run_id)

    def nbytes(self) -> int:
        """Bytes held by the index for its messages (the arrays and the table, or its room)."""
        table = self._table if self._table is not None else self._spare
        return (self.starts.itemsize * len(self.starts) + self.lengths.itemsize * len(self.lengths)
                + len(self.canon) + self.crcs.itemsize * len(self.crcs)
                + len(self._ids) + self._id_ends.itemsize * len(self._id_ends)
                + (4 * len(table) if table is not None else 0))


def _zeros(size: int) -> array[int]:
    return array("i", bytes(4 * size))


def _table_size(count: int) -> int:
    """Entries of a table for `count` slots: a power of two, at load at most 2/3."""
    size = 8
    while size * 2 < count * 3:
        size *= 2
    return size
