"""A batch of events to every stream it is for: the hub's fan-out.

Writing to a socket costs the kernel about 10 µs however little Python runs around it, so a
fan-out to 1,000 streams takes about 10 ms: it starts at a random stream (no stream is always
served last) and lets the event loop run between slices of streams (a request waits a slice, not
the whole fan-out). Each slice works out what every stream gets first, then writes back to back.
"""

from __future__ import annotations

import asyncio
import logging
import random

from .subscription import Event, Subscription, Write

log = logging.getLogger(__name__)

SLICE = 128  # streams written between two turns of the event loop during a fan-out
# Turns of the event loop a create's answer takes from its write to its socket (the writer's
# future, then its handler): a fan-out yields as many first, so it does not hold the answer back.
ANSWER_TURNS = 2


async def deliver(subscribers: dict[Subscription, None], events: list[tuple[int, Event]]
              ) -> None:
    """Hand a batch of (feed sequence number, event) to every stream in `subscribers` it is
    for, in order; a stream found closed is taken out of `subscribers`."""
    subs = tuple(subscribers)
    if not subs:
        return
    first = random.randrange(len(subs))
    subs = subs[first:] + subs[:first]
    every = [e for _, e in events]
    by_thread: dict[str, list[Event]] = {}
    for e in every:
        by_thread.setdefault(e.thread_id, []).append(e)
    oldest = min(seq for seq, _ in events)  # not the first: creations go in journal order
    for _ in range(ANSWER_TURNS):
        await asyncio.sleep(0)
    for start in range(0, len(subs), SLICE):
        if start:
            await asyncio.sleep(0)  # let requests through: they wait a slice at most
        # What to write, then the writes back to back (the kernel's work per write is
        # most of a fan-out's time; this keeps the Python work out of its way).
        writes: list[Write] = []
        for sub in subs[start:start + SLICE]:
            if sub.after_seq >= oldest:  # live from a change within the batch on
                mine = _from_first_new(events, sub)
            elif sub.thread_id is None:
                mine = every
            else:
                mine = by_thread.get(sub.thread_id, [])
            if not mine:
                continue
            # Once it has had an event, every later batch is all its own (one held
            # and released later, though older in the feed, included).
            sub.after_seq = 0
            try:
                write = sub.push(mine)
            except Exception:  # one broken stream must not stop the others
                log.exception("event hub: could not hand events to a stream; closing it")
                sub.close()
                write = None
            if write is not None:
                writes.append(write)
            elif sub.closed:
                subscribers.pop(sub, None)
        for send, data in writes:
            try:
                send(data)
            except Exception:  # a transport that broke since; its stream ends on its own
                log.debug("event hub: a stream's write failed", exc_info=True)


def _from_first_new(events: list[tuple[int, Event]], sub: Subscription) -> list[Event]:
    """A stream that went live during this batch: its events from the first one that came in
    after it subscribed, on (in the batch's order, which is journal order: an older creation
    released after a newer one must not be skipped, or a resume after the newer one misses it)."""
    for i, (seq, _) in enumerate(events):
        if seq > sub.after_seq:
            return [e for _, e in events[i:] if sub.thread_id in (None, e.thread_id)]
    return []
