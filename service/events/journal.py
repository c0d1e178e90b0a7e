"""The event journal: a durable order of message creations, shared by every process.

SSE event ids must survive restarts and mean the same in every Threadline process on a folder, and
messages from many threads have no common order on disk. The journal gives them one:
`<data>/.threadline/events.jsonl` holds a line per created message (`{"t":thread,"m":message}`),
appended under a cross-process lock by whichever process indexes the message first; the others find
the record when they take the lock and use its position. An event id is the byte offset just past
the record, so "resume after id N" is "read the journal from N".

Baseline lines (`{"t":thread,"b":last_message_or_null}`) mark where a thread stood when the journal
began, so a restart can journal exactly the messages written while no Threadline was running.
Deletion lines (`{"t":thread,"m":message,"d":true}`, no `m` for a whole thread) make a message
restored later with the same id (a backup copied back) a new creation, also after a restart.
Blocking: every method here runs in a worker thread, except `try_append`, which the event loop
calls: it never waits for the lock, and what it does under it (no fsync: the journal can be rebuilt
from the thread files) takes microseconds, far less than a hop to a worker thread and back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Literal

import msgspec


class Record(msgspec.Struct, omit_defaults=True):
    t: str
    m: str | None = None  # a created message
    b: str | None = None  # baseline: the thread's last message when the journal first saw it
    o: int = 0  # end offset of the message's line in messages.jsonl when journaled
    # A deletion: of message `m`, or of the whole thread when there is no `m`. Records before it
    # no longer name a message that exists, so one restored with the same id (a backup copied
    # back) is a new creation with a new event id, also after a restart.
    d: bool = False


_decoder = msgspec.json.Decoder(Record)
_encoder = msgspec.json.Encoder()
Entry = tuple[int, Record]  # (event id: offset just past the record, record)
# Creations seen in their file after their deletion was journaled: all (True) or these.
Present = Literal[True] | AbstractSet[tuple[str, str]]

RECENT = 200_000  # records remembered for de-duplication between processes
INLINE_CATCH_UP = 64 * 1024  # bytes of other processes' records `try_append` reads on the loop
READ_BLOCK = 1 << 20  # bytes of the journal a replay reads at a time


def journal_path(data_dir: Path) -> Path:
    return data_dir / ".threadline" / "events.jsonl"


class Journal:
    def __init__(self, data_dir: Path) -> None:
        self.path = journal_path(data_dir)
        self.folder = self.path.parent
        self.existed = False
        # The file was removed (or replaced by a shorter one) while this process ran: it starts
        # again from what the file holds, and the hub journals a baseline for each thread.
        self.replaced = False
        self.end = 0  # how far this process has read (always at a line boundary)
        self.last: dict[str, Record] = {}  # per thread, its latest record
        self.base: dict[str, str | None] = {}  # per thread, its latest baseline's message
        self._recent: OrderedDict[tuple[str, str], int] = OrderedDict()
        # Messages whose latest record is their deletion (as many as _recent at most): one found
        # again was copied back (a restore, new creation) or seen in a file read before another
        # process deleted it (`doubtful`); start-up journals those back while no server ran.
        self.deleted: OrderedDict[tuple[str, str], int] = OrderedDict()
        # Creations other processes journaled, read while this one appended, that it has not
        # journaled (so not seen) itself yet: (thread, message) -> (event id, when read).
        self._unseen: dict[tuple[str, str], tuple[int, float]] = {}
        # Threads deleted: their records up to this offset are forgotten.
        self._forgotten: dict[str, int] = {}
        # A write failed: what is remembered is not what the file holds (read again first).
        self._stale = False

    def load(self) -> None:
        """Read the whole journal (start-up): the latest record of every thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            # An empty one holds nothing to begin from (a first start on a full disk left it
            # so): the folder's messages are then baselined, not taken for new ones.
            self.existed = os.fstat(fd).st_size > 0
            self._catch_up(fd)
        finally:
            os.close(fd)

    def _reset(self) -> None:
        """Forget everything read or appended: after a write that failed (a full disk), what
        was remembered as appended may not be in the file. `append` reads the file again."""
        self.end = 0
        for state in (self.last, self.base, self._recent, self.deleted, self._unseen,
                      self._forgotten):
            state.clear()
        self._stale = False

    def _remember(self, offset: int, rec: Record) -> None:
        if rec.d:
            if rec.m is not None:
                self._recent.pop((rec.t, rec.m), None)
                self._unseen.pop((rec.t, rec.m), None)
                self.deleted[(rec.t, rec.m)] = offset
                self.deleted.move_to_end((rec.t, rec.m))
                if len(self.deleted) > RECENT:
                    self.deleted.popitem(last=False)
            else:  # the thread is gone: all it had is forgotten, as if the journal began now
                self._forgotten[rec.t] = offset  # (not a walk of every record remembered)
                self.last[rec.t] = rec
                self.base[rec.t] = None
                for key in [k for k in self._unseen if k[0] == rec.t]:
                    del self._unseen[key]
            return
        self.last[rec.t] = rec
        if rec.m is None:
            self.base[rec.t] = rec.b
        else:
            key = (rec.t, rec.m)
            self.deleted.pop(key, None)
            self._recent[key] = offset
            self._recent.move_to_end(key)
            if len(self._recent) > RECENT:
                self._recent.popitem(last=False)

    def _catch_up(self, fd: int, size: int | None = None, live: bool = False) -> None:
        stop = os.fstat(fd).st_size if size is None else size
        now = time.monotonic()
        while self.end < stop:
            entries, end = self._read(fd, self.end, stop, READ_BLOCK)
            for offset, rec in entries:
                self._remember(offset, rec)
                if live and rec.m is not None and not rec.d:
                    self._unseen[(rec.t, rec.m)] = (offset, now)
            if end == self.end:
                break  # only a torn last line left
            self.end = end

    @staticmethod
    def _read(fd: int, start: int, stop: int, limit: int) -> tuple[list[Entry], int]:
        """The whole records from `start` up to `stop`, about `limit` bytes of them at most, and
        where the next record starts."""
        size = min(stop - start, limit)
        data = os.pread(fd, size, start) if size > 0 else b""
        if start + len(data) < stop and b"\n" not in data:
            data = os.pread(fd, stop - start, start)  # one record longer than the block
        out: list[Entry] = []
        pos = 0
        while (nl := data.find(b"\n", pos)) >= 0:
            # A line torn by a crash is skipped: the next writer starts a fresh line after it.
            with contextlib.suppress(msgspec.DecodeError):
                out.append((start + nl + 1, _decoder.decode(data[pos:nl])))
            pos = nl + 1
        return out, start + pos

    def append(self, records: list[Record], present: Present = frozenset()) -> list[int]:
        """Journal records, unless another process already journaled the same message; return the
        event id of each (its offset end) in order. A creation of a message whose latest record
        is its deletion gets 0, not a record, unless `present` (True, or the set of such
        (thread, message) keys: the caller saw the message in its file after that deletion was
        journaled): it may be a restore, or only a sighting of the file as it was before another
        process deleted it (see `doubtful`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ids = self._append(records, wait=True, present=present)
        assert ids is not None  # waited for the lock
        return ids

    def try_append(self, records: list[Record], present: Present = frozenset()) -> list[int] | None:
        """`append`, unless another process holds the journal's lock right now (None: call
        `append` from a worker thread instead). Called on the event loop: it never blocks."""
        try:
            return self._append(records, wait=False, present=present)
        except FileNotFoundError:  # the folder is gone: `append` makes it again
            return None

    def doubtful(self, thread_id: str, message_id: str) -> bool:
        """Whether the latest record of a message is its deletion (or its thread's)."""
        key = (thread_id, message_id)
        return key in self.deleted or (key in self._recent and self.id_of(*key) is None)

    def _append(self, records: list[Record], wait: bool, present: Present) -> list[int] | None:
        if self._stale and not wait:
            return None  # the whole file is read again first: in a worker thread
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            if self._stale:
                self._reset()
            size = found = os.fstat(fd).st_size  # under the lock: nobody appends meanwhile
            if size < self.end:  # removed, or a shorter one put in its place
                self._reset()
                self.existed, self.replaced = False, True
            if not wait and size - self.end > INLINE_CATCH_UP:
                return None  # much written by other processes: read it in a worker thread
            self._catch_up(fd, size, live=True)
            chunks: list[bytes] = []
            # Past the last record read there is at most a torn or unreadable line.
            if size != self.end and os.pread(fd, 1, size - 1) != b"\n":
                chunks.append(b"\n")  # close a torn line left by a crash
                size += 1
            ids: list[int] = []
            for rec in records:
                known = self.id_of(rec.t, rec.m) if rec.m is not None and not rec.d else None
                if known is not None:
                    ids.append(known)
                    self._unseen.pop((rec.t, rec.m or ""), None)
                    continue
                if (rec.m is not None and not rec.d
                        and not (present is True or (rec.t, rec.m) in present)
                        and self.doubtful(rec.t, rec.m)):
                    ids.append(0)  # deleted since it was last created: the caller confirms
                    continue
                line = _encoder.encode(rec) + b"\n"
                chunks.append(line)
                size += len(line)
                ids.append(size)
                self._remember(size, rec)
            if len(chunks) > (1 if chunks and chunks[0] == b"\n" else 0):
                data = b"".join(chunks)
                view = memoryview(data)
                try:
                    while view:
                        view = view[os.write(fd, view):]
                except OSError:
                    # Remembered above as journaled, yet not (or only partly) in the file: the
                    # next append reads the file again, so a retry journals them for real.
                    # What a full disk took of them is taken back: all or nothing, as the
                    # caller is told (a start's baselines, part of them kept, would have the
                    # next start take the other threads' messages for new ones).
                    self._stale = True
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, found)
                    raise
            self.end = size
            return ids
        finally:
            os.close(fd)  # drops the lock

    def bounds(self, offset: int) -> tuple[int, int]:
        """Event id `offset` clamped to the journal's size (an id beyond its end, the journal
        removed or restored from elsewhere, resumes from the end: it cannot mute later events),
        and the size."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0, 0
        return min(offset, size), size

    def read_block(self, offset: int, stop: int, thread_id: str | None = None,
                   limit: int = READ_BLOCK) -> tuple[list[Entry], int]:
        """Records of created messages (optionally of one thread) in about `limit` bytes of the
        journal from `offset` (a record boundary) up to `stop`, and where the next block starts
        (`stop` when done)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return [], stop
        try:
            entries, end = self._read(fd, offset, min(stop, os.fstat(fd).st_size), limit)
        finally:
            os.close(fd)
        return ([(o, r) for o, r in entries
                 if r.m is not None and not r.d and (thread_id is None or r.t == thread_id)],
                end if end > offset else stop)

    def unseen(self, read_before: float) -> tuple[int | None, set[str]]:
        """The oldest event id among other processes' creations this one has not seen yet, and
        their threads; those read before `read_before` (monotonic) are given up on first."""
        for key in [k for k, (_, when) in self._unseen.items() if when < read_before]:
            del self._unseen[key]
        if not self._unseen:
            return None, set()
        return (min(offset for offset, _ in self._unseen.values()),
                {t for t, _ in self._unseen})

    def settle_unseen(self, thread_id: str, synced_from: float, coming: Callable[[str], bool]
                      ) -> None:
        """A sync of `thread_id` that began at `synced_from` (monotonic) is done: of the unseen
        creations of the thread read before then, only those `coming` (on their way to being
        journaled here) are still waited for. The others are gone, or were indexed here before
        and will not be journaled here again (deleted and restored faster than the watcher)."""
        for key in [k for k, (_, when) in self._unseen.items()
                    if k[0] == thread_id and when < synced_from and not coming(k[1])]:
            del self._unseen[key]

    def id_of(self, thread_id: str, message_id: str) -> int | None:
        """The event id of a message's record, unless its thread was deleted since."""
        offset = self._recent.get((thread_id, message_id))
        if offset is not None and offset <= self._forgotten.get(thread_id, 0):
            return None
        return offset
