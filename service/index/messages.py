"""Per-thread message index: packed arrays of line positions, and the ids (index/idtable.py).

Memory per message (documented in the README): 8 (start) + 4 (length) + 4 (CRC-32 of the line, to
tell an edited line from an unchanged one when another program rewrites the file) + 1 (canonical
flag) + the id's bytes + 4 (where they end) + 6 to 11 (hash table at load 1/3 to 2/3, 4-byte
entries): 55 to 60 bytes for a 28-byte `msg_...` id, and no Python object per message. The ids are
kept so that a message another program removes can still be named in its deletion event.
Slots are positions in file order; a rewrite of the file builds a fresh index.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable

from .idtable import IdTable
from .paging import visible_before

UNKNOWN, CANONICAL, NORMALIZE = 0, 1, 2
LARGE = 4096  # indexes of at least this many messages get their table built ahead of need


class MessageIndex:
    __slots__ = ("_holes", "_lock", "canon", "corrupt", "corrupt_crcs", "crcs", "ids",
                 "lengths", "run_ids", "starts")

    def __init__(self) -> None:
        self.starts = array("q")
        self.lengths = array("I")
        self.crcs = array("I")
        self.canon = bytearray()
        self._lock = threading.Lock()  # appends, and publishing the id table
        self.ids = IdTable(self._lock)
        self.run_ids: dict[int, str] = {}  # sparse: most Jan messages have no run
        self.corrupt: list[tuple[int, int]] = []  # (offset, length) of lines that are not messages
        self.corrupt_crcs: list[int] = []  # and the CRC-32 of each (logged once: index/damage.py)
        # Shadowed slots (an id a later line has again), sorted, the visible slots before each,
        # and how many shadowed slots they were made from (made when asked for).
        self._holes: tuple[list[int], list[int], int] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def shadowed(self) -> set[int]:
        """Slots whose id a later line has again (a damaged file): an id names its last line, so
        these are neither listed nor served. Found as ids enter the id table."""
        return self.ids.shadowed

    def add(self, start: int, length: int, message_id: str, run_id: str | None, crc: int) -> int:
        key = message_id.encode(errors="surrogatepass")
        with self._lock:
            slot = len(self.starts)
            self.starts.append(start)
            self.lengths.append(length)
            self.crcs.append(crc)
            self.canon.append(UNKNOWN)
            self.ids.append(key)
            if run_id is not None:
                self.run_ids[slot] = run_id
            self.ids.enter_from(slot)
        return slot

    def add_many(self, starts: Iterable[int], lengths: Iterable[int], ids: list[str],
                 crcs: Iterable[int], run_ids: dict[int, str], text: str | None = None) -> None:
        """Append many messages at once (the start-up and tail paths): C-level array extends, the
        ids packed with one join (`text`, when the caller has it). `run_ids` maps positions in
        these lists to run ids."""
        with self._lock:
            first = len(self.starts)
            self.ids.extend(ids, "".join(ids) if text is None else text)
            # fromlist: for "q" arrays several times faster than extend
            self.starts.fromlist(starts if isinstance(starts, list) else list(starts))
            self.lengths.fromlist(lengths if isinstance(lengths, list) else list(lengths))
            self.crcs.extend(crcs)
            self.canon.extend(bytes(len(ids)))
            for i, run_id in run_ids.items():
                self.run_ids[first + i] = run_id
            self.ids.enter_from(first)

    def has_line(self, start: int, length: int, crc: int) -> bool:
        """Whether a message line of this length and CRC-32 is indexed at `start` (a line this
        process appended: indexed from its own bytes, or in a file another program replaced)."""
        slot = bisect_left(self.starts, start)
        return (slot < len(self.starts) and self.starts[slot] == start
                and self.lengths[slot] == length and self.crcs[slot] == crc)

    def add_corrupt(self, start: int, length: int, crc: int) -> None:
        self.corrupt.append((start, length))
        self.corrupt_crcs.append(crc)

    def key_at(self, slot: int) -> bytes:
        """The id of `slot` as UTF-8 bytes."""
        return self.ids.key(slot)

    def id_at(self, slot: int) -> str:
        return self.ids.key(slot).decode(errors="surrogatepass")

    def id_is(self, slot: int, message_id: str) -> bool:
        """Whether `slot` holds `message_id` (compared in place: no copy of the slot's id)."""
        return self.ids.holds(slot, message_id.encode(errors="surrogatepass"))

    def find(self, message_id: str) -> int:
        """Slot of the last line with this id, or -1 (see IdTable.find)."""
        return self.ids.find(message_id.encode(errors="surrogatepass"))

    def occurs_before(self, message_id: str, slot: int) -> bool:
        """Whether a slot before `slot` has this id (see IdTable.occurs_before)."""
        return self.ids.occurs_before(message_id.encode(errors="surrogatepass"), slot)

    def build_table(self, wait: bool = True) -> array[int] | None:
        """The id table, built now if it is not yet (see IdTable.build); None if `wait` is False
        and another thread is building it."""
        return self.ids.build(wait)

    @property
    def has_table(self) -> bool:
        return self.ids.built

    def reserve_table(self) -> None:
        self.ids.reserve()

    def holes(self) -> tuple[list[int], list[int]] | None:
        """The shadowed slots, sorted, and how many slots are not before each; None but in a
        damaged file. They are known once the id table is: a small index's is built now if it
        is not yet; a large one's is built in a worker thread after start-up (None till then:
        a list must not wait for it)."""
        if not self.ids.built and (len(self.starts) >= LARGE or self.ids.build(wait=False) is None):
            return None
        shadowed = self.ids.shadowed
        if not shadowed:
            return None
        with self._lock:
            if self._holes is None or self._holes[2] != len(shadowed):  # shadowed only grows
                holes = sorted(shadowed)
                self._holes = holes, visible_before(holes), len(holes)
            return self._holes[0], self._holes[1]

    def compact(self) -> None:
        """Drop the spare room arrays keep for growth (up to an eighth): worth a copy once the
        start-up build is done, for large threads."""
        if len(self.starts) < 10_000:
            return
        with self._lock:
            self.starts = array(self.starts.typecode, self.starts)
            self.lengths = array(self.lengths.typecode, self.lengths)
            self.crcs = array(self.crcs.typecode, self.crcs)
            self.canon = bytearray(self.canon)
            self.ids.compact()

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
        return (self.starts.itemsize * len(self.starts) + self.lengths.itemsize * len(self.lengths)
                + len(self.canon) + self.crcs.itemsize * len(self.crcs) + self.ids.nbytes())

