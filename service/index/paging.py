"""Cursor pagination by position, shared by every list endpoint.

`seq` holds the positions of the listable items in ascending order: `range(n)` for a whole thread
or the thread list, the matching slots for a `run_id` filter. `after`/`before` are positions of the
cursor items (which need not be in `seq`). The page holds up to `limit` items of the window between
the cursors, nearest the cursor it starts from, in the requested order; `has_more` says whether the
window holds more beyond the page.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Literal

Order = Literal["asc", "desc"]


def page(seq: Sequence[int], limit: int, order: Order, after: int | None, before: int | None
         ) -> tuple[list[int], bool]:
    lo, hi = 0, len(seq)
    if order == "asc":
        if after is not None:
            lo = max(lo, bisect_right(seq, after))
        if before is not None:
            hi = min(hi, bisect_left(seq, before))
        from_high = before is not None and after is None
    else:
        if after is not None:
            hi = min(hi, bisect_left(seq, after))
        if before is not None:
            lo = max(lo, bisect_right(seq, before))
        from_high = not (before is not None and after is None)
    if hi <= lo:
        return [], False
    if from_high:
        start, stop = max(lo, hi - limit), hi
        more = start > lo
    else:
        start, stop = lo, min(hi, lo + limit)
        more = stop < hi
    positions = list(seq[start:stop])
    if order == "desc":
        positions.reverse()
    return positions, more
