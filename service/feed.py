"""The one change feed: every change to the data folder becomes exactly one `Change`.

The index publishes a record for each line it indexes, each message rewritten or removed, each
thread that appears, changes or vanishes, whoever caused it (this process's API, another process,
the Jan app). Subscribers (SSE, metrics, ...) receive them in order per thread; they never watch
files themselves. Positions are byte offsets in `messages.jsonl`, so anything derived from a record
(an SSE event id, say) stays meaningful across restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import msgspec

Kind = Literal[
    "thread.created",
    "thread.updated",
    "thread.deleted",
    "thread.message.created",
    "thread.message.updated",
    "thread.message.deleted",
]


class Change(msgspec.Struct, frozen=True, kw_only=True):
    kind: Kind
    thread_id: str
    message_id: str | None = None
    offset: int = 0  # byte offset of the line in messages.jsonl (message kinds)
    end: int = 0  # offset just past the line's newline
    generation: int = 0  # moves on every rewrite of the thread's messages.jsonl


Subscriber = Callable[[Change], None]
log = logging.getLogger(__name__)


class Feed:
    """Synchronous fan-out: subscribers must not block (an SSE subscriber enqueues and returns)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.published = 0

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def publish(self, change: Change) -> None:
        self.published += 1
        for fn in tuple(self._subscribers):
            try:
                fn(change)
            except Exception:  # one broken subscriber must not stop the others or the writer
                log.exception("change feed subscriber %r failed on %s", fn, change.kind)
