"""Per-thread message index: packed arrays of line positions and ids, and an open-addressing table.

Memory per message (documented in the README): 8 (start) + 4 (length) + 4 (CRC-32 of the line, to
tell an edited line from an unchanged one when another program rewrites the file) + 1 (canonical
flag) + the id's bytes + 4 (where they end) + 6 to 11 (hash table at load 1/3 to 2/3, 4-byte
entries): 55 to 60 bytes for a 28-byte `msg_...` id, and no Python object per message. The ids are
kept so that a message another program removes can still be named in its deletion event.
Slots are positions in file order; a rewrite of the file builds a fresh index.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
UNKNOWN, CANONICAL, NORMALIZE = 0, 1, 2


class MessageIndex:
    __slots__ = ("_id_ends", "_ids", "_mask", "_table", "canon", "corrupt", "crcs", "lengths",
                 "run_ids", "starts")

    def __init__(self) -> None:
        self.starts = array("q")
        self.lengths = array("I")
        self.crcs = array("I")
        self.canon = bytearray()
        self._ids = bytearray()  # every id's UTF-8 bytes, back to back
        self._id_ends = array("I")  # where each slot's id ends in _ids
        self.run_ids: dict[int, str] = {}  # sparse: most Jan messages have no run
        self.corrupt: list[tuple[int, int]] = []  # (offset, length) of lines that are not messages
        self._table = array("i", bytes(4 * 8))
        self._mask = 7

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, start: int, length: int, message_id: str, run_id: str | None, crc: int) -> int:
        slot = len(self.starts)
        key = message_id.encode(errors="surrogatepass")
        self.starts.append(start)
        self.lengths.append(length)
        self.crcs.append(crc)
        self.canon.append(UNKNOWN)
        self._ids += key
        self._id_ends.append(len(self._ids))
        if run_id is not None:
            self.run_ids[slot] = run_id
        if (slot + 1) * 3 > (self._mask + 1) * 2:
            self._grow()
        else:
            self._insert(hash(key), slot)
        return slot

    def add_many(self, starts: list[int], lengths: list[int], ids: list[str], crcs: list[int],
                 run_ids: dict[int, str]) -> None:
        """Append many messages at once (the start-up and tail paths): C-level array extends and
        one table insert per id. `run_ids` maps positions in these lists to run ids."""
        first = len(self.starts)
        keys = [i.encode(errors="surrogatepass") for i in ids]
        self.starts.extend(starts)
        self.lengths.extend(lengths)
        self.crcs.extend(crcs)
        self.canon.extend(bytes(len(keys)))
        end = len(self._ids)
        ends = []
        for key in keys:
            end += len(key)
            ends.append(end)
        self._ids += b"".join(keys)
        self._id_ends.extend(ends)
        for i, run_id in run_ids.items():
            self.run_ids[first + i] = run_id
        if len(self.starts) * 3 > (self._mask + 1) * 2:
            self._grow(first)
        table = self._table
        mask = self._mask
        for slot, key in enumerate(keys, first + 1):  # entries are slot + 1 (0 = empty)
            i = hash(key) & mask
            while table[i]:
                i = (i + 1) & mask
            table[i] = slot

    def add_corrupt(self, start: int, length: int) -> None:
        self.corrupt.append((start, length))

    def _key(self, slot: int) -> bytes:
        return bytes(self._ids[self._id_ends[slot - 1] if slot else 0 : self._id_ends[slot]])

    def key_at(self, slot: int) -> bytes:
        """The id of `slot` as UTF-8 bytes."""
        return self._key(slot)

    def id_at(self, slot: int) -> str:
        return self._key(slot).decode(errors="surrogatepass")

    def find(self, message_id: str) -> int:
        """Slot of the last line with this id, or -1."""
        key = message_id.encode(errors="surrogatepass")
        table, mask = self._table, self._mask
        i = hash(key) & mask
        found = -1
        while (entry := table[i]) != _EMPTY:
            if entry - 1 > found and self._key(entry - 1) == key:
                found = entry - 1
            i = (i + 1) & mask
        return found

    def _insert(self, h: int, slot: int) -> None:
        table, mask = self._table, self._mask
        i = h & mask
        while table[i] != _EMPTY:
            i = (i + 1) & mask
        table[i] = slot + 1

    def compact(self) -> None:
        """Drop the spare room arrays keep for growth (up to an eighth): worth a copy once the
        start-up build is done, for large threads."""
        if len(self.starts) < 10_000:
            return
        self.starts = array(self.starts.typecode, self.starts)
        self.lengths = array(self.lengths.typecode, self.lengths)
        self.crcs = array(self.crcs.typecode, self.crcs)
        self._id_ends = array(self._id_ends.typecode, self._id_ends)
        self.canon = bytearray(self.canon)
        self._ids = bytearray(self._ids)

    def reserve(self, count: int) -> None:
        """Size the table for `count` messages now, so a large build rehashes nothing."""
        if count * 3 > (self._mask + 1) * 2:
            size = self._mask + 1
            while size * 2 < count * 3:
                size *= 2
            self._mask = size // 2 - 1  # _grow doubles from here
            self._grow()

    def _grow(self, upto: int | None = None) -> None:
        """A table for every slot, holding the first `upto` of them (default: all)."""
        size = (self._mask + 1) * 2
        while size * 2 < len(self.starts) * 3:
            size *= 2
        self._table = array("i", bytes(4 * size))
        self._mask = size - 1
        for slot in range(len(self.starts) if upto is None else upto):
            self._insert(hash(self._key(slot)), slot)

    def end_of(self, slot: int) -> int:
        return self.starts[slot] + self.lengths[slot]

    def slots_with_run(self, run_id: str) -> list[int]:
        return sorted(slot for slot, rid in self.run_ids.items() if rid == run_id)

    def nbytes(self) -> int:
        """Bytes held by the index for its messages (the arrays and the table)."""
        return (self.starts.itemsize * len(self.starts) + self.lengths.itemsize * len(self.lengths)
                + len(self.canon) + self.crcs.itemsize * len(self.crcs)
                + len(self._ids) + self._id_ends.itemsize * len(self._id_ends)
                + self._table.itemsize * len(self._table))
