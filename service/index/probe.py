"""Reading a thread folder to bring its index up to date (blocking; runs in a worker thread).

`probe` compares the files with what the index last saw (`Seen`) and reads only what is new: the
bytes appended since the indexed end, or, when the file was rewritten (inode changed, it shrank,
the last indexed line changed, or it changed size-for-size), the whole file into a fresh index.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..models import Thread
from ..store import normalize
from ..store.files import NotAFile, open_file, read_file
from ..store.layout import MESSAGES, THREAD_JSON
from ..store.lines import complete_end, crc32, decode_object
from .build import index_file
from .catalog import FileState, Tail
from .messages import MessageIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seen:
    thread_json: FileState | None = None
    file: FileState | None = None
    tail: Tail | None = None


@dataclass
class Probe:
    gone: bool = False
    thread: Thread | None = None  # set when thread.json was (re)read
    thread_json: FileState | None = None
    thread_json_missing: bool = False
    kind: Literal["none", "tail", "full", "missing"] = "none"
    file: FileState | None = None
    base: int = 0
    data: bytes = b""
    index: MessageIndex | None = None
    tail: Tail | None = None
    undated: bool = False  # thread.json gives no time: the thread is dated by what moves
    own: bool = False  # a tail this process appended (indexed from the bytes it wrote)


def _state(st: os.stat_result) -> FileState:
    return FileState(ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _same(a: FileState, b: FileState | None) -> bool:
    # FileState compares by identity (eq=False): compare what was seen, field by field, or
    # thread.json would be re-read (and re-parsed) on every sync of its thread.
    return b is not None and (a.ino, a.size, a.mtime_ns) == (b.ino, b.size, b.mtime_ns)


def load_thread_json(path: Path) -> dict[str, Any] | None:
    """thread.json as an object; None when it is unreadable or not (yet) one: half-written."""
    try:
        raw = read_file(path)
    except OSError:
        return None
    return decode_object(raw)


_warned: set[Path] = set()


def _warn_once(path: Path) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning("%s is not a regular file: read as no messages, and not written", path)


def _read_from(fd: int, offset: int, end: int) -> bytes:
    """The bytes from `offset` up to `end`: the size the file's state was taken at, so that what
    is indexed is exactly the state recorded (bytes appended since wait for the next sync, and
    the next own append still finds the file as indexed)."""
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    left = end - offset
    while left > 0 and (chunk := os.read(fd, min(left, 1 << 22))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def same_file(a: Probe, b: Probe) -> bool:
    """Whether two probes found the same thing (the file in the same state)."""
    if a.kind != b.kind or a.gone != b.gone:
        return False
    if a.file is None or b.file is None:
        return a.file is b.file
    return (a.file.ino, a.file.size, a.file.mtime_ns) == (b.file.ino, b.file.size, b.file.mtime_ns)


def _unchanged(st: FileState, old: FileState, tail: Tail) -> bool:
    """messages.jsonl is exactly as indexed: same file, nothing past the indexed end, same mtime."""
    return st.ino == old.ino and st.size == tail.end and st.mtime_ns == old.mtime_ns


def as_seen(folder: Path, seen: Seen) -> bool:
    """Whether both files are exactly as `seen` (two stats, no read): a sync would find nothing.
    Cheap enough for the event loop; False whenever in doubt."""
    if seen.file is None or seen.thread_json is None or seen.tail is None:
        return False
    try:
        st = _state(os.stat(folder / MESSAGES))
        tj = _state(os.stat(folder / THREAD_JSON))
    except OSError:
        return False
    return _unchanged(st, seen.file, seen.tail) and _same(tj, seen.thread_json)


def _probe_messages(folder: Path, seen: Seen, probe: Probe, table: bool, whole: bool) -> None:
    try:
        fd = open_file(folder / MESSAGES, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError, NotAFile) as exc:
        if isinstance(exc, NotAFile):  # a directory, a FIFO: there are no messages to read
            _warn_once(folder / MESSAGES)
        probe.kind = "missing" if seen.file is not None else "none"
        return
    try:
        st = _state(os.fstat(fd))
        probe.file = st
        old = seen.file
        tail = seen.tail or Tail()
        if not whole and old is not None and st.ino == old.ino and st.size >= tail.end:
            if _unchanged(st, old, tail):
                return
            if st.size > tail.end:
                data = _read_from(fd, tail.start, st.size)
                head = tail.end - tail.start
                if tail.end == 0 or (data[head - 1 : head] == b"\n"
                                     and crc32(data[: tail.length]) == tail.crc):
                    probe.kind, probe.base, probe.data = "tail", tail.end, data[head:]
                    return
        probe.kind = "full"
        probe.index, probe.tail = index_file(fd)
        if table:  # here, in the worker thread, rather than at the first lookup on the loop
            probe.index.build_table()
    finally:
        os.close(fd)


def probe(folder: Path, thread_id: str, seen: Seen, table: bool = True, whole: bool = False
          ) -> Probe:
    """What changed in `folder` since `seen`; a folder with neither file is not a thread. A full
    read builds the index's id table too unless `table` is false (start-up: see messages.py).
    `whole`: read messages.jsonl whole even if its state says nothing changed or it grew."""
    result = Probe()
    try:
        folder_st = os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):
        result.gone = True
        return result
    try:
        tj = _state(os.stat(folder / THREAD_JSON))
    except (FileNotFoundError, NotADirectoryError):
        tj = None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        # A link to itself: the link's own state; reading it then fails as for a directory
        # there (store/files.py), which serves the thread without what thread.json would say.
        tj = _state(os.lstat(folder / THREAD_JSON))
    _probe_messages(folder, seen, result, table, whole)
    if tj is None and result.file is None:
        result.gone = True
        return result
    if tj is None:
        result.thread_json_missing = True
        # A known thread whose thread.json vanished keeps its last state: most often the folder
        # is being removed file by file, and the thread is about to be gone, not changed.
        if seen.thread_json is None and seen.file is None:
            result.thread = normalize.thread({}, thread_id, _fallback_created(folder, folder_st))
    elif not _same(tj, seen.thread_json):
        obj = load_thread_json(folder / THREAD_JSON)
        # Jan rewrites thread.json in place (truncate, write): caught half-way, it does not parse.
        # A thread already known keeps its last good state until the file parses again (the
        # state is not recorded, so the next sync re-reads it); a new one still loads, leniently.
        if obj is not None or seen.thread_json is None:
            obj = obj or {}
            result.thread_json = tj
            dated = bool(normalize.created_seconds(obj))
            result.undated = not dated
            result.thread = normalize.thread(obj, thread_id, 0 if dated
                                             else _fallback_created(folder, folder_st))
    return result


def _fallback_created(folder: Path, folder_st: os.stat_result) -> int:
    """A thread's creation time when thread.json gives none: its first message's, which stays
    put (the folder's mtime moves whenever a file is created or renamed in it, so a restart
    would list the thread elsewhere); the folder's mtime only when there is no message yet."""
    try:
        fd = open_file(folder / MESSAGES, os.O_RDONLY)
        try:
            head = os.read(fd, 1 << 16)  # small and rare: only for a thread.json without a time
        finally:
            os.close(fd)
    except OSError:
        head = b""
    for line in head[:complete_end(head)].split(b"\n"):
        obj = decode_object(line)
        if obj is not None and (created := normalize.created_seconds(obj)):
            return created
    return int(folder_st.st_mtime)
