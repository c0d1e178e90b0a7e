"""Another program edits earlier lines in place, keeping every length (Jan rewrites the whole file
with truncate+write), and an append follows: the file's size and inode then look like an append
alone. Neither the create's own indexing nor the line cache may keep serving the old text."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from service.index.messages import NORMALIZE
from service.keys import CATALOG
from service.models import Message, encoder, text_part
from tests.jan import jan_message, jan_thread, write_thread
from tests.sse import SseReader
from tests.watchkit import wait_for

OpenClient = Callable[..., Awaitable[TestClient]]


def canonical(mid: str, text: str, n: int) -> bytes:
    """A line exactly as Threadline writes it (served as stored bytes, its CRC-32 checked)."""
    return encoder.encode(Message(id=mid, created_at=1717666240 + n, thread_id="jan_1",
                                  role="user", content=[text_part(text)], attachments=[],
                                  metadata={}))


def line(shape: str, n: int) -> bytes:
    if shape == "jan":
        return json.dumps(jan_message(f"m{n}", "jan_1", f"text {n}",
                                      created_ms=1717666240000 + n)).encode()
    return canonical(f"m{n}", f"text {n}", n)


def lines(shape: str) -> list[bytes]:
    return [line(shape, n) for n in range(3)]


def edit_in_place(path: Path, old: bytes, new: bytes, append: bytes = b"") -> None:
    """Truncate and write the same file (same inode), as Node's writeFileSync does."""
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data.replace(old, new) + append)


async def texts(client: TestClient) -> list[tuple[str, str]]:
    resp = await client.get("/v1/threads/jan_1/messages", params={"order": "asc"})
    assert resp.status == 200, await resp.text()
    return [(m["id"], m["content"][0]["text"]["value"]) for m in (await resp.json())["data"]]


@pytest.mark.parametrize("shape", ["jan", "canonical"])
async def test_a_create_after_an_edit_in_place_serves_the_edit(
        open_client: OpenClient, data_dir: Path, shape: str) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines(shape))
    client = await open_client(watch=False)  # nothing but the create and the reads to notice
    assert await texts(client) == [("m0", "text 0"), ("m1", "text 1"), ("m2", "text 2")]
    edit_in_place(folder / "messages.jsonl", b"text 1", b"TEXT 1")
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "hi"})
    assert resp.status == 200
    created = (await resp.json())["id"]
    assert await texts(client) == [("m0", "text 0"), ("m1", "TEXT 1"), ("m2", "text 2"),
                                   (created, "hi")]
    resp = await client.get("/v1/threads/jan_1/messages/m1")
    assert (await resp.json())["content"][0]["text"]["value"] == "TEXT 1"


@pytest.mark.parametrize("shape", ["jan", "canonical"])
async def test_an_edit_in_place_with_an_append_by_another_program_serves_the_edit(
        open_client: OpenClient, data_dir: Path, shape: str) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines(shape))
    client = await open_client()
    assert await texts(client) == [("m0", "text 0"), ("m1", "text 1"), ("m2", "text 2")]
    edit_in_place(folder / "messages.jsonl", b"text 1", b"TEXT 1", line(shape, 3) + b"\n")

    async def settled() -> bool:
        return [mid for mid, _ in await texts(client)] == ["m0", "m1", "m2", "m3"]

    await wait_for(settled, what="the watcher to index the append")
    assert (await texts(client))[1] == ("m1", "TEXT 1")


async def test_a_replay_after_an_edit_in_place_reads_the_file_whole_and_goes_on(
        open_client: OpenClient, data_dir: Path) -> None:
    """The replay found m1's bytes not the indexed ones and a sync changed nothing: it used to end
    the stream (the client resumed, and it ended again). It reads the file whole and streams on."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines("canonical"))
    client = await open_client(watch=False)
    resp = await client.get("/v1/threads/jan_1/events", params={"after": "m0"})
    assert [ev.json["id"] for ev in await SseReader(resp).take(2)] == ["m1", "m2"]
    resp.close()
    edit_in_place(folder / "messages.jsonl", b"text 1", b"TEXT 1")
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "hi"})
    created = (await resp.json())["id"]
    resp = await client.get("/v1/threads/jan_1/events", params={"after": "m0"})
    assert resp.status == 200
    reader = SseReader(resp)
    got = [ev.json for ev in await reader.take(3)]
    assert [m["id"] for m in got] == ["m1", "m2", created]
    assert got[0]["content"][0]["text"]["value"] == "TEXT 1"
    assert not resp.content.at_eof()
    resp.close()


async def test_reading_the_file_whole_keeps_a_thread_whose_thread_json_is_gone(
        open_client: OpenClient, data_dir: Path) -> None:
    """A known thread whose thread.json vanished keeps its last state (its folder is most often
    being removed); a whole read of messages.jsonl must not take it for a new thread."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1", title="My title"),
                          lines("canonical"))
    client = await open_client(watch=False)
    (folder / "thread.json").unlink()
    edit_in_place(folder / "messages.jsonl", b"text 1", b"TEXT 1")
    assert (await client.post("/v1/threads/jan_1/messages",
                              json={"role": "user", "content": "hi"})).status == 200
    resp = await client.get("/v1/threads/jan_1/messages/m1")  # stale: read whole
    assert (await resp.json())["content"][0]["text"]["value"] == "TEXT 1"
    resp = await client.get("/v1/threads/jan_1")
    assert (await resp.json())["metadata"]["title"] == "My title"


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("shape", ["jan", "canonical"])
async def test_a_modify_or_delete_of_a_message_another_program_just_removed_is_404_everywhere(
        open_client: OpenClient, data_dir: Path, method: str, shape: str) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines(shape))
    client = await open_client(watch=False)  # only the request itself can notice
    assert [mid for mid, _ in await texts(client)] == ["m0", "m1", "m2"]
    data = (folder / "messages.jsonl").read_bytes()
    (folder / "messages.jsonl").write_bytes(data.split(b"\n", 1)[1])  # m0 gone, in place
    resp = await client.request(method, "/v1/threads/jan_1/messages/m0",
                                json={"metadata": {"a": "b"}} if method == "POST" else None)
    assert resp.status == 404
    assert (await client.get("/v1/threads/jan_1/messages/m0")).status == 404
    assert [mid for mid, _ in await texts(client)] == ["m1", "m2"]


def pwrite_edit(path: Path, old: bytes, new: bytes, append: bytes = b"") -> None:
    """Edit in place (same length) and append in one write: no watcher sees the edit alone."""
    data = path.read_bytes()
    at = data.index(old)
    assert len(old) == len(new)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, new + data[at + len(old):] + append, at)
    finally:
        os.close(fd)


async def text_of(client: TestClient, mid: str) -> str:
    resp = await client.get(f"/v1/threads/jan_1/messages/{mid}")
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["content"][0]["text"]["value"])


def indexed(client: TestClient, count: int) -> Callable[[], bool]:
    return lambda: len(client.app[CATALOG].get("jan_1").messages) == count


async def proven(client: TestClient) -> None:
    catalog = client.app[CATALOG]
    await wait_for(lambda: set(catalog.get("jan_1").messages.canon) == {NORMALIZE},
                   what="the prover's verdicts")


async def edit_and_edit_back_each_with_an_append(client: TestClient, path: Path) -> None:
    """m1 edited in place with an append in one write, read, then edited back the same way:
    each read serves what the file holds."""
    pwrite_edit(path, b"text 1", b"TEXT 1", line("jan", 3) + b"\n")
    await wait_for(indexed(client, 4), what="the first append")
    assert await text_of(client, "m1") == "TEXT 1"
    pwrite_edit(path, b"TEXT 1", b"text 1", line("jan", 4) + b"\n")
    await wait_for(indexed(client, 5), what="the second append")
    assert await text_of(client, "m1") == "text 1"


# Found by a reviewer of the line cache's trust (index/cache.py): a value made from a line the
# index had not seen edited, then trusted again once the line was edited back and another program
# appended, was served for good. A line read for the cache must be the indexed one.

async def test_an_edit_and_an_edit_back_each_with_an_append_serve_the_file(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines("jan"))
    path = folder / "messages.jsonl"
    client = await open_client()
    await proven(client)  # known Jan-shaped, nothing cached yet
    await edit_and_edit_back_each_with_an_append(client, path)
    assert (await texts(client))[1] == ("m1", "text 1")


async def test_an_unseen_edit_and_an_edit_back_before_a_create_serve_the_file(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines("jan"))
    path = folder / "messages.jsonl"
    client = await open_client(watch=False)
    await proven(client)
    pwrite_edit(path, b"text 1", b"TEXT 1")  # no append: unseen without a watcher
    assert await text_of(client, "m1") == "TEXT 1"
    pwrite_edit(path, b"TEXT 1", b"text 1")
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "hi"})
    assert resp.status == 200
    assert await text_of(client, "m1") == "text 1"
    assert (await texts(client))[1] == ("m1", "text 1")


async def test_the_same_after_the_line_was_cached_and_evicted(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines("jan"))
    write_thread(data_dir, "jan_2", jan_thread("jan_2"),
                 [jan_message(f"b{i}", "jan_2", "x" * 100_000) for i in range(12)])
    path = folder / "messages.jsonl"
    client = await open_client(prove_lines=False, line_cache_mb=1)
    catalog = client.app[CATALOG]
    assert await text_of(client, "m1") == "text 1"  # known Jan-shaped, and cached
    for i in range(12):  # ~1.2 MB of other lines: m1's value is evicted, its verdict stays
        assert (await client.get(f"/v1/threads/jan_2/messages/b{i}")).status == 200
    entry = catalog.get("jan_1")
    assert catalog.lines.get((entry.uid, entry.generation, 1)) is None
    await edit_and_edit_back_each_with_an_append(client, path)


async def test_a_page_read_line_by_line_does_not_serve_a_held_line_whose_bytes_changed(
        open_client: OpenClient, data_dir: Path) -> None:
    """A page that reads its lines checks every line's CRC-32, Jan-shaped ones held in the line
    cache too: an edit in place with no append (unseen without a watcher) is found there."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"), lines("jan"))
    client = await open_client(watch=False)
    await proven(client)
    assert await text_of(client, "m1") == "text 1"  # m1 alone held: the page is read
    pwrite_edit(folder / "messages.jsonl", b"text 1", b"TEXT 1")
    assert await texts(client) == [("m0", "text 0"), ("m1", "TEXT 1"), ("m2", "text 2")]
    assert await text_of(client, "m1") == "TEXT 1"
