"""The served form of lines that are not stored canonical, kept for reuse, bounded in bytes.

A Jan-shaped line costs a decode, a normalization and an encode (about 5 µs for a 1 KB line,
store/shapes.py) each time it is served; a canonical line costs nothing. Remembering the
normalized bytes of recently served lines makes the lines people actually page through as cheap
as canonical ones. Keys carry the thread entry's unique number and its generation, so a rewrite
(which renumbers slots) or a thread re-created under the same id can never hit an old value.

Each value also carries the entry's `trust` when its line was last found to be the indexed one.
An append by another program moves the entry's trust (an edit in place that kept every length
may have come with it, unseen by a sync that reads only the new tail): a value held from before
is then served again only once its line, read, still has the CRC-32 the index holds (a `pread`
and a CRC instead of a normalization; tests/test_line_cache.py). That check means something
because a value is only ever made from the indexed line: a line read for the cache whose CRC-32
is not the index's is `Stale` (tests/test_inplace_edits.py: edited, then edited back).
Before, such an append moved a key generation of its own (an `epoch`) and dropped every value
of the thread: with several workers, every create by one emptied the others' caches of that
thread.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict

Key = tuple[int, int, int]  # (entry uid, generation, slot)

entry_uids = itertools.count(1)
# What one value costs besides its bytes: the ordered dict's node, the key tuple and the Held
# object (~200 bytes on CPython 3.11), counted against the budget with the bytes.
ENTRY_OVERHEAD = 200


class Held:
    """A line's served form, and the entry's trust when the line was last found unchanged."""

    __slots__ = ("served", "trust")

    def __init__(self, served: bytes, trust: int) -> None:
        self.served = served
        self.trust = trust


class LineCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Key, Held] = OrderedDict()

    def get(self, key: Key) -> Held | None:
        held = self._items.get(key)
        if held is None:
            return None  # a miss is counted when its line is put (a read may miss twice)
        self.hits += 1
        self._items.move_to_end(key)
        return held

    def get_run(self, uid: int, generation: int, trust: int, slots: list[int]
                ) -> list[bytes] | None:
        """The served forms of every slot of a page, or None unless all are held and trusted
        (then the caller reads the page and serves it line by line, and the misses are counted
        there)."""
        items = self._items
        out = []
        for s in slots:
            held = items.get((uid, generation, s))
            if held is None or held.trust != trust:
                return None  # at the first miss: a page read cold misses every line
            out.append(held.served)
        touch = items.move_to_end
        for s in slots:
            touch((uid, generation, s))
        self.hits += len(slots)
        return out

    def put(self, key: Key, served: bytes, trust: int) -> None:
        self.misses += 1  # every put follows a miss: the line was just normalized
        if len(served) > self.max_bytes // 8:
            return  # one huge line must not flush everything else
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old.served) + ENTRY_OVERHEAD
        self._items[key] = Held(served, trust)
        self.size += len(served) + ENTRY_OVERHEAD
        while self.size > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped.served) + ENTRY_OVERHEAD
