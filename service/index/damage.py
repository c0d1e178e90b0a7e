"""Corrupt lines, logged once: each as it is first indexed (at start-up, when another program
appends it or rewrites the file with it), at most LOGGED of a thread at a time, the rest counted in
one line. A line is known by its length and CRC-32, so one that a rewrite only moved is not logged
again. Each process logs for itself. `/healthz` lists them all; `threadline check` says what is
wrong with each."""

from __future__ import annotations

import logging

from .catalog import ThreadEntry
from .messages import MessageIndex

log = logging.getLogger(__name__)

LOGGED = 10  # corrupt lines of one thread logged one by one at a time
REMEMBERED = 10_000  # lines of one thread remembered as logged (a file of garbage: counted only)


def report(entry: ThreadEntry, before: MessageIndex, known: int) -> None:
    """Log the corrupt lines of `entry` not logged before: of those past `known` when its index is
    still `before` (lines appended), else of all (the file was read again)."""
    index = entry.messages
    first = known if index is before else 0
    logged = entry.logged
    new = []
    for (start, length), crc in zip(index.corrupt[first:], index.corrupt_crcs[first:],
                                    strict=True):
        if (length, crc) not in logged:
            new.append((start, length))
            if len(logged) < REMEMBERED:
                logged.add((length, crc))
    for start, length in new[:LOGGED]:
        log.warning("thread %s: corrupt line skipped at byte %d (%d bytes); "
                    "`threadline check` says why", entry.id, start, length)
    if len(new) > LOGGED:
        log.warning("thread %s: %d more corrupt lines skipped (listed in /healthz)", entry.id,
                    len(new) - LOGGED)
