"""The common shapes of stored messages, decoded typed: the fast way to serve a Jan-shaped line.

`normalize.message` takes any JSON object, which means decoding the line into dicts and walking
them in Python (~7.4 µs a 1.1 KB line of the bench's data, encode included; ~5 this way, 6.7
before text values were copied as stored). Almost every line Jan writes has one of a few shapes:
text parts (or a string), ids and timestamps as strings and integers, no attachments.
Decoded into the Structs below, the type checks run in msgspec's C code, and building the
`Message` is a handful of attribute reads. The string of a text part's `value` is copied into the
served line as its stored JSON: not decoded when the line is ASCII, otherwise only to check its
UTF-8 (msgspec checks its escapes as it skips it; tests/test_shapes.py holds it to that).
A line that does not fit these types exactly (a float timestamp, an image part, a part without its
type, attachments, invalid text) fails to decode and takes the general path, so both paths serve
the same message for every line the general path can read whole (tests/test_shapes.py checks).
One it cannot (a number of thousands of digits, or nesting past the parser's depth, in a field no
message has) is served in full here, where the general path would serve its id alone.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..models import ContentPart, Message, TextAnnotation, TextPart, encoder, text_part
from .lines import BAD_LINE
from .metadata import metadata
from .normalize import STATUS, moment, seconds


class _RawValue(msgspec.Struct):
    """A text value with its string kept as the stored JSON (`"..."`, escapes and all): served as
    those bytes, with no round trip through a Python str, which was a third of a line's cost."""
    value: msgspec.Raw
    annotations: list[TextAnnotation] = msgspec.field(default_factory=list)


class _Text(msgspec.Struct, tag_field="type", tag="text"):
    text: _RawValue | str


class _Never(msgspec.Struct, tag_field="type", tag="\x00"):
    """No part has this type. In a union with it, `_Text` needs its tag: msgspec takes a lone
    tagged Struct without one, and a part without a type is a legacy part to the general path."""


class _Stored(msgspec.Struct):
    """The fields `normalize.message` reads, typed as a common line has them."""
    id: str
    role: Any = None
    content: list[_Text | _Never] | str | None = None
    status: str | None = None
    created_at: int | None = None
    created: int | None = None
    updated: int | None = None
    updated_at: int | None = None
    completed_at: int | None = None
    incomplete_at: int | None = None
    incomplete_details: None = None
    assistant_id: str | None = None
    run_id: str | None = None
    attachments: list[Any] | None = None
    metadata: Any = None  # Jan 0.6 keeps objects and numbers here: read as normalize reads them


_decoder = msgspec.json.Decoder(_Stored)


def served(raw: bytes | bytearray, thread_id: str) -> tuple[str, bytes] | None:
    """The message id of a stored line and the bytes it is served as, or None when the line is
    not in a common shape (the caller then takes the general path: `decode_object` and
    `normalize.message`). `text.value` strings are copied as stored, which is the same JSON
    text: the escapes may differ from the general path's (`\\u00e9` against `é`), never the
    string."""
    try:
        s = _decoder.decode(raw)
    except BAD_LINE:
        return None
    if s.attachments:
        return None
    created = 0
    for value in (s.created_at, s.created, s.updated, s.updated_at):
        if value is not None and (ts := seconds(value)) is not None:
            created = ts
            break
    content = s.content
    parts: list[ContentPart] = []
    if isinstance(content, str):
        parts.append(text_part(content))
    elif content is not None:
        plain = raw.isascii()
        for p in content:
            if not isinstance(p, _Text):
                return None
            text = p.text
            if isinstance(text, str):
                parts.append(text_part(text))
                continue
            stored = memoryview(text.value)
            if stored[0] != 0x22:  # not a string (a Raw value is never empty)
                return None  # a number, an object...: the general path says what it serves
            if not plain:
                # msgspec checked the escapes and the characters JSON forbids while it skipped
                # the string, not its UTF-8 (a str field is checked as it is decoded).
                try:
                    str(stored, "utf-8")
                except UnicodeDecodeError:
                    return None
            parts.append(TextPart(text=text))  # type: ignore[arg-type]  # encoded alike
    status = s.status
    return s.id, encoder.encode(Message(
        id=s.id,
        created_at=created,
        thread_id=thread_id,
        status=STATUS.get(status, "completed") if status is not None else "completed",  # type: ignore[arg-type]
        completed_at=moment(s.completed_at),
        incomplete_at=moment(s.incomplete_at),
        role="user" if s.role == "user" else "assistant",
        content=parts,
        assistant_id=s.assistant_id or None,
        run_id=s.run_id or None,
        attachments=[],
        metadata=metadata(s.metadata),
    ))
