"""One error contract on every route and method (in the spirit of datasette's test_error_shape):
bad input of any kind is a 4xx with exactly `{"error": {"message", "type", "param", "code"}}`,
never a 500, and a refused write changes nothing on disk."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from service.errors import render
from tests.envelope import expect_error, no_message, no_thread

OpenClient = Callable[..., Awaitable[TestClient]]


@dataclass
class Env:
    client: TestClient
    thread_id: str
    message_id: str
    data_dir: Path

    def path(self, pattern: str, thread_id: str | None = None, message_id: str | None = None
             ) -> str:
        return pattern.format(t=thread_id or self.thread_id, m=message_id or self.message_id)

    def tree(self) -> dict[str, str]:
        """The data folder's files and hashes; the event journal (.threadline/) is written
        asynchronously after earlier creates, so it is left out."""
        return {str(p.relative_to(self.data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
                if p.is_file() else "dir" for p in sorted(self.data_dir.rglob("*"))
                if p.relative_to(self.data_dir).parts[0] != ".threadline"}


@pytest.fixture(autouse=True)
def no_unhandled_error(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The error middleware logs every exception it did not expect: there must be none."""
    yield
    assert [r.getMessage() for r in caplog.records if r.name == "service.errors"] == []


@pytest.fixture
async def env(open_client: OpenClient, data_dir: Path) -> AsyncIterator[Env]:
    client = await open_client()
    resp = await client.post("/v1/threads", json={"messages": [
        {"role": "user", "content": "hello", "attachments": [{"file_id": "file-1"}]}]})
    thread_id = (await resp.json())["id"]
    resp = await client.get(f"/v1/threads/{thread_id}/messages")
    message_id = (await resp.json())["data"][0]["id"]
    yield Env(client, thread_id, message_id, data_dir)


# Every route, with every method it serves.
ROUTES = {
    "/v1/threads": ("GET", "POST"),
    "/v1/threads/{t}": ("GET", "POST", "DELETE"),
    "/v1/threads/{t}/messages": ("GET", "POST"),
    "/v1/threads/{t}/messages/{m}": ("GET", "POST", "DELETE"),
    "/v1/threads/{t}/messages/{m}/files": ("GET",),
    "/v1/threads/{t}/messages/{m}/files/file-1": ("GET",),
}
BODY_ROUTES = [path for path, methods in ROUTES.items() if "POST" in methods]
# A body each POST route accepts, to show the route works when the input is right.
GOOD_BODY: dict[str, dict[str, Any]] = {
    "/v1/threads": {"metadata": {"k": "v"}},
    "/v1/threads/{t}": {"metadata": {"k": "v"}},
    "/v1/threads/{t}/messages": {"role": "user", "content": "ok", "metadata": {"k": "v"}},
    "/v1/threads/{t}/messages/{m}": {"metadata": {"k": "v"}},
}

DEEP = 100_000
BAD_BODIES: dict[str, bytes] = {
    "truncated": b'{"metadata": ',
    "trailing garbage": b'{"metadata": {}} x',
    "single quotes": b"{'metadata': {}}",
    "invalid utf-8": b'{"metadata": {"k": "caf\xe9"}}',
    "invalid utf-8 key": b'{"metadata": {"\xff": "v"}}',
    "lone surrogate": b'{"metadata": {"k": "\\ud800"}}',
    "nul byte": b'{"metadata": {"k": "a\x00b"}}',
    "bom": b'\xef\xbb\xbf{"metadata": {}}',
    "nested arrays": b"[" * DEEP + b"]" * DEEP,
    "nested objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "nested in metadata": b'{"metadata": {"k": ' + b"[" * DEEP + b"]" * DEEP + b"}}",
    "nested in tool_resources": (
        b'{"tool_resources": {"file_search": {"vector_stores": [{"x": '
        + b"[" * DEEP + b"]" * DEEP + b"}]}}}"),
    "1e400": b'{"metadata": {"k": 1e400}}',
    "10**5000": b'{"metadata": {"k": 1' + b"0" * 5000 + b"}}",
    "huge int in tool_resources": (
        b'{"tool_resources": {"file_search": {"vector_stores": [{"x": 1' + b"0" * 5000
        + b"}]}}}"),
    "huge timestamp": b'{"completed_at": 1' + b"0" * 5000 + b"}",
    "null": b"null",
    "array": b"[]",
    "string": b'"metadata"',
    "number": b"42",
    "unknown field": b'{"bogus": 1}',
    "metadata not an object": b'{"metadata": "k=v"}',
    "metadata value not a string": b'{"metadata": {"k": 1}}',
    "17 metadata keys": json.dumps({"metadata": {f"k{i}": "v" for i in range(17)}}).encode(),
    "65-char metadata key": json.dumps({"metadata": {"k" * 65: "v"}}).encode(),
    "513-char metadata value": json.dumps({"metadata": {"k": "v" * 513}}).encode(),
}

# Wrong types and values, per route (each route takes a different body).
WRONG: dict[str, list[object]] = {
    "/v1/threads": [
        {"messages": {}}, {"messages": [{}]}, {"messages": [{"role": "user"}]},
        {"messages": [{"role": "system", "content": "x"}]}, {"tool_resources": []},
        {"tool_resources": {"code_interpreter": {"file_ids": [1]}}},
        {"tool_resources": {"code_interpreter": {"file_ids": ["f"] * 21}}},
        {"tool_resources": {"file_search": {"vector_store_ids": ["a", "b"]}}},
        {"tool_resources": {"retrieval": {}}}, {"metadata": {"k": "v"}, "title": "x"},
    ],
    "/v1/threads/{t}": [
        {"tool_resources": "x"}, {"metadata": []}, {"messages": []}, {"title": "renamed"},
    ],
    "/v1/threads/{t}/messages": [
        {}, {"role": "user"}, {"content": "x"}, {"role": 1, "content": "x"},
        {"role": "system", "content": "x"}, {"role": "user", "content": 5},
        {"role": "user", "content": []}, {"role": "user", "content": [{"type": "bogus"}]},
        {"role": "user", "content": [{"type": "text"}]},
        {"role": "user", "content": [{"type": "text", "text": {"value": "x"}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "not a uri"}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "a/b.png"}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": " \n"}}]},
        {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": "f",
                                                                          "detail": "max"}}]},
        {"role": "user", "content": "x", "attachments": {}},
        {"role": "user", "content": "x", "attachments": [{"file_id": ""}]},
        {"role": "user", "content": "x", "attachments": [{"file_id": "f", "tools": [
            {"type": "retrieval"}]}]},
        {"role": "user", "content": "x", "run_id": "run_1"},
    ],
    "/v1/threads/{t}/messages/{m}": [
        {"role": "assistant"}, {"status": "done"}, {"status": "ready"}, {"completed_at": -1},
        {"completed_at": 1.5}, {"completed_at": "2024-01-01"}, {"incomplete_at": 2**60},
        {"completed_at": 10**12 + 1},  # read as milliseconds if stored: refused
        {"incomplete_details": {"reason": "tired"}},
        {"incomplete_details": {"reason": "max_tokens", "bogus": 1}},
        {"content": []}, {"content": None},
        {"id": "msg_other"},
    ],
}


# --- bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_bad_json_is_400_on_every_body_route_and_writes_nothing(env: Env, name: str
                                                                      ) -> None:
    before = env.tree()
    for pattern in BODY_ROUTES:
        resp = await env.client.post(env.path(pattern), data=BAD_BODIES[name],
                                     headers={"Content-Type": "application/json"})
        await expect_error(resp, 400)
    assert env.tree() == before


async def test_wrong_types_unknown_fields_and_bad_values_are_400(env: Env) -> None:
    before = env.tree()
    for pattern, bodies in WRONG.items():
        for body in bodies:
            resp = await env.client.post(env.path(pattern), json=body)
            error = await expect_error(resp, 400)
            assert error["message"].startswith("Invalid request body: "), (pattern, body, error)
    assert env.tree() == before


async def test_an_image_url_that_is_no_uri_is_400_naming_the_field(env: Env) -> None:
    resp = await env.client.post(env.path("/v1/threads/{t}/messages"), json={
        "role": "user", "content": [{"type": "text", "text": "see"},
                                    {"type": "image_url", "image_url": {"url": "cat.png"}}]})
    error = await expect_error(resp, 400)
    assert error["param"] == "content[1].image_url.url"
    assert "Expected a URL (an absolute URI" in error["message"]
    assert "regex" not in error["message"]


@pytest.mark.parametrize(("sent", "stored"), [
    ("https://x.test/a.png?q=1#f", "https://x.test/a.png?q=1#f"),
    ("http://[::1]:8080/a.png", "http://[::1]:8080/a.png"),
    ("https://x.test/?arr[]=1", "https://x.test/?arr%5B%5D=1"),
    ("https://x.test/ä b.png\n", "https://x.test/%C3%A4%20b.png"),
    ("https://x.test/?q=a|b", "https://x.test/?q=a%7Cb"),
    ("data:image/png;base64,iVBO\r\nRw0K", "data:image/png;base64,iVBORw0K"),
    ("data:image/svg+xml;utf8,<svg/>", "data:image/svg+xml;utf8,%3Csvg/%3E"),
])
async def test_an_image_url_is_stored_as_the_uri_a_browser_makes_of_it(
        env: Env, sent: str, stored: str) -> None:
    resp = await env.client.post(env.path("/v1/threads/{t}/messages"), json={
        "role": "user", "content": [{"type": "image_url", "image_url": {"url": sent}}]})
    assert resp.status == 200
    created = await resp.json()
    assert created["content"][0]["image_url"]["url"] == stored
    again = await env.client.get(env.path("/v1/threads/{t}/messages/") + created["id"])
    assert await again.json() == created


@pytest.mark.parametrize(("metadata", "param"), [
    ({f"k{i}": "v" for i in range(17)}, "metadata"),
    ({"k" * 65: "v"}, "metadata"),
    ({"k": "v" * 513}, "metadata"),
])
async def test_metadata_over_the_limits_is_400_on_every_route(
        env: Env, metadata: dict[str, str], param: str) -> None:
    before = env.tree()
    in_a_new_message = {"messages": [{"role": "user", "content": "x", "metadata": metadata}]}
    for pattern in BODY_ROUTES:
        bodies: list[dict[str, Any]] = [{**GOOD_BODY[pattern], "metadata": metadata}]
        if pattern == "/v1/threads":
            bodies.append(in_a_new_message)
        for body in bodies:
            resp = await env.client.post(env.path(pattern), json=body)
            error = await expect_error(resp, 400)
            assert error["param"] is not None and param in error["param"]
    assert env.tree() == before


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/threads/{t}/messages", {"role": "user"}, "content"),
    ("/v1/threads/{t}/messages", {"role": "user", "content": "x", "bogus": 1}, "bogus"),
    ("/v1/threads", {"messages": [{"role": "user"}]}, "messages[0].content"),
    ("/v1/threads", {"messages": [{"role": "user", "content": "x", "zz": 1}]},
     "messages[0].zz"),
    ("/v1/threads", {"metadata": {"k": 1}}, "metadata"),
])
async def test_a_missing_or_unknown_field_is_named_in_param(env: Env, path: str,
                                                            body: dict[str, Any],
                                                            param: str) -> None:
    error = await expect_error(await env.client.post(env.path(path), json=body), 400)
    assert error["param"] == param


async def test_metadata_at_the_limits_is_accepted(env: Env) -> None:
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    for pattern in BODY_ROUTES:
        resp = await env.client.post(env.path(pattern), json={**GOOD_BODY[pattern],
                                                              "metadata": metadata})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["metadata"] == metadata


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain"},
    {"Content-Type": "text/plain;charset=UTF-8"},
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "multipart/form-data; boundary=xyz"},
    {"Content-Type": "application/jsonp"},
    {"Origin": "https://evil.example"},  # a browser's empty-typed POST
])
async def test_a_body_that_is_not_declared_json_creates_nothing(
        env: Env, headers: dict[str, str]) -> None:
    before = env.tree()
    for pattern in BODY_ROUTES:
        body = json.dumps(GOOD_BODY[pattern]).encode()
        resp = await env.client.post(env.path(pattern), data=body, headers=headers,
                                     skip_auto_headers=["Content-Type"])
        error = await expect_error(resp)
        assert resp.status == 415
        assert "application/json" in error["message"]
    assert env.tree() == before
    threads = await (await env.client.get("/v1/threads")).json()
    assert len(threads["data"]) == 1


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
async def test_json_with_a_charset_is_json(env: Env, charset: str) -> None:
    resp = await env.client.post("/v1/threads", data=b'{"metadata": {"k": "\xc3\xa9"}}',
                                 headers={"Content-Type": f"application/json; charset={charset}"})
    assert resp.status == 200
    assert (await resp.json())["metadata"] == {"k": "é"}


@pytest.mark.parametrize("charset", ["utf-16", "latin-1", "iso-8859-1"])
async def test_json_in_another_charset_is_415_not_misread(env: Env, charset: str) -> None:
    """JSON is UTF-8: a body declared in another charset was read as UTF-8 anyway (latin-1's
    "é" stored as U+FFFD, or a 400 for valid UTF-16)."""
    before = env.tree()
    resp = await env.client.post("/v1/threads", data='{"metadata": {"k": "é"}}'.encode(charset),
                                 headers={"Content-Type": f"application/json; charset={charset}"})
    error = await expect_error(resp)
    assert resp.status == 415
    assert error["message"] == f"Unsupported charset '{charset}': send the JSON body in UTF-8."
    assert env.tree() == before


async def test_a_body_over_the_limit_is_413_on_every_body_route(
        open_client: OpenClient, data_dir: Path) -> None:
    client = await open_client(max_body_bytes=2048)
    resp = await client.post("/v1/threads", json={"messages": [{"role": "user", "content": "x"}]})
    thread_id = (await resp.json())["id"]
    resp = await client.get(f"/v1/threads/{thread_id}/messages")
    message_id = (await resp.json())["data"][0]["id"]
    big = json.dumps({"metadata": {"k": "v" * 500}, "content": "x" * 3000}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield big[:1000]

    for pattern in BODY_ROUTES:
        path = pattern.format(t=thread_id, m=message_id)
        for data in (big, chunks()):  # with a Content-Length, and chunked without one
            resp = await client.post(path, data=data,
                                     headers={"Content-Type": "application/json"})
            error = await expect_error(resp, 413)
            assert error["code"] == "request_too_large"
    resp = await client.get(f"/v1/threads/{thread_id}/messages")
    assert len((await resp.json())["data"]) == 1


# --- unknown ids, routes and methods -------------------------------------------------------------


async def test_an_unknown_thread_is_404_on_every_route(env: Env) -> None:
    for pattern, methods in ROUTES.items():
        if "{t}" not in pattern:
            continue
        for method in methods:
            body = GOOD_BODY.get(pattern) if method == "POST" else None
            resp = await env.client.request(method, env.path(pattern, thread_id="thread_nope"),
                                            json=body)
            error = await expect_error(resp, 404, no_thread("thread_nope"))
            assert error["param"] == "thread_id"


async def test_an_unknown_message_is_404_on_every_message_route(env: Env) -> None:
    before = env.tree()
    for pattern, methods in ROUTES.items():
        if "{m}" not in pattern:
            continue
        for method in methods:
            body = GOOD_BODY.get(pattern) if method == "POST" else None
            resp = await env.client.request(method, env.path(pattern, message_id="msg_nope"),
                                            json=body)
            error = await expect_error(resp, 404, no_message("msg_nope"))
            assert error["param"] == "message_id"
    assert env.tree() == before


async def test_an_unknown_file_is_404(env: Env) -> None:
    resp = await env.client.get(env.path("/v1/threads/{t}/messages/{m}/files/file-nope"))
    error = await expect_error(resp, 404, "No file found with id 'file-nope'.")
    assert error["param"] == "file_id"


async def test_methods_a_route_does_not_serve_are_405(env: Env) -> None:
    for pattern, methods in ROUTES.items():
        for method in {"GET", "POST", "DELETE", "PUT", "PATCH"} - set(methods):
            resp = await env.client.request(method, env.path(pattern), json={})
            await expect_error(resp, 405)
            # RFC 9110: a 405 names the methods the resource has.
            assert set(resp.headers["Allow"].split(",")) >= set(methods), pattern


async def test_head_is_served_wherever_get_is(env: Env) -> None:
    for pattern, methods in ROUTES.items():
        if "GET" in methods:
            get = await env.client.get(env.path(pattern))
            head = await env.client.head(env.path(pattern))
            assert (head.status, head.content_type) == (get.status, get.content_type), pattern
            assert await head.read() == b""
    resp = await env.client.head("/v1/nope")
    assert resp.status == 404


@pytest.mark.parametrize("path", ["/v1", "/v1/", "/v1/nope", "/v1/threads/{t}/runs",
                                  "/v1/threads/{t}/messages/{m}/nope", "/v2/threads"])
async def test_unknown_routes_are_404(env: Env, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        resp = await env.client.request(method, env.path(path))
        await expect_error(resp, 404)


async def test_create_and_run_is_out_of_scope_even_beside_a_thread_named_runs(
        env: Env, data_dir: Path) -> None:
    """`POST /v1/threads/runs` is OpenAI's create-and-run: a 404 like every runs route, not a
    modify of a thread called "runs" (a valid Jan folder name, still served by a get)."""
    for exists in (False, True):
        if exists:
            folder = data_dir / "threads" / "runs"
            folder.mkdir(parents=True)
            (folder / "thread.json").write_text('{"title": "runs"}')
            (folder / "messages.jsonl").write_text("")
        resp = await env.client.post("/v1/threads/runs", json={"assistant_id": "asst_1"})
        error = await expect_error(resp, 404)
        assert error["param"] is None and "runs" not in error["message"]
    resp = await env.client.get("/v1/threads/runs")
    assert resp.status == 200 and (await resp.json())["id"] == "runs"


@pytest.mark.parametrize("query", [
    "limit=0", "limit=101", "limit=x", "order=sideways", "after=nope", "before=nope",
    "limit=1_0", "limit=%EF%BC%95", "limit=+5", "limit=%205", "limit=5.0", "limit=-5",
])
async def test_bad_list_parameters_are_400_on_every_list_route(env: Env, query: str) -> None:
    for pattern in ("/v1/threads", "/v1/threads/{t}/messages",
                    "/v1/threads/{t}/messages/{m}/files"):
        resp = await env.client.get(f"{env.path(pattern)}?{query}")
        error = await expect_error(resp, 400)
        assert error["param"] == query.split("=")[0]


@pytest.mark.parametrize(("limit", "says"), [
    ("32589158477190044729", "is not between 1 and 100"),
    ("-270418243687", "is not between 1 and 100"),
    ("1" + "0" * 3000, "is not between 1 and 100"),
    ("0x10", "expected an integer"),
])
async def test_a_limit_out_of_range_says_so_however_long(env: Env, limit: str, says: str) -> None:
    resp = await env.client.get(env.path("/v1/threads/{t}/messages") + f"?limit={limit}")
    assert says in (await expect_error(resp, 400))["message"]


async def test_a_limit_with_leading_zeros_is_its_value(env: Env) -> None:
    resp = await env.client.get(env.path("/v1/threads/{t}/messages") + "?limit=0000000000001")
    assert resp.status == 200 and len((await resp.json())["data"]) == 1


@pytest.mark.parametrize("replaced_by_a_file", [False, True])
async def test_deleting_a_thread_another_program_removed_is_a_404_and_forgets_it(
        open_client: Callable[..., Awaitable[TestClient]], data_dir: Path,
        replaced_by_a_file: bool) -> None:
    """No watcher to tell: another program removes the thread's folder (or puts a plain file in
    its place). DELETE answers 404, not 500, and the thread is gone from the index at once
    (found in review: a 500 for the file, and the thread still listed after the 404)."""
    client = await open_client(watch=False)
    thread = await (await client.post("/v1/threads", json={})).json()
    folder = data_dir / "threads" / thread["id"]
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
    if replaced_by_a_file:
        folder.write_bytes(b"x")
    resp = await client.delete(f"/v1/threads/{thread['id']}")
    await expect_error(resp, 404, no_thread(thread["id"]))
    gone = await client.get(f"/v1/threads/{thread['id']}")
    await expect_error(gone, 404, no_thread(thread["id"]))
    listed = await (await client.get("/v1/threads")).json()
    assert thread["id"] not in [t["id"] for t in listed["data"]]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_not_in_its_declared_content_encoding_is_400_and_writes_nothing(
        env: Env, encoding: str) -> None:
    before = env.tree()
    for pattern in BODY_ROUTES:
        resp = await env.client.post(env.path(pattern), data=json.dumps(GOOD_BODY[pattern]),
                                     headers={"Content-Type": "application/json",
                                              "Content-Encoding": encoding})
        error = await expect_error(resp, 400)
        assert error["message"] == ("Request body could not be read: Can not decode "
                                    f"content-encoding: {encoding}.")
        assert resp.headers["Connection"] == "close"  # the stream after it is unreadable
    assert env.tree() == before


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_is_read(env: Env, encoding: str) -> None:
    raw = json.dumps({"metadata": {"k": "v"}}).encode()
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    resp = await env.client.post("/v1/threads", data=body,
                                 headers={"Content-Type": "application/json",
                                          "Content-Encoding": encoding})
    assert resp.status == 200
    assert (await resp.json())["metadata"] == {"k": "v"}


@pytest.mark.parametrize("encoding", ["br", "zstd"])
async def test_a_content_encoding_not_offered_is_a_415_in_the_envelope(env: Env, encoding: str
                                                                      ) -> None:
    """aiohttp refused these in plain text before the app could answer (its decoders, with
    Brotli or backports.zstd installed, take a corrupt stream for an empty body)."""
    before = env.tree()
    resp = await env.client.post("/v1/threads", data=b"abcd",
                                 headers={"Content-Type": "application/json",
                                          "Content-Encoding": encoding})
    error = await expect_error(resp, 415)
    assert "gzip or deflate" in error["message"]
    resp = await env.client.get("/v1/threads", headers={"Content-Encoding": encoding})
    await expect_error(resp, 415)
    assert env.tree() == before


@pytest.mark.parametrize("encoding", ["foo", "x-gzip", "gzip, gzip", "compress"])
async def test_a_content_encoding_aiohttp_does_not_know_is_a_415(env: Env, encoding: str) -> None:
    """aiohttp reads such a body as it is: a JSON body under an unknown coding made a thread."""
    before = env.tree()
    for pattern in BODY_ROUTES:
        resp = await env.client.post(env.path(pattern), data=json.dumps(GOOD_BODY[pattern]),
                                     headers={"Content-Type": "application/json",
                                              "Content-Encoding": encoding})
        error = await expect_error(resp, 415)
        assert error["message"] == (f"Unsupported Content-Encoding '{encoding}': send the body "
                                    "as it is, or in gzip or deflate.")
    assert env.tree() == before
    resp = await env.client.post("/v1/threads", json={},
                                 headers={"Content-Encoding": "Identity"})
    assert resp.status == 200


@pytest.mark.parametrize("last", ["identity", "foo", "gzip"])
async def test_several_content_encoding_headers_are_a_415(env: Env, last: str) -> None:
    """aiohttp heeds the last one only: `gzip` then `foo` had a gzip body read as it is."""
    before = env.tree()
    body = gzip.compress(json.dumps({"metadata": {"k": "v"}}).encode())
    resp = await env.client.post("/v1/threads", data=body, headers=CIMultiDict(
        [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
         ("Content-Encoding", last)]))
    await expect_error(resp, 415)
    assert env.tree() == before


async def test_a_header_of_tens_of_kilobytes_is_read(env: Env) -> None:
    """aiohttp's own limit (8 KiB a header) answered a large cookie in plain text."""
    resp = await env.client.get("/v1/threads", headers={"Cookie": "c=" + "a" * 40_000})
    assert resp.status == 200


async def test_a_bad_image_url_in_a_thread_create_names_its_message(env: Env) -> None:
    resp = await env.client.post("/v1/threads", json={"messages": [
        {"role": "user", "content": "ok"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "nope"}}]}]})
    error = await expect_error(resp, 400)
    assert error["param"] == "messages[1].content[0].image_url.url"
    resp = await env.client.post(env.path("/v1/threads/{t}/messages"), json={
        "role": "user", "content": [{"type": "image_url", "image_url": {"url": "nope"}}]})
    assert (await expect_error(resp, 400))["param"] == "content[0].image_url.url"


@pytest.mark.parametrize(("err", "says"), [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/jan/threads/t1/messages.jsonl"),
     "The data folder cannot be used: Permission denied (messages.jsonl)."),
    (OSError(errno.ENOSPC, "No space left on device"),
     "The data folder cannot be used: No space left on device (the data folder)."),
])
def test_a_data_folder_the_server_cannot_use_is_a_503_naming_the_file_not_its_path(
        err: OSError, says: str) -> None:
    """A file made unreadable, a full or read-only disk: not the request's fault, and not a bug
    either (no 500 and traceback); the answer names the file, never the server's paths."""
    response = render(err)
    assert response.status == 503
    # The SDKs retry a 503 unless told: a permission will not change in a second, room may.
    assert response.headers.get("x-should-retry") == (
        "false" if isinstance(err, PermissionError) else None)
    assert response.body is not None
    body = json.loads(bytes(response.body))  # type: ignore[arg-type]
    assert body == {"error": {"message": says, "type": "server_error", "param": None,
                              "code": None}}


async def test_an_unpaired_surrogate_escape_is_named_not_called_truncation(env: Env) -> None:
    before = env.tree()
    resp = await env.client.post(env.path("/v1/threads/{t}/messages"),
                                 data=b'{"role": "user", "content": "a \\ud800 b"}',
                                 headers={"Content-Type": "application/json"})
    error = await expect_error(resp, 400)
    assert error["message"] == ("Request body is not valid JSON: a string holds a UTF-16 "
                                "surrogate escape without its pair (such as \\ud800).")
    resp = await env.client.post(env.path("/v1/threads/{t}/messages"),
                                 data=b'{"role": "user", "content": "cut',
                                 headers={"Content-Type": "application/json"})
    assert (await expect_error(resp, 400))["message"] == (
        "Request body is not valid JSON: Input data was truncated")
    assert env.tree() == before
