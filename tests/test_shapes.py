"""The typed fast path (`store/shapes.py`) serves every line as the general path does
(`decode_object` + `normalize.message`), or declines it: never a different message. Its text values
are the stored JSON strings, so the bytes may differ in escapes (`\\u00e9` for `é`); the JSON they
hold may not."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from service.models import encoder
from service.store import normalize, shapes
from service.store.lines import decode_object
from tests.jan import jan06_message, jan_message, openai_message

TID = "jan_1717666232"
TEXT = st.text(alphabet="ab é✓\n\"\\", max_size=8)
# Values of every JSON type, including the awkward ones for each field.
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**17), TEXT,
                   st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(["ready", "pending", "error", "stopped", "completed", "",
                                    "user", "assistant", "in_progress"]))
ANY = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                   | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)
ANNOTATION = st.fixed_dictionaries({
    "type": st.sampled_from(["file_citation", "file_path", "url_citation"]),
    "text": TEXT, "start_index": st.integers(-1, 5), "end_index": st.integers(0, 5),
    "file_citation": st.fixed_dictionaries({"file_id": TEXT})})
TEXT_VALUE = st.one_of(TEXT, st.fixed_dictionaries(
    {"value": st.one_of(TEXT, ANY)},
    optional={"annotations": st.one_of(st.lists(ANNOTATION, max_size=2), ANY)}))
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text")}, optional={"text": TEXT_VALUE}),
    st.fixed_dictionaries({"text": TEXT_VALUE}),  # no type: a legacy part
    st.fixed_dictionaries({"type": st.sampled_from(["image_url", "image", "pdf", "refusal"]),
                           "image_url": st.fixed_dictionaries({"url": TEXT})}),
    TEXT, ANY)
FIELDS: dict[str, Any] = {
    "role": st.one_of(st.sampled_from(["user", "assistant", "system"]), ANY),
    "content": st.one_of(st.lists(PART, max_size=3), TEXT, ANY),
    "status": st.one_of(st.sampled_from([*normalize.STATUS, "bogus"]), ANY),
    "created_at": st.one_of(st.integers(-5, 10**17), SCALAR),
    "created": st.one_of(st.integers(-5, 10**17), SCALAR),
    "updated": st.one_of(st.integers(0, 10**13), SCALAR),
    "updated_at": SCALAR,
    "completed_at": st.one_of(st.integers(-5, 10**13), SCALAR),
    "incomplete_at": SCALAR,
    "incomplete_details": st.one_of(st.none(), st.fixed_dictionaries(
        {"reason": st.sampled_from(["max_tokens", "nope"])}), ANY),
    "assistant_id": st.one_of(TEXT, SCALAR),
    "run_id": st.one_of(TEXT, SCALAR),
    "attachments": st.one_of(st.just([]), st.lists(st.fixed_dictionaries(
        {"file_id": TEXT, "tools": st.lists(st.fixed_dictionaries(
            {"type": st.sampled_from(["file_search", "code_interpreter"])}))}), max_size=2),
        ANY),
    "metadata": st.one_of(st.dictionaries(TEXT, TEXT, max_size=3), ANY),
    "thread_id": TEXT,
    "object": st.just("thread.message"),
    "type": st.just("Thread"),
}
MESSAGE = st.fixed_dictionaries({"id": st.one_of(st.text(min_size=1, max_size=6), SCALAR)},
                                optional=FIELDS)
# Mostly the types a common line has (the fast path's own ground), with nulls and edge values.
CITATION = st.fixed_dictionaries({  # a valid annotation (the fast path declines others)
    "type": st.just("file_citation"), "text": TEXT, "start_index": st.integers(0, 5),
    "end_index": st.integers(0, 5), "file_citation": st.fixed_dictionaries({"file_id": TEXT})})
INT = st.one_of(st.none(), st.integers(-5, 10**17))
COMMON = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=6)}, optional={
    "role": st.sampled_from(["user", "assistant", "system"]),
    "content": st.one_of(TEXT, st.none(), st.lists(st.fixed_dictionaries(
        {"type": st.just("text"), "text": st.one_of(TEXT, st.fixed_dictionaries(
            {"value": TEXT}, optional={"annotations": st.lists(CITATION, max_size=2)}))}),
        max_size=3)),
    "status": st.one_of(st.none(), st.sampled_from([*normalize.STATUS, "bogus", ""])),
    "created_at": INT, "created": INT, "updated": INT, "updated_at": INT,
    "completed_at": INT, "incomplete_at": INT, "incomplete_details": st.none(),
    "assistant_id": st.one_of(st.none(), TEXT), "run_id": st.one_of(st.none(), TEXT),
    "attachments": st.one_of(st.none(), st.just([])),
    "metadata": st.one_of(st.none(), st.dictionaries(TEXT, st.one_of(TEXT, ANY), max_size=3)),
})


def _general(line: bytes) -> bytes:
    obj = decode_object(line)
    assert obj is not None
    return encoder.encode(normalize.message(obj, TID))


def _check(line: bytes) -> bool:
    fast = shapes.served(line, TID)
    if fast is None:
        return False
    mid, served = fast
    general = _general(line)
    # Strict UTF-8 and JSON (json.loads of a str would take lone surrogates; this decode not).
    assert msgspec.json.decode(served) == msgspec.json.decode(general), line
    assert mid == msgspec.json.decode(general)["id"]
    if b"\\u" not in line and b"\\/" not in line:  # no escape another writer could choose
        assert served == general, line
    return True


@settings(max_examples=1500, deadline=None)
@given(MESSAGE, st.booleans())
def test_fast_path_serves_what_the_general_path_serves(obj: dict[str, Any], ascii: bool) -> None:
    _check(json.dumps(obj, ensure_ascii=ascii).encode())


@settings(max_examples=1500, deadline=None)
@given(COMMON, st.booleans())
def test_fast_path_takes_common_lines_and_serves_them_alike(obj: dict[str, Any],
                                                           ascii: bool) -> None:
    assert _check(json.dumps(obj, ensure_ascii=ascii).encode())


def test_the_shapes_jan_writes_take_the_fast_path() -> None:
    # Otherwise the fast path would be dead code: Jan's own lines must be in it.
    lines = [jan_message("m1", TID, "hi"), jan06_message("01J0A8S7Y3Q6X2M4N5P6R7T8V9", TID, "yo"),
             openai_message("msg_1", TID, "hello", 1717666232),
             {"id": "m2", "role": "user", "content": "plain", "created": 1717666232000,
              "status": "ready", "metadata": {"k": "v"}}]
    for obj in lines:
        assert _check(json.dumps(obj).encode()), obj
        assert _check(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()), obj


def test_lines_it_cannot_read_exactly_go_the_general_way() -> None:
    citation = (b'{"type":"file_citation","text":"t","start_index":0,"end_index":1,'
                b'"file_citation":{"file_id":"f"}}')
    for line in (b'{"id":"a","content":"x\\ud83d y"}',  # a lone surrogate: read as U+FFFD
                 # A part without its type is a legacy part: its text, no annotations.
                 b'{"id":"a","content":[{"text":{"value":"v","annotations":[' + citation
                 + b']}}]}',
                 b'{"id":"a","content":"\xff"}',  # invalid UTF-8
                 # ... in a text value, which the fast path keeps as stored JSON
                 b'{"id":"a","content":[{"type":"text","text":{"value":"ok \xc3\xa9 \xff"}}]}',
                 b'{"id":"a","content":[{"type":"text","text":{"value":"\xed\xa0\x80"}}]}',
                 b'{"id":"a","content":[{"type":"text","text":{"value":12}}]}',  # no string
                 b'{"id":"a","content":[{"type":"text","text":{"value":"\\ud800"}}]}',
                 b'{"id":"a","created_at":1.5e12}',  # a float timestamp
                 b'{"id":"a","attachments":[{"file_id":"f","tools":[]}]}'):
        assert shapes.served(line, TID) is None, line
        assert _general(line)  # which reads each of them


def test_text_values_are_served_as_stored_json() -> None:
    line = (b'{"id":"a","content":[{"type":"text","text":{"value":"caf\\u00e9 \xf0\x9f\x99\x82'
            b' \\"q\\" \\n","annotations":[]}}]}')
    fast = shapes.served(line, TID)
    assert fast is not None
    assert b'"value":"caf\\u00e9 \xf0\x9f\x99\x82 \\"q\\" \\n"' in fast[1]
    value = msgspec.json.decode(fast[1])["content"][0]["text"]["value"]
    assert value == "caf\u00e9 \U0001f642 \"q\" \n"


def test_text_values_not_decoded_are_still_checked() -> None:
    # The fast path skips a text value's string rather than decode it: msgspec must still reject
    # what a decode would (a later msgspec that skipped leniently would serve invalid JSON).
    for value in (b'"\\ud800"', b'"\\udc00"', b'"\\ud800\\u0041"', b'"a\x00b"', b'"a\tb"',
                  b'"\\x"', b'"\\u12"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"'):
        line = b'{"id":"a","content":[{"type":"text","text":{"value":' + value + b'}}]}'
        assert shapes.served(line, TID) is None, line
        assert shapes.served(bytearray(line), TID) is None, line
