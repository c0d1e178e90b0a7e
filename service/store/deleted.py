"""Where deleted messages stood: `threads/<id>/.threadline.deleted`, a record per message deleted
through the API, `["<id>", ["<id of the message before it>", ...]]`: the nearest messages listed
before it then (up to `BEFORE`, nearest first; none when it was the first).

A list cursor may be the id of a message deleted a moment ago (an SDK loop that deletes what it
iterates over pages on from it). The process that deleted it knows where it stood; this file
tells every other one too: another worker whose index never held the message, or any process
after a restart. Several neighbours, not one: the cursor still finds its place when the nearest
was deleted since without a record (by Jan, say). Written by the delete's rewrite under the
thread lock before the new file replaces the old one (a crash in between leaves a record of a
message still there, which is harmless: records are read only for ids the index lacks). Trimmed
to its newest `KEEP` records when it grows past twice that or `MAX_BYTES`; read from its last
`MAX_BYTES` only. Each record starts with a newline, so one torn by a crash spoils no other.
The Jan app ignores the file; a symlink in its place is not followed.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

import msgspec

from .files import NotAFile, open_file
from .replace import write_atomic

NAME = ".threadline.deleted"
KEEP = 4096
BEFORE = 8  # neighbours recorded per deleted message
MAX_BYTES = 4 << 20
_record = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(tuple[str, list[str] | str | None]).decode


def record(folder: Path, message_id: str, before: list[str]) -> bool:
    """Note that `message_id`, listed just after `before` (nearest first), is being deleted.
    True when the file has grown enough to be trimmed (`trim`, under the thread lock)."""
    line = b"\n" + _record.encode((message_id, before))
    fd = open_file(folder / NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW)
    try:
        os.write(fd, line)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    return size > min(2 * KEEP * len(line), MAX_BYTES)


def trim(folder: Path) -> None:
    """Keep the newest KEEP records that parse (caller holds the thread lock)."""
    kept = [line for line in _tail(folder / NAME).split(b"\n") if _parse(line) is not None]
    write_atomic(folder / NAME, b"".join(b"\n" + x for x in kept[-KEEP:]), durable=False)


def records(folder: Path) -> dict[str, list[str]]:
    """The deleted ids of the thread and the ids before each (empty when none were noted)."""
    try:
        st = os.lstat(folder / NAME)
    except OSError:
        return {}
    return _parsed(str(folder / NAME), st.st_ino, st.st_size, st.st_mtime_ns)


def _tail(path: Path) -> bytes:
    """The file's last MAX_BYTES (all of it, normally)."""
    fd = open_file(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, MAX_BYTES, max(0, size - MAX_BYTES))
    finally:
        os.close(fd)


def _parse(line: bytes) -> tuple[str, list[str]] | None:
    if not line:
        return None
    try:
        message_id, before = _decode(line)
    except msgspec.DecodeError:  # torn, foreign or garbage: skipped
        return None
    return message_id, ([] if before is None else [before] if isinstance(before, str) else before)


@lru_cache(maxsize=16)
def _parsed(path: str, _ino: int, _size: int, _mtime_ns: int) -> dict[str, list[str]]:
    """The file's records, parsed once per version of it (stat fields are the cache key)."""
    out: dict[str, list[str]] = {}
    with contextlib.suppress(OSError, NotAFile):
        for line in _tail(Path(path)).split(b"\n"):
            if (parsed := _parse(line)) is not None:
                out[parsed[0]] = parsed[1]
    return out
