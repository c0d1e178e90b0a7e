"""Journaling a batch of changes for the hub (hub.py): their event ids, in feed order.

The journal (journal.py) gives a created message its event id. Here, around it: records a failed
append left out (a full disk) are journaled first at the next append that works, so a resume still
finds them (their events went out live with watermark ids); a creation the journal knows as deleted
since is checked against its file (restored, or only a sighting of the file before another process
deleted it); and a journal removed while the server runs is started again with a baseline per
thread (`catch_up`).
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from ..index.catalog import Catalog
from .catchup import unjournaled
from .journal import Journal, Record
from .replay import Sync

log = logging.getLogger(__name__)

WAITING_LIMIT = 100_000  # records kept for a retry while the journal cannot be appended to


class Recorder:
    def __init__(self, catalog: Catalog, journal: Journal, sync: Sync | None) -> None:
        self.catalog = catalog
        self.journal = journal
        self._sync = sync
        self._waiting: list[Record] = []  # left out by a failed append: journaled first
        self._catch_up_pending = False  # `catch_up` failed: tried again after an append works

    async def ids(self, records: list[Record], watermark: int) -> list[int]:
        """Event ids of journaled changes: journaled right here when the lock is free, else
        (another process holds it) from a worker thread. -1 for the creation of a message
        deleted since, as this process saw the thread's file before another one deleted it:
        no record, no event (its deletion follows)."""
        loop = asyncio.get_running_loop()
        # Records a failed append left out (a full disk) go first, in order, so that a resume
        # still finds them; their events went out live already (with watermark ids).
        waiting, records = self._waiting, self._waiting + records
        checked, restored = await self._restored(records)
        try:
            ids = self.journal.try_append(records, restored)
            if ids is None:
                ids = await loop.run_in_executor(
                    None, partial(self.journal.append, records, restored))
        except OSError as exc:
            if not waiting:
                log.warning("event journal: cannot append (%s); events keep flowing with "
                            "watermark ids, and their records wait for the next append",
                            exc.strerror or exc)
            self._waiting = records[-WAITING_LIMIT:]
            return [watermark] * (len(records) - len(waiting))
        if waiting:
            log.info("event journal: %d waiting records journaled", len(waiting))
        self._waiting = []
        if self.journal.replaced:
            log.warning("event journal: %s was removed or replaced; starting it again",
                        self.journal.path)
            self.journal.replaced = False
            self._catch_up_pending = True
        if self._catch_up_pending:
            await self.catch_up()
        records, ids = records[len(waiting):], ids[len(waiting):]
        doubtful = [i for i, (r, jid) in enumerate(zip(records, ids, strict=True))
                    if jid == 0 and r.m is not None and not r.d]
        for i in doubtful:
            ids[i] = -1
        # Those `_restored` synced for and found gone need no second look: only creations found
        # doubtful under the journal's lock (after another process's records) are checked here.
        doubtful = [i for i in doubtful if (records[i].t, records[i].m) not in checked]
        if doubtful and self._sync is not None:
            try:
                # Or restored since (a backup copied back): then its file has it now.
                for thread_id in {records[i].t for i in doubtful}:
                    await self._sync(thread_id)
                present = [i for i in doubtful if self.has(records[i].t, records[i].m)]
                if present:
                    again = await loop.run_in_executor(
                        None, partial(self.journal.append, [records[i] for i in present],
                                      present=True))
                    for i, jid in zip(present, again, strict=True):
                        ids[i] = jid
            except Exception:  # they stay unpublished: a resume replays them if they are back
                log.exception("event journal: could not check creations deleted since")
        return ids

    async def _restored(self, records: list[Record]
                        ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """Creations of messages this process knows as deleted since (checked), and those of
        them their file has again once their thread is synced (a restore: journaled in their
        place in the batch, before a newer message written with them). One found doubtful only
        under the journal's lock, after another process's records, is checked after the append
        instead (`ids`)."""
        maybe = {(r.t, r.m) for r in records
                 if r.m is not None and not r.d and self.journal.doubtful(r.t, r.m)}
        if not maybe or self._sync is None:
            return set(), set()
        try:
            for thread_id in {t for t, _ in maybe}:
                await self._sync(thread_id)
        except Exception:
            log.debug("event journal: could not sync before journaling", exc_info=True)
            return set(), set()
        return maybe, {(t, m) for t, m in maybe if self.has(t, m)}

    async def catch_up(self) -> None:
        """Journal what the files hold that the journal does not: at start-up (what was written
        while no server ran, or a baseline per thread of a folder the journal begins on), and
        when the journal was removed or replaced while this process ran (as at a start on a
        folder with none: a restart then does not take every older message for a new one, and
        an id from before resumes from now). On a full disk, tried again after the next append
        that works, so a restart does not take them for new ones either."""
        records = unjournaled(self.catalog, self.journal)
        if records:
            try:
                # Read from the files just now: present, restored or not.
                await asyncio.get_running_loop().run_in_executor(
                    None, partial(self.journal.append, records, present=True))
            except OSError as exc:
                log.warning("event journal: cannot journal the %d messages found in the files "
                            "(%s); serving without their records (a resume finds them by their "
                            "place in the thread) until an append works",
                            len(records), exc.strerror or exc)
                self._catch_up_pending = True
                return
        self._catch_up_pending = False
        self.journal.existed = True

    def has(self, thread_id: str, message_id: str | None) -> bool:
        entry = self.catalog.get(thread_id)
        return entry is not None and message_id is not None and entry.messages.find(
            message_id) >= 0
