"""Reading a thread folder to bring its index up to date (blocking; runs in a worker thread).

`probe` compares the files with what the index last saw (`Seen`) and reads only what is new: the
bytes appended since the indexed end, or, when the file was rewritten (inode changed, it shrank,
the last indexed line changed, or it changed size-for-size), the whole file into a fresh index.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..models import Thread
from ..store import normalize
from ..store.layout import MESSAGES, THREAD_JSON
from ..store.lines import BAD_LINE, VIEW_DECODER, complete_end, decode_object, line_is_blank
from .catalog import FileState, Tail
from .messages import MessageIndex

_json = msgspec.json.Decoder()


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


def _state(st: os.stat_result) -> FileState:
    return FileState(ino=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _same(a: FileState, b: FileState | None) -> bool:
    # FileState compares by identity (eq=False): compare what was seen, field by field, or
    # thread.json would be re-read (and re-parsed) on every sync of its thread.
    return b is not None and (a.ino, a.size, a.mtime_ns) == (b.ino, b.size, b.mtime_ns)


def extend(index: MessageIndex, data: bytes, base: int, tail: Tail,
           created: list[tuple[int, int, str]] | None = None, stop: int | None = None) -> None:
    """Index the whole lines of `data` (which starts at file offset `base`). The hot loop of
    start-up: what `lines.scan` does, with no generator, tuple or call per line beyond the
    parse and the CRC."""
    starts: list[int] = []
    lengths: list[int] = []
    ids: list[str] = []
    crcs: list[int] = []
    run_ids: dict[int, str] = {}
    add_start, add_length, add_id, add_crc = starts.append, lengths.append, ids.append, crcs.append
    view = memoryview(data)
    end = data.rfind(b"\n", 0, stop) + 1
    find, decode, crc32 = data.find, VIEW_DECODER.decode, zlib.crc32
    pos = 0
    last = -1
    last_len = last_crc = 0
    while pos < end:
        nl = find(b"\n", pos)
        line = view[pos:nl]
        try:
            rec = decode(line)
        except BAD_LINE:
            if not line_is_blank(line):
                index.add_corrupt(base + pos, nl - pos)
                last, last_len, last_crc = pos, nl - pos, crc32(line)
            pos = nl + 1
            continue
        crc = crc32(line)
        mid = rec.id
        if mid.__class__ is not str:
            mid = None if mid is None or isinstance(mid, dict | list) else str(mid)
        if mid:
            if rec.run_id is not None and isinstance(rec.run_id, str) and rec.run_id:
                run_ids[len(ids)] = rec.run_id
            add_start(base + pos)
            add_length(nl - pos)
            add_id(mid)
            add_crc(crc)
        else:
            index.add_corrupt(base + pos, nl - pos)
        last, last_len, last_crc = pos, nl - pos, crc
        pos = nl + 1
    if ids:
        index.add_many(starts, lengths, ids, crcs, run_ids)
        if created is not None:
            created.extend(zip(starts, lengths, ids, strict=True))
    if last >= 0:
        tail.start, tail.length, tail.crc = base + last, last_len, last_crc
    if end:
        tail.end = base + end


def load_thread_json(path: Path) -> dict[str, Any] | None:
    """thread.json as an object; None when it is unreadable or not (yet) one: half-written."""
    try:
        with path.open("rb") as f:
            obj: Any = _json.decode(f.read())
    except (OSError, *BAD_LINE):
        return None
    return obj if isinstance(obj, dict) else None


def _read_from(fd: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 22):
        chunks.append(chunk)
    return b"".join(chunks)


CHUNK = 8 << 20


def index_file(fd: int) -> tuple[MessageIndex, Tail]:
    """A fresh index of the whole file, read in chunks (memory stays flat for a 1 GB thread)."""
    index, tail = MessageIndex(), Tail()
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    base = 0
    pending = b""
    while chunk := os.read(fd, CHUNK):
        data = pending + chunk if pending else chunk
        end = data.rfind(b"\n") + 1
        if end:
            extend(index, data, base, tail, stop=end)
            if base == 0 and len(index) and size > end:  # estimate the count from the first chunk
                index.reserve(int(len(index) * size / end * 1.05))
        pending = data[end:]
        base += end
    return index, tail


def _probe_messages(folder: Path, seen: Seen, probe: Probe) -> None:
    try:
        fd = os.open(folder / MESSAGES, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        probe.kind = "missing" if seen.file is not None else "none"
        return
    try:
        st = _state(os.fstat(fd))
        probe.file = st
        old = seen.file
        tail = seen.tail or Tail()
        if old is not None and st.ino == old.ino and st.size >= tail.end:
            if st.size == tail.end and st.mtime_ns == old.mtime_ns:
                return
            if st.size > tail.end:
                data = _read_from(fd, tail.start)
                head = tail.end - tail.start
                if tail.end == 0 or (data[head - 1 : head] == b"\n"
                                     and zlib.crc32(data[: tail.length]) == tail.crc):
                    probe.kind, probe.base, probe.data = "tail", tail.end, data[head:]
                    return
        probe.kind = "full"
        probe.index, probe.tail = index_file(fd)
    finally:
        os.close(fd)


def probe(folder: Path, thread_id: str, seen: Seen) -> Probe:
    """What changed in `folder` since `seen`; a folder with neither file is not a thread."""
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
    _probe_messages(folder, seen, result)
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
            result.thread = normalize.thread(obj, thread_id, 0 if normalize.created_seconds(obj)
                                             else _fallback_created(folder, folder_st))
    return result


def _fallback_created(folder: Path, folder_st: os.stat_result) -> int:
    """A thread's creation time when thread.json gives none: its first message's, which stays
    put (the folder's mtime moves whenever a file is created or renamed in it, so a restart
    would list the thread elsewhere); the folder's mtime only when there is no message yet."""
    try:
        with (folder / MESSAGES).open("rb") as f:
            head = f.read(1 << 16)  # small and rare: only for a thread.json without a time
    except OSError:
        head = b""
    for line in head[:complete_end(head)].split(b"\n"):
        obj = decode_object(line)
        if obj is not None and (created := normalize.created_seconds(obj)):
            return created
    return int(folder_st.st_mtime)
