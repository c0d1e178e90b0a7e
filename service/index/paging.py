"""Cursor pagination by position, shared by every list endpoint.

`seq` holds the positions of the listable items in ascending order: `range(n)` for a whole thread
or the thread list, the matching slots for a `run_id` filter. `after`/`before` are positions of the
cursor items (which need not be in `seq`; a deleted item's lies between two slots, x.5). The page
holds up to `limit` items of the window between the cursors, nearest the cursor it starts from,
in the requested order; `has_more` says whether the window holds more beyond the page.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Literal, overload

Order = Literal["asc", "desc"]


def page(seq: Sequence[int], limit: int, order: Order, after: float | None,
         before: float | None) -> tuple[list[int], bool]:
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


def visible_before(holes: Sequence[int]) -> list[int]:
    """For sorted holes, how many positions are not holes before each (`Visible`'s `before`)."""
    return [h - j for j, h in enumerate(holes)]


class Visible(Sequence[int]):
    """Positions 0..n-1 but `holes` (sorted), as the `seq` of `page`: the slots of a thread whose
    file repeats an id (each id is listed once, at its last line). `before[j]` is how many
    positions are visible before hole j (`holes[j] - j`, never decreasing), so the i-th visible
    position is i plus the number of holes with at most i visible positions before them: one
    bisection, and a page is found in O(log n) as over a range."""

    def __init__(self, n: int, holes: Sequence[int], before: Sequence[int]) -> None:
        self._n = n
        self._holes = holes
        self._before = before

    @classmethod
    def of(cls, n: int, holes: list[int]) -> Visible:
        return cls(n, holes, visible_before(holes))

    def __len__(self) -> int:
        return self._n - len(self._holes)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> list[int]: ...

    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return i + bisect_right(self._before, i)
