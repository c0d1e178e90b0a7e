"""Corrupt lines, logged once: each as it is first indexed (at start-up, when another program
appends it, when a rewrite of the file brings more of them), at most LOGGED of a thread at a time,
the rest counted in one line. `/healthz` lists them all; `threadline check` says what is wrong
with each."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LOGGED = 10  # corrupt lines of one thread logged one by one at a time


def report(thread_id: str, corrupt: list[tuple[int, int]], known: int) -> None:
    """Log `corrupt[known:]`, the (offset, length) of lines not logged before."""
    new = corrupt[known:]
    for start, length in new[:LOGGED]:
        log.warning("thread %s: corrupt line skipped at byte %d (%d bytes); "
                    "`threadline check` says why", thread_id, start, length)
    if len(new) > LOGGED:
        log.warning("thread %s: %d more corrupt lines skipped (listed in /healthz)", thread_id,
                    len(new) - LOGGED)
