"""The `messages.jsonl` line format: finding complete lines and the few fields the index needs.

Only complete lines count: bytes after the last `\\n` belong to a writer that is still writing (or
crashed) and are neither indexed nor served. A line is decoded through a narrow view Struct, so
indexing never builds the message itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import msgspec

try:  # ISA-L's CRC-32: the same checksum as zlib's, about five times as fast (start-up index)
    from isal.isal_zlib import crc32 as crc32
except ImportError:  # pragma: no cover - a platform without an isal wheel
    from zlib import crc32 as crc32

class LineView(msgspec.Struct, gc=False):
    """The fields of a stored message the index keeps; everything else is skipped by the parser.
    Not tracked by the garbage collector (its fields cannot hold it, so it is in no cycle): the
    start-up build keeps a run of them at once, which would otherwise set off collections."""

    id: Any = None
    run_id: Any = None


VIEW_DECODER = msgspec.json.Decoder(LineView)
# float_hook: a number beyond float range (1e400) is read as inf rather than failing the line
# the index already took for a message.
_any_decoder = msgspec.json.Decoder(float_hook=float)
# Every error a line's bytes can raise: malformed JSON, numbers out of range (ValidationError),
# nesting deeper than the parser goes, and invalid UTF-8.
BAD_LINE = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)

CORRUPT = None

# The deepest nesting a request may bring into a stored line. The parser's own limit shares
# Python's recursion budget, so it depends on how deep the caller's stack already is; a fixed
# bound well below it gives every request the same answer and keeps what Threadline writes
# readable from any stack. (Stored lines are not checked when indexed: that would halve the
# indexing rate; the reader copes with a deep line another program wrote instead.)
MAX_DEPTH = 400
# A string, or what is left of one that never closes (to the end, a lone backslash included):
# every match attempt succeeds, so the scan is linear whatever the bytes (a pattern that must
# find the closing quote retries from every quote in a body of unclosed `\"`: quadratic).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEEP_LINE = 2 * MAX_DEPTH + 1  # shorter JSON cannot nest deeper: a level takes two brackets


def too_deep(buf: bytes, start: int = 0, end: int | None = None) -> bool:
    """True if the JSON in `buf[start:end]` nests deeper than MAX_DEPTH. Costs two counts unless
    the line holds that many brackets at all; then one pass with the strings cut out."""
    end = len(buf) if end is None else end
    if end - start <= _DEEP_LINE or buf.count(b"[", start, end) + buf.count(b"{", start, end) \
            <= MAX_DEPTH:
        return False
    depth = 0
    for c in _STRING.sub(b"", buf[start:end]).translate(None, _NOT_BRACKETS):
        depth += 1 if c in b"[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


# A lone UTF-16 surrogate escaped in a string ("\\ud83d" without its pair): JavaScript's
# JSON.stringify writes one for a string cut in the middle of an emoji, as the Jan app can. It is
# valid JSON but not Unicode text, and msgspec refuses the line; it is read as U+FFFD instead (as
# invalid UTF-8 is). Escaped backslashes are matched first, so `\\\\ud83d` is left alone.
_ESCAPE = re.compile(rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
                     rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _fffd(m: re.Match[bytes]) -> bytes:
    return b"\\ufffd" if len(m.group()) == 6 else m.group()  # 6 bytes: a lone surrogate


def without_lone_surrogates(line: bytes) -> bytes | None:
    """`line` with each lone surrogate escape replaced by U+FFFD's; None if it has none."""
    if b"\\u" not in line:
        return None
    fixed = _ESCAPE.sub(_fffd, line)
    return None if fixed == line else fixed


BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark, as an editor may put at the start of a file


def repaired(line: bytes) -> bytes | None:
    """A line the parser refused, made readable if it can be: a leading byte order mark dropped,
    lone surrogate escapes read as U+FFFD. None when there is nothing to repair."""
    fixed = line[len(BOM):] if line.startswith(BOM) else line
    fixed = without_lone_surrogates(fixed) or fixed
    return None if fixed is line else fixed


class _IdView(msgspec.Struct, gc=False):
    id: Any = None


_ID_DECODER = msgspec.json.Decoder(_IdView)


def lenient_view(line: bytes) -> LineView | None:
    """The view of a line the view decoder refused, if it can be read: `repaired`; or a stray
    byte (invalid UTF-8) in its run id, read as U+FFFD as `decode_object` reads it, so that the
    message is indexed as it is served. None otherwise: an id with a stray byte stays a corrupt
    line (no request could name it as stored, nor a modify write it back unchanged)."""
    fixed = repaired(line)
    if fixed is not None:
        with contextlib.suppress(*BAD_LINE):
            return VIEW_DECODER.decode(fixed)
    text = fixed if fixed is not None else line
    try:
        mid = _ID_DECODER.decode(text).id  # checks the id's UTF-8 (the rest is skipped)
        run_id = VIEW_DECODER.decode(text.decode(errors="replace").encode()).run_id
    except BAD_LINE:
        return None
    return LineView(id=mid, run_id=run_id)


def decode_view(line: bytes | memoryview) -> LineView:
    """A line through the view decoder, read leniently if need be (raises BAD_LINE)."""
    try:
        return VIEW_DECODER.decode(line)
    except BAD_LINE:
        view = lenient_view(bytes(line))
        if view is None:
            raise
        return view


def complete_end(buf: bytes) -> int:
    """Length of the prefix of `buf` that consists of whole lines."""
    return buf.rfind(b"\n") + 1


def line_is_blank(line: memoryview) -> bool:
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
    decode = decode_view
    while pos < end:
        nl = find(b"\n", pos)
        line = view[pos:nl]
        try:
            rec = decode(line)
            mid = message_id(rec.id)
            if mid is None:
                yield base + pos, nl - pos, CORRUPT, None, crc32(line)
            else:
                yield base + pos, nl - pos, mid, run_id_of(rec.run_id), crc32(line)
        except BAD_LINE:
            if not line_is_blank(line):
                yield base + pos, nl - pos, CORRUPT, None, crc32(line)
        pos = nl + 1


_exact_decoder = msgspec.json.Decoder()


def decode_object_exact(line: bytes) -> dict[str, Any] | None:
    """A stored line as a JSON object that can be written back unchanged, or None: no reading
    1e400 as infinity or a stray byte as U+FFFD here, because a modify writes the object back and
    must not alter the fields it was not asked to change."""
    try:
        obj = _exact_decoder.decode(line)
    except BAD_LINE:
        fixed = repaired(line)  # U+FFFD: the only text a lone surrogate can become
        if fixed is None:
            return None
        try:
            obj = _exact_decoder.decode(fixed)
        except BAD_LINE:
            return None
    return obj if isinstance(obj, dict) else None


def decode_object(line: bytes) -> dict[str, Any] | None:
    """A stored line as a JSON object, or None if it is not one. Invalid UTF-8 inside a string
    (which indexing does not check: validating every byte would halve the start-up rate) is read
    leniently, as U+FFFD."""
    try:
        obj = _any_decoder.decode(line)
    except BAD_LINE:
        if (fixed := repaired(line)) is not None:
            return decode_object(fixed)
        try:
            line.decode()
            return None
        except UnicodeDecodeError:
            pass
        try:
            obj = _any_decoder.decode(line.decode(errors="replace").encode())
        except BAD_LINE:
            return None
    return obj if isinstance(obj, dict) else None


def message_id(raw: Any) -> str | None:
    """A decoded `id` field as a message id: None (not a message) when missing, empty or not a
    scalar; a number or a boolean stands for its text."""
    if raw.__class__ is str:
        return raw or None
    return None if raw is None or isinstance(raw, dict | list) else str(raw)


def run_id_of(raw: Any) -> str | None:
    return raw if isinstance(raw, str) and raw else None


def line_id(line: bytes) -> str | None:
    """The id of a stored message line, as `scan` would report it (None: not a message)."""
    try:
        return message_id(decode_view(line).id)
    except BAD_LINE:
        return None
