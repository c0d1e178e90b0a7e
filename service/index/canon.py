"""Which stored lines are canonical: exactly `encode(Message)` of a valid message of their thread,
so they are served as the bytes they are. Decided once per line (the verdict is kept in the
index's `canon` flags), at the line's first read.

The full test decodes the line as a `Message` and encodes it again, which costs as much as serving
a Jan-shaped line; two things keep it off the common paths: a line that does not open the way
`encode(Message)` opens (every Jan-shaped one) is ruled out by its first bytes, and the lines of a
page are tested together, in one decode and one encode of the page.
"""

from __future__ import annotations

import msgspec

from ..models import Message, encoder, message_decoder
from ..store.lines import BAD_LINE

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
            and encoder.encode(msg) == raw)


def page(lines: bytes, thread_id: str, mids: list[bytes]) -> bool:
    """Whether `lines`, the lines of `mids` one per line (no newline after the last), are each the
    canonical line of its message: one decode and one encode for them all."""
    joined = b"[" + lines.replace(b"\n", b",") + b"]"
    try:
        msgs = _page_decoder.decode(joined)
    except BAD_LINE:
        return False
    if len(msgs) != len(mids):
        return False
    for msg, mid in zip(msgs, mids, strict=True):
        if msg.thread_id != thread_id or msg.id.encode(errors="surrogatepass") != mid:
            return False
    return encoder.encode(msgs) == joined

