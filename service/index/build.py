"""Indexing the lines of `messages.jsonl`: the hot loop of start-up and of every sync that reads.

`index_file` builds a fresh index of a whole file, read in chunks into one reused buffer; `extend`
indexes the whole lines of a buffer into an index. The only Python loop per line is the newline
search (memchr) that cuts the lines: parsing, CRCs and lengths are `map`s over a group of lines,
and a line that does not parse is marked and looked at on its own afterwards.
"""

from __future__ import annotations

import operator
import os
from typing import Any

from ..store.lines import (
    BAD_LINE,
    VIEW_DECODER,
    LineView,
    crc32,
    lenient_view,
    line_is_blank,
    message_id,
    run_id_of,
)
from .catalog import Tail
from .messages import MessageIndex

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
        if rec is None:  # a BOM, a lone surrogate escape, a stray byte in the run id
            rec = lenient_view(bytes(line))
        mid = None if rec is None else message_id(rec.id)
        if mid is None:
            if rec is not None or not line_is_blank(line):
                index.add_corrupt(start, len(line), crc32(line))
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
