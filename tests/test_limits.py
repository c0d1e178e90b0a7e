"""Bounded resources: request bodies, message lines and per-thread write queues have limits, and
going over one is a 4xx (or, for the queue, waiting), never unbounded memory or a torn file."""

from __future__ import annotations

import asyncio
import errno
import gzip
import json
import os
import re
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.api import request as request_module
from service.store import writer as writer_module
from service.store.append import Appended, append_lines
from service.store.writer import ThreadWriter
from tests.envelope import expect_error
from tests.jan import jan_message
from tests.procs import parse_line, read_lines

MakeClient = Callable[..., Any]


@pytest.fixture
def limited(open_client: MakeClient) -> MakeClient:
    return open_client  # the shared fixture (tests/conftest.py), under this file's name


async def new_thread(client: TestClient) -> str:
    resp = await client.post("/v1/threads", json={})
    assert resp.status == 200
    return str((await resp.json())["id"])


def stored(data_dir: Path, thread_id: str) -> bytes:
    return (data_dir / "threads" / thread_id / "messages.jsonl").read_bytes()


async def test_body_over_the_limit_is_413_in_the_error_envelope(
        limited: MakeClient, data_dir: Path) -> None:
    client = await limited(max_body_bytes=1024)
    thread_id = await new_thread(client)
    resp = await client.post(f"/v1/threads/{thread_id}/messages",
                             json={"role": "user", "content": "x" * 2000})
    error = await expect_error(resp, 413)
    assert error["code"] == "request_too_large"
    assert stored(data_dir, thread_id) == b""


async def test_chunked_body_over_the_limit_is_413_too(limited: MakeClient, data_dir: Path
                                                      ) -> None:
    client = await limited(max_body_bytes=1024)
    thread_id = await new_thread(client)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"role":"user","content":"'
        for _ in range(100):
            yield b"y" * 100
        yield b'"}'
    resp = await client.post(f"/v1/threads/{thread_id}/messages", data=chunks(),
                             headers={"Content-Type": "application/json"})
    await expect_error(resp, 413)
    assert stored(data_dir, thread_id) == b""


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_over_the_limit_once_decoded_is_413(
        limited: MakeClient, data_dir: Path, encoding: str) -> None:
    """A few kilobytes that decode to 50 MB (a compression bomb): the limit holds for the bytes
    decoded, not those sent."""
    client = await limited(max_body_bytes=1 << 20)
    thread_id = await new_thread(client)
    raw = b'{"role":"user","content":"' + b"z" * (50 << 20) + b'"}'
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    assert len(body) < 1 << 20
    resp = await client.post(f"/v1/threads/{thread_id}/messages", data=body,
                             headers={"Content-Type": "application/json",
                                      "Content-Encoding": encoding})
    await expect_error(resp, 413)
    assert stored(data_dir, thread_id) == b""


async def test_message_whose_line_exceeds_max_line_bytes_is_rejected(
        limited: MakeClient, data_dir: Path) -> None:
    client = await limited(max_line_bytes=1024, max_body_bytes=1 << 20)
    thread_id = await new_thread(client)
    # 300 characters, but 1200 bytes of UTF-8: the limit is on the encoded line.
    big = {"role": "user", "content": "😀" * 300}
    await expect_error(await client.post(f"/v1/threads/{thread_id}/messages", json=big))
    assert stored(data_dir, thread_id) == b""
    before = sorted(os.listdir(data_dir / "threads"))
    await expect_error(await client.post("/v1/threads", json={"messages": [big]}))
    assert sorted(os.listdir(data_dir / "threads")) == before, "a thread was half created"
    ok = await client.post(f"/v1/threads/{thread_id}/messages", json={"role": "user",
                                                                      "content": "small"})
    assert ok.status == 200


async def test_modify_that_would_exceed_max_line_bytes_is_rejected_and_changes_nothing(
        limited: MakeClient, data_dir: Path) -> None:
    client = await limited(max_line_bytes=1024, max_body_bytes=1 << 20)
    thread_id = await new_thread(client)
    resp = await client.post(f"/v1/threads/{thread_id}/messages",
                             json={"role": "user", "content": "small"})
    message = await resp.json()
    before = stored(data_dir, thread_id)
    resp = await client.post(f"/v1/threads/{thread_id}/messages/{message['id']}",
                             json={"content": "é" * 600})
    await expect_error(resp)
    assert stored(data_dir, thread_id) == before
    resp = await client.get(f"/v1/threads/{thread_id}/messages/{message['id']}")
    assert await resp.json() == message


class GatedAppends:
    """Stands in for `append_lines`: records each batch and blocks until the test opens the gate,
    so the test sees what queues up while a write (and its fsync) is in progress."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.size = 0

    def __call__(self, folder: Path, data: bytes, durable: bool,
                 written: Callable[[Appended], None] | None = None) -> Appended:
        self.batches.append(data.count(b"\n"))
        self.entered.set()
        assert self.gate.wait(10)
        start, self.size = self.size, self.size + len(data)
        done = Appended(start, 1, self.size, 0, (1, start, 0))
        if written is not None:
            written(done)
        return done


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the event loop run until `predicate()` holds (yielding, not sleeping a fixed time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0)


async def appending_behind_a_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, limit: int
) -> tuple[GatedAppends, ThreadWriter, list[bytes], list[asyncio.Task[int]]]:
    """`count` concurrent appends to a writer whose first write blocks until the gate opens."""
    appends = GatedAppends()
    monkeypatch.setattr(writer_module, "append_lines", appends)
    writer = ThreadWriter(tmp_path, durable=True, queue_limit=limit)
    lines = [b'{"n":%d}' % i for i in range(count)]
    calls = [asyncio.create_task(writer.append(line)) for line in lines]
    await asyncio.to_thread(appends.entered.wait, 5)
    return appends, writer, lines, calls


async def test_write_queue_bounds_pending_lines_and_makes_a_flood_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    appends, writer, lines, calls = await appending_behind_a_gate(tmp_path, monkeypatch, 50, 4)
    await wait_until(lambda: sum(not t.done() for t in calls) == 50 and len(appends.batches) == 1
                     and writer._queued == 4)
    # One batch is being written; no more than the limit is held in memory, the rest wait.
    assert appends.batches == [4]
    assert len(writer._pending) == 0
    appends.gate.set()
    offsets = await asyncio.gather(*calls)
    assert sum(appends.batches) == 50 and max(appends.batches) <= 4
    assert offsets == [sum(len(x) + 1 for x in lines[:i]) for i in range(50)], "order kept"


async def test_a_cancelled_append_is_still_written_and_its_batch_answered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that goes away (cancelled) while its line is queued: the line is written, the
    other callers of the batch get their offsets, and the queue's room is given back."""
    appends, writer, lines, calls = await appending_behind_a_gate(tmp_path, monkeypatch, 3, 8)
    calls[1].cancel()
    await asyncio.sleep(0)
    appends.gate.set()
    assert await calls[0] == 0 and await calls[2] == 2 * (len(lines[0]) + 1)
    with pytest.raises(asyncio.CancelledError):
        await calls[1]
    assert appends.batches == [3] and writer._queued == 0  # its line went out with the batch
    assert appends.size == sum(len(x) + 1 for x in lines)


async def test_concurrent_appends_share_one_write_and_one_fsync(tmp_path: Path) -> None:
    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)
    writer = ThreadWriter(tmp_path, durable=True, queue_limit=1024)
    lines = [b'{"id":"m%d"}' % i for i in range(64)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fdatasync", counting)
        offsets = await asyncio.gather(*(writer.append(line) for line in lines))
    assert len(synced) == 1, f"{len(synced)} fsyncs for 64 concurrent appends"
    data = (tmp_path / "messages.jsonl").read_bytes()
    assert [data[o:o + len(line)] for o, line in zip(offsets, lines, strict=True)] == lines
    assert data.count(b"\n") == 64


async def test_creates_through_the_api_are_group_committed(
        limited: MakeClient, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        record_property: Any) -> None:
    client = await limited()
    thread_id = await new_thread(client)
    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)
    monkeypatch.setattr(os, "fdatasync", counting)
    resps = await asyncio.gather(*(client.post(f"/v1/threads/{thread_id}/messages",
                                               json={"role": "user", "content": f"m{i}"})
                                   for i in range(64)))
    assert [r.status for r in resps] == [200] * 64
    lines, tail = read_lines(data_dir / "threads" / thread_id / "messages.jsonl")
    assert len(lines) == 64 and tail == b"" and all(parse_line(x) for x in lines)
    record_property("counts", f"creates=64 fdatasyncs={len(synced)}")
    assert len(synced) <= 32, f"{len(synced)} fsyncs for 64 concurrent creates: not batching"


async def test_a_tiny_write_queue_still_completes_every_create(
        limited: MakeClient, data_dir: Path) -> None:
    client = await limited(write_queue_limit=1)
    thread_id = await new_thread(client)
    resps = await asyncio.gather(*(client.post(f"/v1/threads/{thread_id}/messages",
                                               json={"role": "user", "content": f"m{i}"})
                                   for i in range(40)))
    assert [r.status for r in resps] == [200] * 40
    lines, _ = read_lines(data_dir / "threads" / thread_id / "messages.jsonl")
    assert sorted(parse_line(x)["id"] for x in lines) == sorted(  # type: ignore[index]
        [(await r.json())["id"] for r in resps])


def test_a_failed_append_leaves_no_torn_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """The disk fills up half way through an append: the half already written is taken back, so
    the file is as it was, and the next append lands on a clean line (found in review)."""
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "messages.jsonl").write_bytes(b'{"id":"a"}\n')
    real_write = os.write
    calls = 0

    def disk_fills_up(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data)[:7])  # a short write...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(os, "write", disk_fills_up)
    with pytest.raises(OSError):
        append_lines(folder, b'{"id":"b","text":"lost"}\n', durable=False)
    monkeypatch.setattr(os, "write", real_write)
    assert (folder / "messages.jsonl").read_bytes() == b'{"id":"a"}\n'
    done = append_lines(folder, b'{"id":"c"}\n', durable=False)
    assert (folder / "messages.jsonl").read_bytes() == b'{"id":"a"}\n{"id":"c"}\n'
    assert done.start == len(b'{"id":"a"}\n')


async def test_a_cancelled_append_holds_its_room_until_its_line_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue bounds lines held in memory, not callers: a caller that goes away leaves its
    line queued, so its room is given back only once the line is written (found in review)."""
    appends, writer, lines, calls = await appending_behind_a_gate(tmp_path, monkeypatch, 2, 2)
    calls[0].cancel()
    await wait_until(lambda: calls[0].done())
    late = asyncio.create_task(writer.append(b'{"n":"late"}'))
    await asyncio.sleep(0.05)
    assert not late.done() and writer._queued == 2 and not writer._pending  # still full: waits
    appends.gate.set()
    assert await late == appends.size - len(b'{"n":"late"}') - 1
    assert await calls[1] == len(lines[0]) + 1 and writer._queued == 0
    assert appends.batches == [2, 1]


async def test_a_body_that_stops_arriving_is_a_408_that_closes_the_connection(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends part of its body and then nothing (slowly, or to hold connections
    open) is answered and let go after `BODY_SECONDS`, here shortened; nothing is created."""
    monkeypatch.setattr(request_module, "BODY_SECONDS", 0.3)
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"meta")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 408") and b"Connection: close" in head, head
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and "did not arrive" in error["message"]
    threads = await (await client.get("/v1/threads")).json()
    assert threads["data"] == []


async def _head_and_body(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


@pytest.mark.parametrize("expect", ["100-continue", "100-Continue "])
async def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(
        limited: MakeClient, expect: str) -> None:
    """`Expect: 100-continue` (curl sends it before a body over 1 MB): the 413 comes in place
    of the 100, so the client never uploads the body (it came after the whole upload)."""
    client = await limited(max_body_bytes=1024)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 5000000\r\n"
                 b"Expect: " + expect.encode() + b"\r\n\r\n")
    await writer.drain()
    head, body = await _head_and_body(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head, head
    error = json.loads(body)["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")
    assert (await (await client.get("/v1/threads")).json())["data"] == []


async def test_a_body_within_the_limit_is_asked_for_with_100_continue(
        limited: MakeClient) -> None:
    client = await limited(max_body_bytes=1024)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    body = b'{"metadata": {"k": "v"}}'
    writer.write(b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Expect: 100-continue\r\n\r\n" % len(body))
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(body)
    head, answer = await _head_and_body(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(answer)["metadata"] == {"k": "v"}


async def test_an_expectation_other_than_100_continue_is_a_417_in_the_envelope(
        client: TestClient) -> None:
    resp = await client.post("/v1/threads", json={}, headers={"Expect": "something-else"})
    assert resp.status == 417
    error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error" and "100-continue" in error["message"]
    assert (await (await client.get("/v1/threads")).json())["data"] == []


async def _expecting(client: TestClient, head: bytes) -> tuple[bytes, dict[str, Any]]:
    """Send a request head with `Expect: 100-continue` and a 5 MB body declared, no body."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head + b"Content-Type: application/json\r\nContent-Length: 5000000\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    await writer.drain()
    answer, body = await _head_and_body(reader)
    writer.close()
    return answer, json.loads(body)["error"]


async def test_an_expecting_request_meets_the_key_check_first(limited: MakeClient) -> None:
    """The Expect handler runs before the route's handler: without the key a client is told
    401 (not 413, and not 100 to upload its body first); every answer has its request id and
    is counted."""
    client = await limited(max_body_bytes=1024, api_keys=("sekret",))
    post = b"POST /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head, error = await _expecting(client, post)
    assert head.startswith(b"HTTP/1.1 401") and b"X-Request-Id: req_" in head, head
    assert error["code"] == "invalid_api_key"
    head, error = await _expecting(client, post + b"Authorization: Bearer sekret\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"X-Request-Id: req_" in head, head
    head, error = await _expecting(client, b"POST /v1/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Authorization: Bearer sekret\r\n")
    assert head.startswith(b"HTTP/1.1 404"), head
    metrics = await (await client.get("/metrics")).text()
    for status in ("401", "413", "404"):
        pattern = r'threadline_http_requests_total\{[^}]*status="' + status + r'"[^}]*\} 1'
        assert re.search(pattern, metrics), status


async def test_an_expecting_request_meets_the_host_check_first(client: TestClient) -> None:
    head, error = await _expecting(client, b"POST /v1/threads HTTP/1.1\r\n"
                                   b"Host: evil.example\r\n")
    assert head.startswith(b"HTTP/1.1 403") and error["type"] == "invalid_request_error", head


async def test_a_messages_file_linked_elsewhere_is_read_but_never_written_through(
        client: TestClient, data_dir: Path, tmp_path: Path) -> None:
    """A symbolic link planted in the folder must not let API clients write into the file it
    names (appended to, or copied into the folder by a rewrite): writes are a 409; reads follow
    it, as any reader of the folder would."""
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(jan_message("01OUT", "linked", "elsewhere")) + "\n")
    before = outside.read_bytes()
    folder = data_dir / "threads" / "linked"
    folder.mkdir(parents=True)
    (folder / "thread.json").write_text("{}")
    (folder / "messages.jsonl").symlink_to(outside)
    resp = await client.get("/v1/threads/linked/messages/01OUT")
    assert resp.status == 200
    for method, path, body in (
            ("POST", "/v1/threads/linked/messages", {"role": "user", "content": "x"}),
            ("POST", "/v1/threads/linked/messages/01OUT", {"metadata": {"k": "v"}}),
            ("DELETE", "/v1/threads/linked/messages/01OUT", None)):
        resp = await client.request(method, path, json=body)
        assert resp.status == 409, (method, path, await resp.text())
        assert (await resp.json())["error"]["message"] == (
            "Thread 'linked' cannot be written: its messages.jsonl is not a regular file.")
    assert outside.read_bytes() == before
    assert (folder / "messages.jsonl").is_symlink()


async def test_deleting_a_thread_whose_folder_is_a_link_removes_the_link_only(
        client: TestClient, data_dir: Path, tmp_path: Path) -> None:
    """A thread folder kept elsewhere and linked in: a delete removes the thread from the data
    folder (the link), leaves what it led to alone, and leaves no hidden `.deleted-` link behind
    (rmtree refuses a link: it stayed there for good)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thread.json").write_text("{}")
    (elsewhere / "messages.jsonl").write_text(
        json.dumps(jan_message("01AWAY", "away", "kept")) + "\n")
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}
    (data_dir / "threads" / "away").symlink_to(elsewhere, target_is_directory=True)
    assert (await client.get("/v1/threads/away/messages/01AWAY")).status == 200
    resp = await client.delete("/v1/threads/away")
    assert resp.status == 200, await resp.text()
    assert (await client.get("/v1/threads/away")).status == 404
    assert sorted(os.listdir(data_dir / "threads")) == []
    # (its lock file, hidden, aside: the delete took the thread's lock through the link)
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()
            if not p.name.startswith(".")} == before


async def test_a_thread_json_that_links_to_itself_serves_the_thread(
        client: TestClient, data_dir: Path) -> None:
    folder = data_dir / "threads" / "looped"
    folder.mkdir(parents=True)
    (folder / "thread.json").symlink_to("thread.json")
    (folder / "messages.jsonl").write_text(json.dumps(jan_message("01A", "looped", "hi")) + "\n")
    assert (await client.get("/v1/threads/looped")).status == 200
    threads = await (await client.get("/v1/threads")).json()
    assert [t["id"] for t in threads["data"]] == ["looped"]
    page = await (await client.get("/v1/threads/looped/messages")).json()
    assert [m["id"] for m in page["data"]] == ["01A"]
