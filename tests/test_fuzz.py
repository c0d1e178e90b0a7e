"""Fuzzing the lenient line reader and every request decoder (hypothesis, fixed seed, bounded).

Random and mutated JSON, huge numbers, deep nesting, invalid UTF-8 and NULs, in stored lines and
in request bodies: zero crashes, zero 5xx, and every message served passes the official SDK's
model with strict validation. The examples are derandomized (the same inputs every run) and the
budget is fixed; the slow suite runs the same properties with a larger budget. Inputs that ever
failed are kept as regular tests at the end of this file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.beta import Thread as SdkThread
from openai.types.beta.threads import Message as SdkMessage

from service.app import create_app
from service.config import Config
from service.index.reader import serve_line
from service.keys import INDEXER
from service.models import encoder
from service.store import normalize
from service.store.lines import MAX_DEPTH, line_id, scan
from tests.envelope import check_envelope
from tests.procs import canonical_line

FAST = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def budget(examples: int) -> Callable[[Any], Any]:
    """The fast budget for `make test`; a test marked slow reruns the property with 10x more."""
    return settings(FAST, max_examples=examples)


# --- strategies ----------------------------------------------------------------------------------

HUGE = st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 1e308, -1e308, 1e16 + 1,
                        1e12 + 1, 5e-324, 0.5, -1])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), HUGE,
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=40), st.sampled_from(["", "\x00", "\u2028", "😀", "\ud7ff"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=12)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# Values nested nearly as deep as the JSON parser goes (1000 levels, the object around them
# included): whatever walks them afterwards (json.dumps of an odd metadata value) must cope.
deep = st.integers(min_value=100, max_value=990).map(nested)
# ...and raw JSON nested around the request bound (MAX_DEPTH) and past the parser's own limit.
deep_raw = st.integers(min_value=MAX_DEPTH - 20, max_value=3000).map(
    lambda n: b"[" * n + b"]" * n)
deep_fields = st.tuples(st.sampled_from([b"metadata", b"content", b"created_at", b"id",
                                         b"run_id", b"attachments", b"status", b"role"]),
                        deep_raw).map(lambda t: b'{"id":"msg_deep","' + t[0] + b'":' + t[1]
                                      + b',"role":"user"}')
any_value = st.one_of(json_values, deep)
TEXT_PART = {"type": "text", "text": {"value": "hi", "annotations": []}}
parts = st.one_of(
    any_value,
    st.lists(st.one_of(any_value, st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["text", "image_url", "image", "image_file",
                                            "refusal", "pdf", "reasoning", "tool_call", "x"]),
                           st.sampled_from([[], {}, ["text"]]), any_value)},
        optional={"text": any_value, "image_url": any_value, "url": any_value,
                  "image_file": any_value, "refusal": any_value, "detail": any_value})),
        max_size=4))
# Objects shaped like the messages Jan and OpenAI write, with any value in any field.
message_objects = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(min_size=1, max_size=30), any_value),
    "object": any_value, "thread_id": any_value, "type": any_value,
    "role": st.one_of(st.sampled_from(["user", "assistant", "system"]), any_value),
    "content": parts,
    "status": st.one_of(st.sampled_from(["ready", "pending", "error", "stopped", "completed",
                                         "in_progress", "incomplete"]), any_value),
    "created_at": any_value, "created": any_value, "updated": any_value,
    "completed_at": any_value, "incomplete_at": any_value,
    "incomplete_details": st.one_of(any_value, st.fixed_dictionaries({"reason": any_value})),
    "assistant_id": any_value, "run_id": any_value, "metadata": any_value,
    "attachments": st.one_of(any_value, st.lists(st.fixed_dictionaries(
        {"file_id": any_value}, optional={"tools": any_value}), max_size=3)),
    "file_ids": any_value,
}) | st.dictionaries(st.text(max_size=12), any_value, max_size=6)


def dumps(value: Any) -> bytes:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))  # the test's own encoding of deep values
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    finally:
        sys.setrecursionlimit(limit)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """Bytes of `base` with a few random edits: cut, insert, overwrite (invalid UTF-8, NULs,
    newlines and quotes are all likely insertions)."""
    data = bytearray(draw(base))
    noise = st.one_of(st.binary(min_size=1, max_size=8),
                      st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b'"', b"\\",
                                       b"{", b"}", b"[", b"9" * 400, b"1e999", b"\n"]))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        op = draw(st.sampled_from(["cut", "insert", "overwrite"]))
        if op == "cut":
            del data[at:at + draw(st.integers(min_value=1, max_value=20))]
        elif op == "insert":
            data[at:at] = draw(noise)
        elif data:
            data[min(at, len(data) - 1)] = draw(st.integers(min_value=0, max_value=255))
    return bytes(data)


valid_lines = st.text(max_size=30).map(
    lambda t: canonical_line("msg_" + str(abs(hash(t)) % 10**9), "t", t))
json_lines = message_objects.map(dumps)
lines = st.one_of(valid_lines, json_lines, mutated(st.one_of(valid_lines, json_lines)), deep_fields,
                  st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
                  st.sampled_from([b"", b"   ", b"\x00", b"null", b"[]", b"{}", b'{"id":""}',
                                   b'{"id":null}', b'{"id":1e999}', b'{"id":' + b"9" * 5000 + b"}",
                                   b"[" * 100000 + b"]" * 100000]))
files = st.tuples(st.lists(lines, max_size=8), st.binary(max_size=30)).map(
    lambda t: b"".join(line + b"\n" for line in t[0]) + t[1].replace(b"\n", b""))


# --- the line reader ------------------------------------------------------------------------------

def check_scan(buf: bytes) -> None:
    end = buf.rfind(b"\n") + 1
    seen = []
    for offset, length, mid, run_id, _crc in scan(buf, 7):
        at = offset - 7
        assert at >= 0 and at + length < end + 1 and buf[at + length:at + length + 1] == b"\n"
        assert mid is None or (isinstance(mid, str) and mid)
        assert run_id is None or (isinstance(run_id, str) and run_id)
        assert line_id(buf[at:at + length]) == mid or mid is None
        seen.append(at)
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    whole = [line for line in buf[:end].split(b"\n")[:-1] if line.strip()]
    assert len(seen) == len(whole)  # every non-blank whole line, once; nothing after `end`


@budget(100)
@given(files)
def test_scan_yields_only_whole_lines_and_never_raises(buf: bytes) -> None:
    check_scan(buf)


@pytest.mark.slow
@budget(600)
@given(files)
def test_scan_yields_only_whole_lines_and_never_raises_long(buf: bytes) -> None:
    check_scan(buf)


def check_normalize(obj: dict[str, Any]) -> None:
    served = json.loads(encoder.encode(normalize.message(obj, "thread_x")))
    SdkMessage.model_validate(served, strict=True)
    thread = json.loads(encoder.encode(normalize.thread(obj, "thread_x", 0)))
    SdkThread.model_validate(thread, strict=True)


@budget(150)
@given(message_objects)
def test_any_stored_object_normalizes_to_a_strictly_valid_message(obj: dict[str, Any]) -> None:
    check_normalize(obj)


@pytest.mark.slow
@budget(800)
@given(message_objects)
def test_any_stored_object_normalizes_to_a_strictly_valid_message_long(obj: dict[str, Any]
                                                                       ) -> None:
    check_normalize(obj)


# --- serving stored lines through the app --------------------------------------------------------

@pytest.fixture
async def fast_client(aiohttp_client: Any, make_config: Callable[..., Config]) -> TestClient:
    """The real app with fsync off and no watcher: fuzz examples index their folders directly."""
    return await aiohttp_client(create_app(make_config(fsync="never", watch=False)))


class Seq:
    n = 0


async def check_served(client: TestClient, data_dir: Path, content: bytes) -> None:
    Seq.n += 1
    thread_id = f"fuzz{Seq.n}"
    folder = data_dir / "threads" / thread_id
    folder.mkdir()
    (folder / "messages.jsonl").write_bytes(content)
    assert await client.server.app[INDEXER].sync(thread_id) is not None
    listed = []
    after = None
    while True:
        params = {"order": "asc", "limit": "100", **({"after": after} if after else {})}
        resp = await client.get(f"/v1/threads/{thread_id}/messages", params=params)
        assert resp.status == 200, (resp.status, await resp.text())
        page = await resp.json()
        for obj in page["data"]:
            SdkMessage.model_validate(obj, strict=True)
            assert obj["thread_id"] == thread_id
        listed.extend(page["data"])
        if not page["has_more"]:
            break
        after = page["last_id"]
    for order in ("desc", "asc"):
        resp = await client.get(f"/v1/threads/{thread_id}/messages", params={"order": order})
        assert resp.status == 200
    for obj in listed:
        resp = await client.get(f"/v1/threads/{thread_id}/messages/{quote(obj['id'], safe='')}")
        assert resp.status < 500, (resp.status, obj["id"])
        if resp.status == 200:
            SdkMessage.model_validate(await resp.json(), strict=True)
        else:
            check_envelope(resp.status, resp.content_type, await resp.read())


@budget(40)
@given(content=files)
async def test_any_file_content_is_served_as_valid_messages_without_5xx(
        fast_client: TestClient, data_dir: Path, content: bytes) -> None:
    await check_served(fast_client, data_dir, content)


@pytest.mark.slow
@budget(400)
@given(content=files)
async def test_any_file_content_is_served_as_valid_messages_without_5xx_long(
        fast_client: TestClient, data_dir: Path, content: bytes) -> None:
    await check_served(fast_client, data_dir, content)


# --- request decoders and routes -----------------------------------------------------------------

VALID_BODIES = [
    b'{"role":"user","content":"hi","metadata":{"a":"b"}}',
    b'{"role":"assistant","content":[{"type":"text","text":"x"},'
    b'{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}],'
    b'"attachments":[{"file_id":"f","tools":[{"type":"file_search"}]}]}',
    b'{"messages":[{"role":"user","content":"hi"}],"metadata":{"k":"v"},'
    b'"tool_resources":{"code_interpreter":{"file_ids":["a"]}}}',
    b'{"metadata":{"k":"v"},"tool_resources":{"file_search":{"vector_store_ids":["vs"]}}}',
    b'{"metadata":null,"content":"new","status":"incomplete","completed_at":1,'
    b'"incomplete_details":{"reason":"max_tokens"}}',
    b"{}",
]
bodies = st.one_of(
    st.sampled_from(VALID_BODIES),
    mutated(st.sampled_from(VALID_BODIES)),
    json_values.map(dumps),
    message_objects.map(dumps),
    deep.map(dumps),
    deep_fields,
    st.integers(min_value=1000, max_value=200000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=200),
    st.sampled_from([b"", b"\x00", b"\xff\xfe", b'{"role":"user","content":"\xff"}',
                     b'{"role":"user","content":"a\\u0000b"}', b'{"role":"user","content":1e999}',
                     b'{"metadata":{"k":' + b"9" * 5000 + b"}}",
                     b'{"role":"user","content":"\xed\xa0\x80"}', b'{"content":"\\ud800"}']),
)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8",
                                 "text/plain", "application/x-www-form-urlencoded", None])
ROUTES = ["create_thread", "modify_thread", "create_message", "modify_message", "list",
          "get_message", "delete_message", "list_threads", "files"]


class Targets:
    """A thread and a message that exist, created on the first example of a test."""

    thread_id = ""
    message_id = ""


@pytest.fixture
async def targets(fast_client: TestClient) -> Targets:
    """Made once per test: hypothesis runs every example with the same fixture values."""
    client = fast_client
    t = Targets()
    resp = await client.post("/v1/threads", json={})
    t.thread_id = (await resp.json())["id"]
    resp = await client.post(f"/v1/threads/{t.thread_id}/messages",
                             json={"role": "user", "content": "target"})
    t.message_id = (await resp.json())["id"]
    return t


async def check_request(client: TestClient, t: Targets, route: str, body: bytes,
                        content_type: str | None, junk: str, query: dict[str, str]) -> None:
    tp = f"/v1/threads/{t.thread_id}"
    mp = f"{tp}/messages/{t.message_id}"
    junk_path = quote(junk, safe="")
    headers = {"Content-Type": content_type} if content_type else {}
    method, path, kind = {
        "create_thread": ("POST", "/v1/threads", "thread"),
        "modify_thread": ("POST", tp, "thread"),
        "create_message": ("POST", f"{tp}/messages", "message"),
        "modify_message": ("POST", mp, "message"),
        "list": ("GET", f"{tp}/messages", "list"),
        "list_threads": ("GET", "/v1/threads", "list"),
        "get_message": ("GET", f"{tp}/messages/{junk_path}", "message"),
        "delete_message": ("DELETE", f"/v1/threads/{junk_path}/messages/{junk_path}", "deleted"),
        "files": ("GET", f"{mp}/files", "list"),
    }[route]
    resp = await client.request(method, path, data=body if method == "POST" else None,
                                headers=headers, params=query if method == "GET" else None,
                                skip_auto_headers=() if content_type else ("Content-Type",))
    raw = await resp.read()
    assert resp.status < 500, (resp.status, route, body[:200], raw[:300])
    if resp.status >= 400:
        check_envelope(resp.status, resp.content_type, raw)
        return
    assert resp.status == 200, (resp.status, raw[:300])
    obj = json.loads(raw)
    if kind == "message":
        SdkMessage.model_validate(obj, strict=True)
    elif kind == "thread":
        SdkThread.model_validate(obj, strict=True)
    elif kind == "list":
        assert obj["object"] == "list" and isinstance(obj["data"], list)
        for item in obj["data"]:
            if route == "list":
                SdkMessage.model_validate(item, strict=True)
            elif route == "list_threads":
                SdkThread.model_validate(item, strict=True)


query_values = st.one_of(st.text(max_size=20), st.sampled_from(
    ["0", "1", "100", "101", "-1", "1e3", "9" * 50, "asc", "desc", "\x00", "%00", "msg_x"]))
queries = st.dictionaries(st.sampled_from(["limit", "order", "after", "before", "run_id", "x"]),
                          query_values, max_size=4)
request_cases = st.tuples(st.sampled_from(ROUTES), bodies, CONTENT_TYPES,
                          st.one_of(st.text(max_size=20), st.sampled_from(
                              ["..", ".", "%2F", "a/b", "\x00", "msg_" + "x" * 300])),
                          queries)


@budget(150)
@given(case=request_cases)
async def test_any_request_gets_an_envelope_or_a_valid_object_never_5xx(
        fast_client: TestClient, targets: Targets,
        case: tuple[str, bytes, str | None, str, dict[str, str]]) -> None:
    await check_request(fast_client, targets, *case)


@pytest.mark.slow
@budget(1500)
@given(case=request_cases)
async def test_any_request_gets_an_envelope_or_a_valid_object_never_5xx_long(
        fast_client: TestClient, targets: Targets,
        case: tuple[str, bytes, str | None, str, dict[str, str]]) -> None:
    await check_request(fast_client, targets, *case)


# --- inputs the fuzzer found, kept as regular tests ----------------------------------------------

@pytest.mark.parametrize("obj", [
    {"incomplete_details": {"reason": nested(2)}},  # unhashable reason: TypeError, then 500
    {"status": nested(990)},  # str() of it overflowed the recursion budget
    {"metadata": {"k": nested(990)}},  # so did json.dumps
    {"content": [{"type": "image_url", "image_url": {"url": "u", "detail": ["low"]}}]},
    {"content": [{"type": "image_file", "image_file": {"file_id": "f", "detail": {}}}]},
])
def test_found_unhashable_values_where_a_keyword_is_expected(obj: dict[str, Any]) -> None:
    check_normalize(obj)


async def test_found_a_line_nested_near_the_parser_limit_is_never_a_500(
        fast_client: TestClient, data_dir: Path) -> None:
    lines = [b'{"id":"msg_d%d","metadata":{"k":%s},"role":"user"}' % (n, b"[" * n + b"]" * n)
             for n in (MAX_DEPTH, 800, 985, 5000)]
    await check_served(fast_client, data_dir, b"\n".join(lines) + b"\n")
    resp = await fast_client.get(f"/v1/threads/fuzz{Seq.n}/messages", params={"order": "asc"})
    served = [m["id"] for m in (await resp.json())["data"]]
    assert served[:2] == [f"msg_d{MAX_DEPTH}", "msg_d800"] and "msg_d5000" not in served


def at_depth(frames: int, fn: Callable[[], Any]) -> Any:
    return fn() if frames <= 0 else at_depth(frames - 1, fn)


async def test_found_a_line_indexed_in_a_shallow_stack_is_served_from_a_deep_one(
        fast_client: TestClient, data_dir: Path) -> None:
    # The parser shares Python's recursion budget: a line nested 800 deep parses in the indexer's
    # worker thread but not 300 frames deeper. Serving it raised Stale on every retry (a 500).
    n = 800
    line = b'{"id":"msg_deep","role":"user","metadata":{"k":%s}}' % (b"[" * n + b"]" * n)
    folder = data_dir / "threads" / "deep"
    folder.mkdir()
    (folder / "messages.jsonl").write_bytes(line + b"\n")
    entry = await fast_client.server.app[INDEXER].sync("deep")
    assert entry is not None and entry.messages.id_at(0) == "msg_deep"
    served = at_depth(300, lambda: serve_line(entry, 0, line))
    assert SdkMessage.model_validate_json(served, strict=True).id == "msg_deep"


async def test_found_free_form_values_nested_past_the_line_bound_are_rejected(
        fast_client: TestClient, data_dir: Path) -> None:
    # `vector_stores` once took any JSON: nested 500 deep it was stored, and then could not be
    # read back under the bound stored lines have (a later modify would have dropped the fields).
    # It is typed now; deep nesting there must still be a 400, whichever check refuses it.
    for n in (MAX_DEPTH, 900, 5000):
        nest = b"[" * n + b"]" * n
        body = b'{"tool_resources":{"file_search":{"vector_stores":[{"x":' + nest + b"}]}}}"
        resp = await fast_client.post("/v1/threads", data=body,
                                      headers={"Content-Type": "application/json"})
        assert resp.status == 400, await resp.text()
        check_envelope(resp.status, resp.content_type, await resp.read())
    assert list((data_dir / "threads").iterdir()) == []


async def test_found_modifying_a_message_the_full_parser_cannot_read_keeps_it(
        fast_client: TestClient, data_dir: Path) -> None:
    # The index skips unknown fields, so a 5000-digit number in one still indexes the message;
    # a modify then rebuilt the line from the changes alone: `{"metadata":...}`, message gone.
    line = b'{"id":"m1","role":"user","content":"hi","x":' + b"9" * 5000 + b"}"
    await check_served(fast_client, data_dir, line + b"\n")
    path = data_dir / "threads" / f"fuzz{Seq.n}" / "messages.jsonl"
    resp = await fast_client.post(f"/v1/threads/fuzz{Seq.n}/messages/m1",
                                  json={"metadata": {"a": "b"}})
    assert resp.status == 409
    check_envelope(resp.status, resp.content_type, await resp.read())
    assert path.read_bytes() == line + b"\n"
    resp = await fast_client.get(f"/v1/threads/fuzz{Seq.n}/messages/m1")
    assert resp.status == 200 and (await resp.json())["id"] == "m1"


@pytest.mark.timeout(20)
async def test_found_unclosed_escaped_quotes_do_not_stall_the_depth_check(
        fast_client: TestClient, data_dir: Path) -> None:
    # Many brackets, then `\"` pairs that never close a string: the depth check's string pattern
    # retried from every quote to the end of the body, minutes of the event loop for ~100 KB
    # (found in review). Each such body is answered 400 at once, and nothing is written.
    for tail in (b'\\"' * 60_000, b'"' + b'\\"' * 60_000 + b"\\", b'"\\' * 60_000):
        body = b"[" * (MAX_DEPTH + 1) + tail
        resp = await fast_client.post("/v1/threads", data=body,
                                      headers={"Content-Type": "application/json"})
        assert resp.status == 400, await resp.text()
        check_envelope(resp.status, resp.content_type, await resp.read())
    assert not (data_dir / "threads").exists() or list((data_dir / "threads").iterdir()) == []
