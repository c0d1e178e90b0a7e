"""What changed in a thread's messages, as the events to publish: between two indexes of its file
(a rewrite read whole), or for lines appended to one. Pure: the indexer publishes what these say."""

from __future__ import annotations

from collections.abc import Iterator

from ..feed import Kind
from .messages import MessageIndex

SEARCHED_LINES = 16  # appended lines looked up by a search while a large id table is not built

# (kind, message id, offset, length, for a deletion the message listed just before it then)
Event = tuple[Kind, str, int, int, str | None]


def rewritten(old: MessageIndex, new: MessageIndex) -> Iterator[Event]:
    """A message gone, new or changed (its line's CRC-32) between `old` and `new`: one event per
    id, for its last line (the earlier copies of a repeated id are not listed)."""
    old.holes()
    new.holes()
    for slot in range(len(old)):
        mid = old.id_at(slot)
        if slot not in old.shadowed and new.find(mid) < 0:
            yield ("thread.message.deleted", mid, old.starts[slot], old.lengths[slot],
                   next(iter(old.listed_before(slot, 1)), None))
    for slot in range(len(new)):
        if slot in new.shadowed:
            continue
        mid = new.id_at(slot)
        before = old.find(mid)
        if before >= 0 and old.crcs[before] == new.crcs[slot]:
            continue
        kind: Kind = "thread.message.created" if before < 0 else "thread.message.updated"
        yield kind, mid, new.starts[slot], new.lengths[slot], None


def appended(index: MessageIndex, first: int, shadowed: set[int],
             lines: list[tuple[int, int, str]]) -> Iterator[Event]:
    """The `lines` (offset, length, id) just appended to `index` from slot `first` on, which
    had `shadowed` before: a line repeating an id the thread had is that message changed (it is
    served from this line now), not a new one: an update, like an edit in place."""
    index.holes()  # the earlier copies are known once the id table is
    if index.has_table:
        seen = {index.id_at(s) for s in index.shadowed - shadowed if s < first}
    elif len(lines) <= SEARCHED_LINES:  # a large thread's, not built yet (just after start-up):
        # a search of the older ids, milliseconds a line, so not for a burst
        seen = {mid for _, _, mid in lines if index.occurs_before(mid, first)}
    else:
        seen = set()
    for offset, length, mid in lines:
        kind: Kind = "thread.message.updated" if mid in seen else "thread.message.created"
        seen.add(mid)
        yield kind, mid, offset, length, None
