"""Which stored lines are canonical: exactly `encode(Message)` of a valid message of their thread,
so they are served as the bytes they are. Decided once per line (the verdict is kept in the
index's `canon` flags), at the line's first read.

The full test decodes the line as a `Message` and encodes it again, which costs as much as serving
a Jan-shaped line; two things keep it off the common paths: a line that does not open the way
`encode(Message)` opens (every Jan-shaped one) is ruled out by its first bytes, and the lines of a
page are decoded together, in one call.
"""

from __future__ import annotations

import msgspec

from ..models import ImageUrlPart, Message, encoder, message_decoder
from ..store.lines import BAD_LINE
from ..uris import as_uri

_OPEN = b'{"id":"'
_AFTER_ID = b'","object":"thread.message","created_at":'
_AFTER_LEN = len(_AFTER_ID)
_page_decoder = msgspec.json.Decoder(list[Message])


def may_be(raw: bytes | memoryview, mid: bytes) -> bool:
    """Whether the line opens as the encoding of message `mid` does (a cheap necessary test)."""
    n = 7 + len(mid)
    return raw[:7] == _OPEN and raw[7:n] == mid and raw[n:n + _AFTER_LEN] == _AFTER_ID


def line(raw: bytes, thread_id: str, mid: bytes) -> bool:
    """Whether `raw` is the canonical line of message `mid` in thread `thread_id`."""
    if not may_be(raw, mid):
        return False
    try:
        msg = message_decoder.decode(raw)
    except BAD_LINE:
        return False
    return (msg.thread_id == thread_id and msg.id.encode(errors="surrogatepass") == mid
            and encoder.encode(msg) == raw and (b'"image_url"' not in raw or _uris(msg))
            and _times_set(msg))


def _times_set(msg: Message) -> bool:
    """A time of 0 is Jan's "not set", served as null (normalize.moment): such a line is not
    served as stored."""
    return msg.completed_at != 0 and msg.incomplete_at != 0


def _uris(msg: Message) -> bool:
    """Whether every image URL of the message is served as stored: a URI (see uris.py)."""
    return all(as_uri(p.image_url.url) == p.image_url.url for p in msg.content
               if isinstance(p, ImageUrlPart))


def page(lines: bytes, thread_id: str, mids: list[bytes]) -> bool:
    """Whether `lines`, the lines of `mids` one per line (no newline after the last), are each the
    canonical line of its message: one decode for them all, then each line against the encoding
    of its own message (a comparison of the page as a whole would take a line holding one message
    and a half, and a line holding the other half, for two canonical lines)."""
    parts = lines.split(b"\n")
    if len(parts) != len(mids):
        return False
    try:
        msgs = _page_decoder.decode(b"[" + lines.replace(b"\n", b",") + b"]")
    except BAD_LINE:
        return False
    if len(msgs) != len(parts):
        return False
    encode = encoder.encode
    images = b'"image_url"' in lines
    for msg, mid, part in zip(msgs, mids, parts, strict=True):
        if (msg.thread_id != thread_id or msg.id.encode(errors="surrogatepass") != mid
                or encode(msg) != part or (images and not _uris(msg)) or not _times_set(msg)):
            return False
    return True

