"""Another program edits earlier lines in place, keeping every length (Jan rewrites the whole file
with truncate+write), and an append follows: the file's size and inode then look like an append
alone. Neither the create's own indexing nor the line cache may keep serving the old text."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.models import Message, encoder, text_part
from tests.jan import jan_message, jan_thread, write_thread
from tests.watchkit import wait_for

OpenClient = Callable[..., Awaitable[TestClient]]


def canonical(mid: str, text: str, n: int) -> dict[str, Any]:
    """A line exactly as Threadline writes it (served as stored bytes)."""
    msg = Message(id=mid, created_at=1717666240 + n, thread_id="jan_1", role="user",
                  content=[text_part(text)], attachments=[], metadata={})
    return json.loads(encoder.encode(msg))  # type: ignore[no-any-return]


def lines(shape: str) -> list[dict[str, Any]]:
    if shape == "jan":
        return [jan_message(f"m{i}", "jan_1", f"text {i}", created_ms=1717666240000 + i)
                for i in range(3)]
    return [canonical(f"m{i}", f"text {i}", i) for i in range(3)]


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
    extra = lines(shape)[2] | {"id": "m3"}
    edit_in_place(folder / "messages.jsonl", b"text 1", b"TEXT 1",
                  json.dumps(extra).encode() + b"\n")

    async def settled() -> bool:
        return [mid for mid, _ in await texts(client)] == ["m0", "m1", "m2", "m3"]

    await wait_for(settled, what="the watcher to index the append")
    assert (await texts(client))[1] == ("m1", "TEXT 1")
