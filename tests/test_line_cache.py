"""The normalized form of Jan-shaped lines is reused, and never outlives the line it came from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config
from service.index.cache import ENTRY_OVERHEAD
from service.index.messages import CANONICAL
from service.keys import CATALOG

from .jan import jan_message, jan_thread, write_thread
from .watchkit import append, jan_line, wait_for, watcher_ready


async def text_of(client: TestClient, message_id: str) -> str:
    resp = await client.get(f"/v1/threads/jan_1/messages/{message_id}")
    assert resp.status == 200
    return str((await resp.json())["content"][0]["text"]["value"])


async def test_jan_lines_are_normalized_once_and_served_from_the_cache(
        data_dir: Path, client: TestClient) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [])
    path = data_dir / "threads" / "jan_1" / "messages.jsonl"
    path.write_text(json.dumps(jan_message("m1", "jan_1", "first")) + "\n")
    cache = client.app[CATALOG].lines
    await wait_for(lambda: client.app[CATALOG].get("jan_1") is not None
                   and len(client.app[CATALOG].get("jan_1").messages) == 1, what="the thread")
    assert await text_of(client, "m1") == "first"
    hits = cache.hits
    assert await text_of(client, "m1") == "first"
    resp = await client.get("/v1/threads/jan_1/messages")
    assert [m["id"] for m in (await resp.json())["data"]] == ["m1"]
    assert cache.hits == hits + 2

    # Another program rewrites the line in place: the cached form must not be served again.
    path.write_text(json.dumps(jan_message("m1", "jan_1", "edited")) + "\n")

    async def edited() -> bool:
        return await text_of(client, "m1") == "edited"
    await wait_for(edited, what="the edited text")


async def test_a_zero_cache_still_serves_jan_lines(make_config: Callable[..., Config],
                                                   aiohttp_client: Any, data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [jan_message("m1", "jan_1", "first")])
    client = await aiohttp_client(create_app(make_config(line_cache_mb=0)))
    for _ in range(2):
        assert await text_of(client, "m1") == "first"
    assert client.app[CATALOG].lines.size == 0


async def test_lines_this_server_writes_are_known_canonical_without_a_check(
        make_config: Callable[..., Config], aiohttp_client: Any) -> None:
    # No watcher: its sync of the new thread could index the line first (then it is checked
    # on first read instead, which is also right, but not what this test is about).
    client = await aiohttp_client(create_app(make_config(watch=False)))
    resp = await client.post("/v1/threads", json={})
    thread_id = (await resp.json())["id"]
    resp = await client.post(f"/v1/threads/{thread_id}/messages",
                             json={"role": "user", "content": "hi"})
    created = await resp.json()
    entry = client.app[CATALOG].get(thread_id)
    assert entry is not None
    slot = entry.messages.find(created["id"])
    assert entry.messages.canon[slot] == CANONICAL
    resp = await client.get(f"/v1/threads/{thread_id}/messages/{created['id']}")
    assert await resp.json() == created


async def test_an_append_by_another_program_keeps_the_cached_lines(
        data_dir: Path, client: TestClient) -> None:
    """The lines held from before an append by another program are read and checked once
    (their CRC-32 against the index), not normalized again: with several workers, every create by
    one used to empty the others' caches of that thread."""
    messages = [jan_message(f"m{i}", "jan_1", f"text {i}") for i in range(3)]
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), messages)
    await watcher_ready(client)
    catalog = client.app[CATALOG]
    cache = catalog.lines
    for mid in ("m0", "m1", "m2"):
        assert await text_of(client, mid) == f"text {mid[1]}"
    entry = catalog.get("jan_1")
    misses, generation, trust = cache.misses, entry.generation, entry.trust
    await append(data_dir / "threads" / "jan_1" / "messages.jsonl",
                 jan_line("m3", "jan_1", "text 3") + b"\n")

    async def listed() -> list[str]:
        resp = await client.get("/v1/threads/jan_1/messages", params={"order": "asc"})
        return [m["content"][0]["text"]["value"] for m in (await resp.json())["data"]]

    await wait_for(lambda: len(catalog.get("jan_1").messages) == 4, what="the append indexed")
    assert catalog.get("jan_1") is entry and entry.trust > trust and entry.generation == generation
    assert await text_of(client, "m1") == "text 1"  # a get: read, checked, served as held
    assert await listed() == ["text 0", "text 1", "text 2", "text 3"]  # a page: the same
    assert cache.misses == misses + 1  # m3 alone was normalized
    hits = cache.hits
    assert await listed() == ["text 0", "text 1", "text 2", "text 3"]
    assert cache.hits == hits + 4  # trusted again: served without a read


async def test_the_budget_counts_each_value_with_its_bookkeeping(
        make_config: Callable[..., Config], aiohttp_client: Any, data_dir: Path) -> None:
    """`line_cache_mb` bounds what the cache takes: a value counts its bytes and its bookkeeping
    (dict node, key, Held), so many small lines cannot hold several times the budget."""
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(f"m{i}", "jan_1", f"t{i}") for i in range(3)])
    client = await aiohttp_client(create_app(make_config(line_cache_mb=1)))
    cache = client.app[CATALOG].lines
    served = 0
    for i in range(3):
        resp = await client.get(f"/v1/threads/jan_1/messages/m{i}")
        served += len(await resp.read())
    assert cache.size == served + 3 * ENTRY_OVERHEAD
    metrics = await (await client.get("/metrics")).text()
    assert f"threadline_line_cache_bytes {float(cache.size)}" in metrics
