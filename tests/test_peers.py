"""Read-your-writes across the workers of one server (`workers = N`): a write one worker
acknowledged is seen by the next request to any other, before its watcher reports the change
(see service/index/peers.py).

The two apps here share one table of stamps, as forked workers do, and run without watchers, so
nothing but the stamps can bring one the other's writes; the last tests run real `--workers`
processes, as SDK clients meet them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.config import Config
from service.index.peers import Stamps
from service.keys import REPO

from .jan import jan_thread, write_thread
from .procs import ServerProcess


@pytest.fixture
def start_worker(aiohttp_server: Any, make_config: Callable[..., Config]) -> Callable[..., Any]:
    """Start a worker of one server: an app over the data folder sharing the test's stamps."""
    stamps = Stamps()

    async def start() -> TestServer:
        return await aiohttp_server(create_app(make_config(watch=False), stamps))  # type: ignore[no-any-return]
    return start


async def _pair(start_worker: Callable[..., Any]) -> tuple[str, str]:
    a: TestServer = await start_worker()
    b: TestServer = await start_worker()
    return str(a.make_url("/v1")), str(b.make_url("/v1"))


async def test_each_write_is_seen_by_the_other_process_at_once(
        start_worker: Callable[..., Any]) -> None:
    url_a, url_b = await _pair(start_worker)
    async with aiohttp.ClientSession() as http:
        async def call(url: str, method: str, path: str, body: Any = None) -> Any:
            async with http.request(method, url + path, json=body) as resp:
                return resp.status, await resp.json()

        status, thread = await call(url_a, "POST", "/threads", {"metadata": {"v": "0"}})
        tid = thread["id"]
        listed = (await call(url_b, "GET", "/threads"))[1]
        assert [t["id"] for t in listed["data"]] == [tid]
        assert (await call(url_b, "GET", f"/threads/{tid}"))[1]["metadata"] == {"v": "0"}

        mids = []
        for i in range(20):
            writer, reader = (url_a, url_b) if i % 2 else (url_b, url_a)
            _, msg = await call(writer, "POST", f"/threads/{tid}/messages",
                                {"role": "user", "content": f"m{i}"})
            mids.append(msg["id"])
            status, got = await call(reader, "GET", f"/threads/{tid}/messages/{msg['id']}")
            assert status == 200 and got == msg
            page = (await call(reader, "GET", f"/threads/{tid}/messages?order=asc&limit=100"))[1]
            assert [m["id"] for m in page["data"]] == mids

        for i in range(5):  # modify through one, read through the other, back and forth
            writer, reader = (url_a, url_b) if i % 2 else (url_b, url_a)
            await call(writer, "POST", f"/threads/{tid}/messages/{mids[0]}",
                       {"metadata": {"v": str(i)}})
            assert (await call(reader, "GET", f"/threads/{tid}/messages/{mids[0]}"))[1][
                "metadata"] == {"v": str(i)}
            await call(writer, "POST", f"/threads/{tid}", {"metadata": {"v": str(i)}})
            assert (await call(reader, "GET", f"/threads/{tid}"))[1]["metadata"] == {"v": str(i)}
            assert (await call(reader, "GET", "/threads"))[1]["data"][0]["metadata"] == {
                "v": str(i)}

        await call(url_a, "DELETE", f"/threads/{tid}/messages/{mids[1]}")
        assert (await call(url_b, "GET", f"/threads/{tid}/messages/{mids[1]}"))[0] == 404
        await call(url_b, "DELETE", f"/threads/{tid}")
        assert (await call(url_a, "GET", f"/threads/{tid}"))[0] == 404
        assert (await call(url_a, "GET", "/threads"))[1]["data"] == []


async def test_a_message_another_worker_deleted_is_still_a_cursor(
        start_worker: Callable[..., Any]) -> None:
    """The SDK's delete-while-iterating loop over workers: the next page is asked of a worker
    that never held the deleted message; it still knows where it stood (store/deleted.py)."""
    url_a, url_b = await _pair(start_worker)
    async with aiohttp.ClientSession() as http:
        async with http.post(url_a + "/threads", json={"messages": [
                {"role": "user", "content": str(i)} for i in range(5)]}) as resp:
            tid = (await resp.json())["id"]
        async with http.get(f"{url_a}/threads/{tid}/messages?order=asc&limit=2") as resp:
            page = await resp.json()
        async with http.delete(f"{url_a}/threads/{tid}/messages/{page['last_id']}") as resp:
            assert resp.status == 200
        async with http.get(f"{url_b}/threads/{tid}/messages?order=asc&limit=2"
                            f"&after={page['last_id']}") as resp:
            assert resp.status == 200, await resp.text()
            assert [m["content"][0]["text"]["value"] for m in (await resp.json())["data"]] == [
                "2", "3"]


async def test_reads_racing_a_catch_up_all_wait_for_it(start_worker: Callable[..., Any]) -> None:
    """Requests that reach a process together after another's write all see it (the first
    starts the catch-up; the others must not read the index before it is done)."""
    url_a, url_b = await _pair(start_worker)
    async with aiohttp.ClientSession() as http:
        async with http.post(url_a + "/threads", json={
                "messages": [{"role": "user", "content": "x"}]}) as resp:
            tid = (await resp.json())["id"]
        async with http.get(f"{url_b}/threads/{tid}/messages") as resp:
            mid = (await resp.json())["data"][0]["id"]
        for round_ in range(5):
            async with http.post(f"{url_a}/threads/{tid}/messages/{mid}",
                                 json={"metadata": {"round": str(round_)}}) as resp:
                assert resp.status == 200

            async def get() -> Any:
                async with http.get(f"{url_b}/threads/{tid}/messages/{mid}") as resp:
                    return (await resp.json())["metadata"]
            assert await asyncio.gather(*(get() for _ in range(8))) == [
                {"round": str(round_)}] * 8


async def test_a_process_does_not_catch_up_with_its_own_writes(
        start_worker: Callable[..., Any]) -> None:
    """Its own writes are indexed when they are marked: reads after them need no catch-up (two
    stats and a sync each, otherwise), and another process's writes still get one."""
    a: TestServer = await start_worker()
    b: TestServer = await start_worker()
    peers_a = a.app[REPO].peers
    async with aiohttp.ClientSession() as http:
        url = str(a.make_url("/v1"))
        async with http.post(url + "/threads", json={}) as resp:
            tid = (await resp.json())["id"]
        for i in range(10):
            async with http.post(f"{url}/threads/{tid}/messages",
                                 json={"role": "user", "content": str(i)}) as resp:
                mid = (await resp.json())["id"]
            async with http.post(f"{url}/threads/{tid}/messages/{mid}",
                                 json={"metadata": {"i": str(i)}}) as resp:
                assert resp.status == 200
            async with http.post(f"{url}/threads/{tid}", json={"metadata": {"i": str(i)}}):
                pass
            for path in (f"/threads/{tid}/messages/{mid}", f"/threads/{tid}/messages",
                         f"/threads/{tid}", "/threads"):
                async with http.get(url + path) as resp:
                    assert resp.status == 200
        assert peers_a.catch_ups == 0
        async with http.post(str(b.make_url("/v1")) + f"/threads/{tid}/messages",
                             json={"role": "user", "content": "from b"}) as resp:
            assert resp.status == 200
        async with http.get(f"{url}/threads/{tid}/messages?limit=1") as resp:
            assert (await resp.json())["data"][0]["content"][0]["text"]["value"] == "from b"
        assert peers_a.catch_ups == 1 and peers_a.syncs == 1
        async with http.get(str(a.make_url("/metrics"))) as resp:
            scraped = await resp.text()
        assert "threadline_peer_catch_ups_total 1.0" in scraped
        assert "threadline_peer_syncs_total 1.0" in scraped


async def test_a_list_of_threads_looks_only_at_what_moved(
        start_worker: Callable[..., Any], data_dir: Path) -> None:
    """After another worker changes a thread, a list of threads syncs that thread and stats the
    few threads of its bucket, not every thread there is (which took ~25 ms a 1,000 threads)."""
    for i in range(300):
        write_thread(data_dir, f"jan_{i:03}", jan_thread(f"jan_{i:03}"), [])
    a: TestServer = await start_worker()
    b: TestServer = await start_worker()
    indexer_b = b.app[REPO].indexer
    looked: list[str] = []
    is_current = indexer_b.is_current

    def counting(thread_id: str) -> bool:
        looked.append(thread_id)
        return is_current(thread_id)
    indexer_b.is_current = counting
    async with aiohttp.ClientSession() as http:
        url_a, url_b = str(a.make_url("/v1")), str(b.make_url("/v1"))
        async with http.get(url_b + "/threads?limit=100") as resp:
            assert len((await resp.json())["data"]) == 100
        async with http.post(url_a + "/threads/jan_123", json={"metadata": {"k": "v"}}) as resp:
            assert resp.status == 200
        async with http.post(url_a + "/threads", json={"metadata": {"new": "1"}}) as resp:
            new = (await resp.json())["id"]
        looked.clear()
        async with http.get(url_b + "/threads?limit=100") as resp:
            listed = {t["id"]: t for t in (await resp.json())["data"]}
        assert listed[new]["metadata"] == {"new": "1"}
        async with http.get(url_b + "/threads/jan_123") as resp:
            assert (await resp.json())["metadata"] == {"k": "v"}
        assert "jan_123" in looked and len(looked) < 20, looked


def test_a_single_server_has_no_table(make_config: Callable[..., Config]) -> None:
    """One process needs no catching up: no table, no check before reads."""
    assert create_app(make_config())[REPO].peers is None


async def test_sdk_clients_of_two_workers_read_their_own_writes(tmp_path: Path) -> None:
    """The SDK, one call after another, over fresh connections the kernel spreads over two
    worker processes: every answer shows every write acknowledged before it was asked."""
    server = ServerProcess(tmp_path / "data", tmp_path / "work", "--workers", "2")
    await server.start()
    try:
        # The HTTP library the SDK is built on (httpx, or its successor httpx2).
        httpx = sys.modules[openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0]]
        client = openai.AsyncOpenAI(  # a fresh connection per call: the kernel picks a worker
            base_url=server.url + "/v1", api_key="x", max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                limits=httpx.Limits(max_keepalive_connections=0)))
        async with client:
            thread = await client.beta.threads.create(
                messages=[{"role": "user", "content": "a"}])
            first = (await client.beta.threads.messages.list(thread.id)).data[0]
            stale = 0
            for i in range(60):
                await client.beta.threads.messages.update(
                    first.id, thread_id=thread.id, metadata={"v": str(i)})
                got = await client.beta.threads.messages.retrieve(first.id, thread_id=thread.id)
                stale += got.metadata != {"v": str(i)}
                made = await client.beta.threads.messages.create(
                    thread.id, role="user", content=str(i))
                newest = (await client.beta.threads.messages.list(thread.id, limit=1)).data
                stale += newest[0].id != made.id
                await client.beta.threads.update(thread.id, metadata={"v": str(i)})
                stale += (await client.beta.threads.retrieve(thread.id)).metadata != {"v": str(i)}
            assert stale == 0
    finally:
        server.stop()
