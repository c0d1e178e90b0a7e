"""Reading a thread folder to bring its index up to date (blocking; runs in a worker thread).

`probe` compares the files with what the index last saw (`Seen`) and reads only what is new: the
bytes appended since the indexed end, or, when the file was rewritten (inode changed, it shrank,
the last indexed line changed, or it changed size-for-size), the whole file into a fresh index.
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from ..models import Thread
from ..store import normalize
from ..store.layout import MESSAGES, THREAD_JSON
from ..store.lines import (
    BAD_LINE,
    VIEW_DECODER,
    LineView,
    complete_end,
    crc32,
    decode_object,
    line_is_blank,
    message_id,
    run_id_of,
)
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


_ID = operator.attrgetter("id")
_RUN_ID = operator.attrgetter("run_id")
GROUP = 256 << 10  # lines are handled in groups of about this many bytes (they stay in cache)


def extend(index: MessageIndex, data: bytes | bytearray, base: int, tail: Tail,
           created: list[tuple[int, int, str]] | None = None, stop: int | None = None) -> None:
    """Index the whole lines of `data` (which starts at file offset `base`), up to `stop`. The hot
    loop of start-up, so the only Python loop per line is the newline search (memchr) that cuts
    the lines; parsing, CRCs and lengths are `map`s over a group of lines, and a line that does
    not parse is marked and looked at on its own afterwards."""
    end = data.rfind(b"\n", 0, stop) + 1
    if not end:
        return
    view = memoryview(data)
    find = data.find
    pos = 0
    while pos < end:
        upto = data.rfind(b"\n", pos, min(pos + GROUP, end)) + 1 or find(b"\n", pos) + 1
        lines: list[memoryview] = []
        starts: list[int] = []
        add_line, add_start = lines.append, starts.append
        while pos < upto:
            nl = find(b"\n", pos)
            add_line(view[pos:nl])
            add_start(base + pos)
            pos = nl + 1
        _index_lines(index, lines, starts, created)
    _set_tail(tail, data, view, base, end)


def _index_lines(index: MessageIndex, lines: list[memoryview], starts: list[int],
                 created: list[tuple[int, int, str]] | None) -> None:
    """Index `lines` (without their newlines), which start at file offsets `starts`."""
    recs, unparsed = _parse(lines)
    lengths = list(map(len, lines))
    ids: list[Any] = [] if unparsed else list(map(_ID, recs))
    text = None if unparsed else _joined_ids(ids)
    if text is not None:  # the rule: every line a message with a plain string id
        index.add_many(starts, lengths, ids, map(crc32, lines), _run_ids(recs), text)
    else:
        starts, lengths, ids, crcs, run_ids = _sift(index, lines, recs, starts)
        if ids:
            index.add_many(starts, lengths, ids, crcs, run_ids)
    if ids and created is not None:
        created.extend(zip(starts, lengths, ids, strict=True))


def _parse(lines: list[memoryview]) -> tuple[list[LineView | None], int]:
    """Each line through the view decoder; None for a line that does not parse, and how many."""
    recs: list[LineView | None] = []
    unparsed = 0
    rest = iter(lines)
    while True:
        try:
            recs.extend(map(VIEW_DECODER.decode, rest))  # keeps what it decoded before a raise
            return recs, unparsed
        except BAD_LINE:
            recs.append(None)  # the line `rest` just gave
            unparsed += 1


def _run_ids(recs: list[Any]) -> dict[int, str]:
    """Positions of the lines that carry a run id (a non-empty string), with it."""
    if not any(map(_RUN_ID, recs)):
        return {}
    return {i: r for i, r in enumerate(map(_RUN_ID, recs)) if run_id_of(r)}


def _sift(index: MessageIndex, lines: list[memoryview], recs: list[LineView | None],
          starts: list[int]) -> tuple[list[int], list[int], list[str], list[int], dict[int, str]]:
    """The messages among lines some of which are not: a line that does not parse is skipped
    when blank and corrupt otherwise; a line whose id is missing, empty or not a scalar is
    corrupt; a number or a boolean id stands for its text."""
    found: tuple[list[int], list[int], list[str], list[int], dict[int, str]] = ([], [], [], [], {})
    f_starts, f_lengths, f_ids, f_crcs, f_run_ids = found
    for line, rec, start in zip(lines, recs, starts, strict=True):
        mid = None if rec is None else message_id(rec.id)
        if mid is None:
            if rec is not None or not line_is_blank(line):
                index.add_corrupt(start, len(line))
            continue
        assert rec is not None
        if run_id := run_id_of(rec.run_id):
            f_run_ids[len(f_ids)] = run_id
        f_starts.append(start)
        f_lengths.append(len(line))
        f_ids.append(mid)
        f_crcs.append(crc32(line))
    return found


def _joined_ids(ids: list[Any]) -> str | None:
    """The ids joined, if every one is a non-empty string (join refuses anything else)."""
    try:
        text = "".join(ids)
    except TypeError:
        return None
    return None if "" in ids else text


def _set_tail(tail: Tail, data: bytes | bytearray, view: memoryview, base: int, end: int) -> None:
    """Record the last non-blank line before `end` (it tells an append from an in-place rewrite
    next time) and the indexed end."""
    nl = end - 1
    while True:
        start = data.rfind(b"\n", 0, nl) + 1
        line = view[start:nl]
        if not line_is_blank(line):
            tail.start, tail.length, tail.crc = base + start, nl - start, crc32(line)
            break
        if start == 0:
            break
        nl = start - 1
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


CHUNK = 1 << 20


def index_file(fd: int) -> tuple[MessageIndex, Tail]:
    """A fresh index of the whole file, read in chunks into one reused buffer (memory stays flat
    for a 1 GB thread, and no chunk is copied or freshly allocated)."""
    index, tail = MessageIndex(), Tail()
    os.lseek(fd, 0, os.SEEK_SET)
    buf = bytearray(max(min(os.fstat(fd).st_size, CHUNK), 1 << 16))  # no more than the file needs
    held = 0  # bytes of an unfinished line carried over, at the start of buf
    base = 0  # file offset of buf[0]
    while True:
        if held == len(buf):  # one line longer than the buffer
            buf.extend(bytes(len(buf)))
        with memoryview(buf) as room:
            n = os.readv(fd, [room[held:]])
        if not n:
            break
        filled = held + n
        end = buf.rfind(b"\n", 0, filled) + 1
        if end:
            extend(index, buf, base, tail, stop=end)
            buf[: filled - end] = buf[end:filled]
            base += end
        held = filled - end
    return index, tail


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


def _probe_messages(folder: Path, seen: Seen, probe: Probe, table: bool) -> None:
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
            if _unchanged(st, old, tail):
                return
            if st.size > tail.end:
                data = _read_from(fd, tail.start)
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


def probe(folder: Path, thread_id: str, seen: Seen, table: bool = True) -> Probe:
    """What changed in `folder` since `seen`; a folder with neither file is not a thread. A full
    read builds the index's id table too unless `table` is false (start-up: see messages.py)."""
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
    _probe_messages(folder, seen, result, table)
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
