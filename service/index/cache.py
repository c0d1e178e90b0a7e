"""The served form of lines that are not stored canonical, kept for reuse, bounded in bytes.

A Jan-shaped line costs a decode, a normalization and an encode (about 5 µs for a 1 KB line,
store/shapes.py) each time it is served; a canonical line costs nothing. Remembering the
normalized bytes of recently served lines makes the lines people actually page through as cheap
as canonical ones. Keys carry the thread entry's unique number and its epoch, so a rewrite
(which renumbers slots), an append by another program (which may come with an edit in place) or
a thread re-created under the same id can never hit an old value.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

Key = tuple[int, int, int]  # (entry uid, epoch, slot)

entry_uids = itertools.count(1)


class LineCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Key, bytes] = OrderedDict()

    def get(self, key: Key) -> bytes | None:
        value = self._items.get(key)
        if value is None:
            return None  # a miss is counted when its line is put (a read may miss twice)
        self.hits += 1
        self._items.move_to_end(key)
        return value

    def get_run(self, uid: int, epoch: int, slots: list[int]) -> list[bytes] | None:
        """The values of every slot of a page, or None unless all are held (then the caller
        reads and normalizes as usual, and the misses are counted there)."""
        items = self._items
        out = []
        for s in slots:
            value = items.get((uid, epoch, s))
            if value is None:
                return None  # at the first miss: a page read cold misses every line
            out.append(value)
        touch = items.move_to_end
        for s in slots:
            touch((uid, epoch, s))
        self.hits += len(slots)
        return out

    def put(self, key: Key, value: bytes) -> None:
        self.misses += 1  # every put follows a miss: the line was just normalized
        if len(value) > self.max_bytes // 8:
            return  # one huge line must not flush everything else
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._items[key] = value
        self.size += len(value)
        while self.size > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)
