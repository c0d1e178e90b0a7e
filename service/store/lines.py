"""The `messages.jsonl` line format: finding complete lines and the few fields the index needs.

Only complete lines count: bytes after the last `\\n` belong to a writer that is still writing (or
crashed) and are neither indexed nor served. A line is decoded through a narrow view Struct, so
indexing never builds the message itself.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import msgspec


class LineView(msgspec.Struct):
    """The fields of a stored message the index keeps; everything else is skipped by the parser."""

    id: Any = None
    run_id: Any = None


_view_decoder = msgspec.json.Decoder(LineView)
_any_decoder = msgspec.json.Decoder()

CORRUPT = None


def complete_end(buf: bytes) -> int:
    """Length of the prefix of `buf` that consists of whole lines."""
    return buf.rfind(b"\n") + 1


def _is_blank(line: memoryview) -> bool:
    return len(line) == 0 or bytes(line).strip() == b""


Line = tuple[int, int, str | None, str | None, int]


def scan(buf: bytes, base: int = 0) -> Iterator[Line]:
    """Yield `(offset, length, id, run_id, crc32)` for each complete line of `buf` (which starts at
    file offset `base`); `length` excludes the newline. `id` is None for a line that is not a
    message (corrupt JSON, not an object, no id). Blank lines are not messages: not yielded."""
    view = memoryview(buf)
    end = buf.rfind(b"\n") + 1
    pos = 0
    find = buf.find
    decode = _view_decoder.decode
    crc32 = zlib.crc32
    while pos < end:
        nl = find(b"\n", pos)
        line = view[pos:nl]
        try:
            rec = decode(line)
            mid = rec.id
            if mid is None or isinstance(mid, dict | list) or mid == "":
                yield base + pos, nl - pos, CORRUPT, None, crc32(line)
            else:
                run_id = rec.run_id
                yield (base + pos, nl - pos, mid if isinstance(mid, str) else str(mid),
                       run_id if isinstance(run_id, str) and run_id else None, crc32(line))
        except (msgspec.DecodeError, RecursionError):
            if not _is_blank(line):
                yield base + pos, nl - pos, CORRUPT, None, crc32(line)
        pos = nl + 1


def decode_object(line: bytes) -> dict[str, Any] | None:
    """A stored line as a JSON object, or None if it is not one."""
    try:
        obj = _any_decoder.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def line_id(line: bytes) -> str | None:
    """The id of a stored message line, as `scan` would report it (None: not a message)."""
    try:
        mid = _view_decoder.decode(line).id
    except (msgspec.DecodeError, RecursionError):
        return None
    if mid is None or isinstance(mid, dict | list) or mid == "":
        return None
    return mid if isinstance(mid, str) else str(mid)
