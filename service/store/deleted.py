"""Where deleted messages stood: `threads/<id>/.threadline.deleted`, a line per message deleted
through the API, `["<id>", "<id of the message before it, or null>"]`.

A list cursor may be the id of a message deleted a moment ago (an SDK loop that deletes what it
iterates over pages on from it). The process that deleted it knows where it stood; this file
tells every other one too: another worker whose index never held the message, or any process
after a restart. Appended after the rewrite (one small O_APPEND write), trimmed to its last
`KEEP` records under the thread lock when it grows past twice that; the Jan app ignores it.
Each record starts with a newline, so one torn by a crash spoils no other.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

import msgspec

from .files import NotAFile, open_file, read_file, thread_locked, write_atomic

NAME = ".threadline.deleted"
KEEP = 4096
_record = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(tuple[str, str | None]).decode


def record(folder: Path, message_id: str, before: str | None) -> None:
    """Note that `message_id`, which stood just after `before` (None: first), was deleted."""
    # Each record starts a line (a record torn by a crash ends at the next one's newline).
    line = b"\n" + _record.encode((message_id, before))
    fd = open_file(folder / NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > 2 * KEEP * len(line):  # about twice KEEP records: keep the newest KEEP
        with thread_locked(folder):
            lines = [x for x in read_file(folder / NAME).split(b"\n") if x]
            if len(lines) > KEEP:
                write_atomic(folder / NAME, b"".join(b"\n" + x for x in lines[-KEEP:]),
                             durable=False)


def records(folder: Path) -> dict[str, str | None]:
    """The deleted ids of the thread and the id before each (empty when none were noted)."""
    try:
        st = os.stat(folder / NAME)
    except OSError:
        return {}
    return _parsed(str(folder / NAME), st.st_ino, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _parsed(path: str, _ino: int, _size: int, _mtime_ns: int) -> dict[str, str | None]:
    """The file's records, parsed once per version of it (stat fields are the cache key)."""
    try:
        data = read_file(Path(path))
    except (OSError, NotAFile):
        return {}
    out: dict[str, str | None] = {}
    for line in data.split(b"\n"):
        with contextlib.suppress(msgspec.DecodeError):  # a torn or foreign line: skipped
            message_id, before = _decode(line)
            out[message_id] = before
    return out
