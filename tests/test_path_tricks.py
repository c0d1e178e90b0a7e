"""Thread ids that are not safe folder names are refused on every thread route before any path is
built: 404/400 in the OpenAI envelope, and nothing in or outside the data folder is touched.

Requests go over a raw socket, so the request target reaches the server exactly as written (an
HTTP client would resolve `..` or re-encode `%2F` first).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import MakeServer
from tests.envelope import check_envelope
from tests.jan import jan_message, jan_thread, write_thread

BAD_IDS = [
    "..", "%2e%2e", "%2E%2E", ".", "..%2F..%2Fvictim", "%2e%2e%2fvictim", "a%2Fb", "%2F",
    "%2Fetc%2Fpasswd", "%00", "a%00b", "%0A", ".hidden", ".threadline.lock", "-dash", "_under",
    "a" * 129, "b" * 200, "%C3%A9t%C3%A9", "a%5Cb", "~", "%20",
]
# Not even a request the HTTP parser accepts, or not a path the router gives a thread id: these
# never reach a handler at all.
UNROUTABLE = ["", "../victim", "../../victim", "a/b"]

ROUTES = [
    ("GET", "/v1/threads/{}", b""),
    ("POST", "/v1/threads/{}", b'{"metadata": {"k": "v"}}'),
    ("DELETE", "/v1/threads/{}", b""),
    ("GET", "/v1/threads/{}/messages", b""),
    ("POST", "/v1/threads/{}/messages", b'{"role": "user", "content": "pwned"}'),
    ("GET", "/v1/threads/{}/messages/m0", b""),
    ("POST", "/v1/threads/{}/messages/m0", b'{"metadata": {"k": "v"}}'),
    ("DELETE", "/v1/threads/{}/messages/m0", b""),
    ("GET", "/v1/threads/{}/messages/m0/files", b""),
    ("GET", "/v1/threads/{}/messages/m0/files/f", b""),
]


async def raw_request(server: TestServer, method: str, target: bytes, body: bytes = b""
                      ) -> tuple[int, str, bytes]:
    """One HTTP/1.1 request with the target byte for byte; (status, content type, body)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (method.encode(), target, len(body), body))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.decode().lower().split(": ", 1) for line in lines[1:])
    content_type = headers.get("content-type", "").split(";")[0]
    return int(lines[0].split()[1]), content_type, payload


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under `root` with its size, mtime and content hash."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
async def decoys(tmp_path: Path, data_dir: Path) -> Path:
    """Thread-shaped folders just outside the threads directory, where `..` tricks would land,
    and a real thread inside it."""
    for folder in (data_dir / "victim", tmp_path / "victim", data_dir):
        folder.mkdir(exist_ok=True)
        (folder / "thread.json").write_text(json.dumps(jan_thread("victim")))
        (folder / "messages.jsonl").write_text(json.dumps(jan_message("m0", "victim", "s")) + "\n")
    write_thread(data_dir, "real", jan_thread("real"), [jan_message("m0", "real", "hello")])
    return tmp_path


@pytest.mark.parametrize("thread_id", BAD_IDS)
async def test_unsafe_thread_ids_are_refused_on_every_route(
        decoys: Path, start_server: MakeServer, thread_id: str) -> None:
    server = await start_server()
    before = tree(decoys)
    for method, pattern, body in ROUTES:
        status, content_type, payload = await raw_request(
            server, method, pattern.format(thread_id).encode(), body)
        error = check_envelope(status, content_type, payload)
        assert status in (400, 404), (method, pattern, status)
        if status == 404 and error["param"] == "thread_id":
            assert error["message"].startswith("No thread found with id '")
    assert tree(decoys) == before


@pytest.mark.parametrize("thread_id", UNROUTABLE)
async def test_ids_the_router_never_matches_are_404_and_touch_nothing(
        decoys: Path, start_server: MakeServer, thread_id: str) -> None:
    server = await start_server()
    before = tree(decoys)
    for method, pattern, body in ROUTES:
        status, content_type, payload = await raw_request(
            server, method, pattern.format(thread_id).encode(), body)
        check_envelope(status, content_type, payload)
        assert status in (404, 405), (method, pattern, status)
    assert tree(decoys) == before


@pytest.mark.parametrize("target", [b"/v1/threads/a\x00b", b"/v1/threads/a b/messages",
                                    b"/v1/threads/\xc3\xa9"])
async def test_raw_bytes_the_http_parser_rejects_are_400_and_touch_nothing(
        decoys: Path, start_server: MakeServer, target: bytes) -> None:
    server = await start_server()
    before = tree(decoys)
    for method in ("GET", "POST", "DELETE"):
        status, _, _ = await raw_request(server, method, target, b'{"role": "user"}')
        assert status == 400  # refused by aiohttp's parser before any application code runs
    assert tree(decoys) == before


async def test_the_real_thread_next_to_the_decoys_still_works(
        decoys: Path, start_server: MakeServer) -> None:
    server = await start_server()
    status, _, payload = await raw_request(server, "GET", b"/v1/threads?limit=100")
    assert status == 200
    assert [t["id"] for t in json.loads(payload)["data"]] == ["real"]
    status, _, payload = await raw_request(server, "GET", b"/v1/threads/real/messages/m0")
    assert (status, json.loads(payload)["id"]) == (200, "m0")


async def test_a_thread_id_of_128_chars_is_fine_and_129_is_not(
        data_dir: Path, start_server: MakeServer) -> None:
    longest = "t" + "x" * 127
    write_thread(data_dir, longest, jan_thread(longest), [])
    write_thread(data_dir, longest + "y", jan_thread(longest), [])  # on disk, never served
    server = await start_server()
    status, _, payload = await raw_request(server, "GET", f"/v1/threads/{longest}".encode())
    assert (status, json.loads(payload)["id"]) == (200, longest)
    status, content_type, payload = await raw_request(
        server, "GET", f"/v1/threads/{longest}y".encode())
    assert status == 404
    check_envelope(status, content_type, payload)
    status, _, payload = await raw_request(server, "GET", b"/v1/threads")
    assert [t["id"] for t in json.loads(payload)["data"]] == [longest]


async def test_a_message_id_longer_than_aiohttps_default_request_line_is_addressable(
        data_dir: Path, start_server: MakeServer) -> None:
    """Message ids on disk have no length limit; a list serves a 10,000-character one, so a get
    and a cursor naming it must work too (aiohttp refuses request lines over 8 KiB by default)."""
    long_id = "m" * 10_000
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(long_id, "jan_1", "long"), jan_message("m1", "jan_1", "next")])
    server = await start_server()
    status, _, payload = await raw_request(server, "GET",
                                           f"/v1/threads/jan_1/messages/{long_id}".encode())
    assert (status, json.loads(payload)["id"]) == (200, long_id)
    status, _, payload = await raw_request(
        server, "GET", f"/v1/threads/jan_1/messages?order=asc&after={long_id}".encode())
    assert (status, [m["id"] for m in json.loads(payload)["data"]]) == (200, ["m1"])
