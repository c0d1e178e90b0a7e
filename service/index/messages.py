"""Per-thread message index: packed arrays of line positions and an open-addressing id table.

Memory per message (documented in the README): 8 (start) + 4 (length) + 8 (id hash) + 4 (CRC-32 of
the line, to tell an edited line from an unchanged one when another program rewrites the file) + 1
(canonical flag) + 8 to 16 (hash table at load 1/4 to 1/2, 4-byte slots) = 33 to 41 bytes, and no
Python object per message. Message ids themselves are not kept: the line holds them.
Slots are positions in file order; a rewrite of the file builds a fresh index.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
UNKNOWN, CANONICAL, NORMALIZE = 0, 1, 2


class MessageIndex:
    __slots__ = ("_mask", "_table", "canon", "corrupt", "crcs", "hashes", "lengths", "run_ids",
                 "starts")

    def __init__(self) -> None:
        self.starts = array("q")
        self.lengths = array("I")
        self.hashes = array("q")
        self.crcs = array("I")
        self.canon = bytearray()
        self.run_ids: dict[int, str] = {}  # sparse: most Jan messages have no run
        self.corrupt: list[tuple[int, int]] = []  # (offset, length) of lines that are not messages
        self._table = array("i", bytes(4 * 8))
        self._mask = 7

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, start: int, length: int, message_id: str, run_id: str | None, crc: int) -> int:
        slot = len(self.starts)
        self.starts.append(start)
        self.lengths.append(length)
        self.crcs.append(crc)
        h = hash(message_id)
        self.hashes.append(h)
        self.canon.append(UNKNOWN)
        if run_id is not None:
            self.run_ids[slot] = run_id
        if (slot + 1) * 2 > self._mask + 1:
            self._grow()
        else:
            self._insert(h, slot)
        return slot

    def add_corrupt(self, start: int, length: int) -> None:
        self.corrupt.append((start, length))

    def find(self, message_id: str) -> int:
        """Slot of the last line with this id, or -1. Equal hashes of different ids (2**-64 per
        pair) are told apart by the caller, which checks the id of the line it reads."""
        return self.find_hash(hash(message_id))

    def find_hash(self, h: int) -> int:
        table, mask, hashes = self._table, self._mask, self.hashes
        i = h & mask
        found = -1
        while True:
            entry = table[i]
            if entry == _EMPTY:
                return found
            if hashes[entry - 1] == h:
                found = max(found, entry - 1)
            i = (i + 1) & mask

    def _insert(self, h: int, slot: int) -> None:
        table, mask = self._table, self._mask
        i = h & mask
        while table[i] != _EMPTY:
            i = (i + 1) & mask
        table[i] = slot + 1

    def _grow(self) -> None:
        size = (self._mask + 1) * 2
        while size < len(self.starts) * 2:
            size *= 2
        self._table = array("i", bytes(4 * size))
        self._mask = size - 1
        for slot, h in enumerate(self.hashes):
            self._insert(h, slot)

    def end_of(self, slot: int) -> int:
        return self.starts[slot] + self.lengths[slot]

    def slots_with_run(self, run_id: str) -> list[int]:
        return sorted(slot for slot, rid in self.run_ids.items() if rid == run_id)

    def nbytes(self) -> int:
        """Bytes held by the index for its messages (the arrays and the table)."""
        return (self.starts.itemsize * len(self.starts) + self.lengths.itemsize * len(self.lengths)
                + self.hashes.itemsize * len(self.hashes) + len(self.canon)
                + self.crcs.itemsize * len(self.crcs)
                + self._table.itemsize * len(self._table))
