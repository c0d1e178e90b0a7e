"""A damaged file that repeats a message id: the id names its last line, everywhere. Earlier
copies are not listed (pagination by that id can neither loop nor skip), a get serves the last
copy, a modify changes only it, and a delete removes every copy (an older one must not come back
as the message)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.index.paging import Visible, page
from service.index.sync import Indexer
from tests.envelope import expect_error, no_message
from tests.jan import jan_message, jan_thread, write_thread
from tests.test_pagination import check_every_cursor
from tests.test_sse import stream

OpenClient = Callable[..., Awaitable[TestClient]]
T = "jan_dup"


def msg(mid: str, text: str, run_id: str | None = None) -> dict[str, Any]:
    m = jan_message(mid, T, text)
    if run_id is not None:
        m["run_id"] = run_id
    return m


def lines(folder: Path) -> list[bytes]:
    return (folder / "messages.jsonl").read_bytes().splitlines()


async def listed(client: TestClient, **params: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/threads/{T}/messages", params={"order": "asc", "limit": "100",
                                                                  **params})
    assert resp.status == 200, await resp.text()
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


def text(m: dict[str, Any]) -> str:
    value: str = m["content"][0]["text"]["value"]
    return value


@pytest.mark.parametrize("holes", [[], [0], [3], [1, 2], [0, 1, 5, 9], [9]])
def test_visible_positions_are_a_range_without_the_holes(holes: list[int]) -> None:
    seq = Visible.of(10, holes)
    want = [p for p in range(10) if p not in holes]
    assert list(seq) == want and len(seq) == len(want)
    assert seq[1:4] == want[1:4] and seq[-1] == want[-1]
    for order in ("asc", "desc"):
        for cursor in range(10):
            assert page(seq, 3, order, cursor, None) == page(want, 3, order, cursor, None)  # type: ignore[arg-type]
            assert page(seq, 3, order, None, cursor) == page(want, 3, order, None, cursor)  # type: ignore[arg-type]


def test_visible_positions_with_long_runs_of_holes() -> None:
    # A file whose whole content appears twice: the first half is all holes.
    rng = random.Random(7)
    for holes in (list(range(1000)), sorted(rng.sample(range(2000), 1500)), [1999]):
        seq = Visible.of(2000, holes)
        gone = set(holes)
        assert list(seq) == [p for p in range(2000) if p not in gone]


async def test_a_repeated_id_is_listed_once_at_its_last_line(open_client: OpenClient,
                                                             data_dir: Path) -> None:
    write_thread(data_dir, T, jan_thread(T), [msg("a", "A"), msg("x", "x-first"), msg("b", "B"),
                                              msg("x", "x-second"), msg("c", "C")])
    client = await open_client()
    assert [(m["id"], text(m)) for m in await listed(client)] == [
        ("a", "A"), ("b", "B"), ("x", "x-second"), ("c", "C")]
    resp = await client.get(f"/v1/threads/{T}/messages/x")
    assert text(await resp.json()) == "x-second"
    # Every page, cursor, limit and order agrees with a plain model of the four messages.
    await check_every_cursor(client, f"/v1/threads/{T}/messages", ["a", "b", "x", "c"],
                             limits=(1, 2, 3))


async def test_sdk_pagination_over_a_repeated_id_ends(server: TestServer, data_dir: Path,
                                                      sdk: openai.AsyncOpenAI) -> None:
    write_thread(data_dir, T, jan_thread(T), [msg("a", "A"), msg("x", "x-first"), msg("b", "B"),
                                              msg("x", "x-second"), msg("c", "C")])
    for order, want in (("desc", ["c", "x", "b", "a"]), ("asc", ["a", "b", "x", "c"])):
        got = []
        async for m in sdk.beta.threads.messages.list(T, limit=1, order=order):  # type: ignore[arg-type]
            got.append(m.id)
            assert len(got) <= 4, got  # it used to loop for ever newest first
        assert got == want


async def test_a_modify_changes_the_last_copy_only(open_client: OpenClient, data_dir: Path
                                                   ) -> None:
    folder = write_thread(data_dir, T, jan_thread(T), [msg("x", "x-first"), msg("b", "B"),
                                                       msg("x", "x-second")])
    before = lines(folder)
    client = await open_client()
    resp = await client.post(f"/v1/threads/{T}/messages/x", json={"metadata": {"k": "v"}})
    assert resp.status == 200
    body = await resp.json()
    assert (text(body), body["metadata"]) == ("x-second", {"k": "v"})
    after = lines(folder)
    assert after[:2] == before[:2]  # the older copy is untouched, byte for byte
    assert json.loads(after[2])["metadata"] == {"k": "v"}


async def test_a_delete_removes_every_copy(open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, T, jan_thread(T), [msg("x", "x-first"), msg("b", "B"),
                                                       msg("x", "x-second")])
    client = await open_client()
    assert (await client.delete(f"/v1/threads/{T}/messages/x")).status == 200
    assert [json.loads(raw)["id"] for raw in lines(folder)] == ["b"]
    await expect_error(await client.get(f"/v1/threads/{T}/messages/x"), 404, no_message("x"))
    assert [m["id"] for m in await listed(client)] == ["b"]


async def test_a_run_filter_lists_a_repeated_id_once(open_client: OpenClient, data_dir: Path
                                                     ) -> None:
    write_thread(data_dir, T, jan_thread(T), [msg("x", "x-first", "run_1"), msg("b", "B", "run_1"),
                                              msg("x", "x-second", "run_1")])
    client = await open_client()
    assert [(m["id"], text(m)) for m in await listed(client, run_id="run_1")] == [
        ("b", "B"), ("x", "x-second")]


async def test_a_copy_appended_by_another_program_hides_the_older_one(
        open_client: OpenClient, data_dir: Path) -> None:
    # Long enough that its id table is built ahead of need, then appended to while it exists.
    many = [msg(f"m{i}", f"t{i}") for i in range(5000)]
    folder = write_thread(data_dir, T, jan_thread(T), many)
    client = await open_client()
    assert len(await listed(client, limit="100")) == 100
    with open(folder / "messages.jsonl", "ab") as f:
        f.write(json.dumps(msg("m10", "again")).encode() + b"\n")
    for _ in range(200):
        data = await listed(client, order="desc", limit="1")
        if data[0]["id"] == "m10":
            break
        await asyncio.sleep(0.02)
    assert text(data[0]) == "again"
    page_ = await listed(client, after="m9", limit="2")
    assert [m["id"] for m in page_] == ["m11", "m12"]  # the older m10 is not listed


# --- events -------------------------------------------------------------------------------------


async def test_after_replays_a_repeated_id_once(start_server: Callable[..., Any],
                                                data_dir: Path) -> None:
    write_thread(data_dir, T, jan_thread(T), [msg("a", "A"), msg("x", "x-first"), msg("b", "B"),
                                              msg("x", "x-second"), msg("c", "C")])
    server = await start_server()
    async with stream(server, f"/v1/threads/{T}/events?after=a") as events:
        got = await events.take(3)
        assert await events.nothing_for(0.2)
    assert [(e.json["id"], text(e.json)) for e in got] == [("b", "B"), ("x", "x-second"),
                                                           ("c", "C")]


async def test_a_line_repeating_an_id_is_an_update_and_a_delete_of_it_one_event(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """Another program appends a second copy of a message (the same id, new text): the message
    changed, so an update (a creation would carry the first copy's event id again, behind
    later ones). A rewrite of the file then says nothing about it; deleting it says it once."""
    folder = write_thread(data_dir, T, jan_thread(T), [msg("x", "one"), msg("b", "B")])
    server = await start_server()
    async with stream(server, f"/v1/threads/{T}/events") as events:
        with open(folder / "messages.jsonl", "ab") as f:
            f.write(json.dumps(msg("x", "one-again")).encode() + b"\n")
        got = await events.next()
        assert (got.event, got.json["id"], text(got.json)) == (
            "thread.message.updated", "x", "one-again")
        async with aiohttp.ClientSession() as s:
            async with s.post(server.make_url(f"/v1/threads/{T}/messages/b"),
                              json={"metadata": {"k": "v"}}) as resp:
                assert resp.status == 200
            got = await events.next()
            assert (got.event, got.json["id"]) == ("thread.message.updated", "b")
            async with s.delete(server.make_url(f"/v1/threads/{T}/messages/x")) as resp:
                assert resp.status == 200
        got = await events.next()
        assert (got.event, got.json["id"]) == ("thread.message.deleted", "x")
        assert await events.nothing_for(0.3)


async def test_a_directory_named_thread_json_makes_a_modify_a_409(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, T, None, [msg("a", "A")])
    (folder / "thread.json").mkdir()
    client = await open_client()
    assert (await client.get(f"/v1/threads/{T}")).status == 200
    resp = await client.post(f"/v1/threads/{T}", json={"metadata": {"k": "v"}})
    error = await expect_error(resp, 409)
    assert error["message"] == (f"Thread '{T}' cannot be written: its thread.json is not a "
                                "regular file.")
    assert resp.headers["x-should-retry"] == "false"  # the SDKs would retry a 409 otherwise
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # none left


async def test_a_repeated_id_appended_before_a_large_threads_table_exists_is_an_update(
        start_server: Callable[..., Any], data_dir: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """Just after start-up a large thread's id table may not be built yet (the worker builds
    them largest first): a line repeating an id is found by a search of the older ids."""
    async def not_yet(self: Any) -> None:
        await asyncio.sleep(3600)
    monkeypatch.setattr(Indexer, "_build_tables", not_yet)
    folder = write_thread(data_dir, T, jan_thread(T), [msg(f"m{i}", f"t{i}") for i in range(5000)])
    server = await start_server()
    async with stream(server, f"/v1/threads/{T}/events") as events:
        with open(folder / "messages.jsonl", "ab") as f:
            f.write(json.dumps(msg("m4990", "again")).encode() + b"\n"
                    + json.dumps(msg("m_new", "new")).encode() + b"\n")
        got = [await events.next() for _ in range(2)]
    assert [(e.event, e.json["id"]) for e in got] == [
        ("thread.message.updated", "m4990"), ("thread.message.created", "m_new")]
