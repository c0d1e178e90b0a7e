"""Start-up: journal the messages written while no Threadline ran (so a resume replays them),
and nothing that was there before."""

from __future__ import annotations

from ..index.catalog import Catalog, ThreadEntry
from .journal import Journal, Record


def unjournaled(catalog: Catalog, journal: Journal) -> list[Record]:
    """The records to journal at start-up: a baseline for each thread of a folder the journal
    begins on (its messages are not new), and each message written since a thread's last record."""
    records: list[Record] = []
    for entry in catalog.ordered():
        index = entry.messages
        last = journal.last.get(entry.id)
        if last is None and not journal.existed:
            records.append(Record(t=entry.id, b=index.id_at(len(index) - 1) if len(index)
                                  else None))
            continue
        known = last.m or last.b if last is not None else None
        slot = index.find(known) if known else -1
        if slot < 0 and known is not None and journal.base.get(entry.id, "") is not None:
            records.extend(_after_newest_known(entry, journal))  # its newest known was deleted
            continue
        # No record (the thread appeared while no Threadline ran), or it was empty when the
        # journal began: every message not journaled is new.
        for s in range(slot + 1, len(index)):
            mid = index.id_at(s)
            if journal.id_of(entry.id, mid) is None:
                records.append(Record(t=entry.id, m=mid))
    return records + _restored(catalog, journal, {(r.t, r.m) for r in records})


def _restored(catalog: Catalog, journal: Journal, planned: set[tuple[str, str | None]]
              ) -> list[Record]:
    """Messages whose latest record is their deletion, yet there again: copied back (a backup)
    while no server ran. Created anew, in file order per thread."""
    found = []
    for thread_id, message_id in journal.deleted:
        entry = catalog.get(thread_id)
        if entry is not None and (thread_id, message_id) not in planned:
            slot = entry.messages.find(message_id)
            if slot >= 0:
                found.append((thread_id, slot, message_id))
    return [Record(t=t, m=m) for t, _, m in sorted(found)]


def _after_newest_known(entry: ThreadEntry, journal: Journal) -> list[Record]:
    """The new messages of a thread whose latest journaled message was deleted: those after the
    newest one still there that the journal knows (journaled, or its baseline). With none of
    those left, its messages are counted as old (not replayed as new) and a fresh baseline
    records where it stands."""
    index, base, new = entry.messages, journal.base.get(entry.id), []
    for slot in range(len(index) - 1, -1, -1):
        mid = index.id_at(slot)
        if mid == base or journal.id_of(entry.id, mid) is not None:
            break
        new.append(mid)
    else:
        new = []
    if new:
        return [Record(t=entry.id, m=mid) for mid in reversed(new)]
    return [Record(t=entry.id, b=index.id_at(len(index) - 1) if len(index) else None)]
