"""Creations in journal order on every stream, also with several processes on one folder.

Event ids are journal positions, and a resume replays the journal after the client's last id, so a
stream must never send a creation before an older one it is still going to send: a client that
disconnected between the two would resume past the older one and miss it. With one process the
feed's order is the journal's. With several, another process may journal a message (id 83) that
this one has not indexed yet when it journals its own (id 166): its own event then waits until
the other one arrives here (its thread is synced at once, and the watcher would see it within
milliseconds) or that sync does not find it (deleted meanwhile, say), and both go out in id
order. HOLD_SECONDS bounds the wait should neither happen.
"""

from __future__ import annotations

import time
from itertools import pairwise

from .journal import Journal
from .subscription import Event

# The longest an event waits for an older creation of another process: a sync of its thread
# ends the wait sooner, whether it finds the creation (then both go) or not (it is gone).
HOLD_SECONDS = 2.0

Batch = list[tuple[int, Event]]  # (feed sequence number, event)


class InOrder:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.held: Batch = []  # events kept back, in the order they will go

    def release(self, events: Batch) -> tuple[Batch, set[str]]:
        """What may go out now: `events` after those held, creations in journal order, up to
        the first one younger than a creation another process journaled and this one has not
        seen yet. Also the threads of those unseen creations (to be synced now)."""
        if self.held:
            events = self.held + events
            self.held = []
        events = _by_id(events)  # a batch too may hold another process's older one
        floor, threads = self.journal.unseen(time.monotonic() - HOLD_SECONDS)
        if floor is None:
            return events, set()
        # An update's id is the latest creation's this process knows of: it waits as well.
        cut = next((i for i, (_, e) in enumerate(events) if e.num > floor), len(events))
        self.held = events[cut:]
        return events[:cut], threads


def _by_id(events: Batch) -> Batch:
    """Events sorted by event id, feed order among equal ids: ids never go down on a stream (a
    resume after one must not miss an older creation sent later). A creation's id is its
    journal position, an update's the latest creation this process knew of when it was built,
    so an update still follows the creation of its message."""
    if all(a[1].num <= b[1].num for a, b in pairwise(events)):
        return events  # the usual case: already in order
    return sorted(events, key=lambda item: item[1].num)  # stable: feed order among equals
