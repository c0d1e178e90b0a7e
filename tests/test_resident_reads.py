"""Reads on the event loop never wait for the disk: bytes the page cache dropped are read by a
reader thread, then served from memory (store/resident.py). Pages are dropped for real, with
POSIX_FADV_DONTNEED on the file (clean pages of an ext4 file leave the cache at once).

A dropped page is not always a miss: the RWF_NOWAIT read starts the disk read, and a fast disk
(a VM's, served from the host's cache) can finish it before the call returns. So each check that
needs a miss drops and reads again until one happens (`until_loaded`: ~70% of reads miss here),
and asserts what every attempt must give (the right answer, no read on the loop) on all of them."""

from __future__ import annotations

import ctypes
import mmap
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.index.messages import UNKNOWN
from service.index.reader import Stale, check_current, stored_line
from service.keys import CATALOG, REPO
from service.store import resident

from .jan import jan_message, jan_thread, write_thread
from .sse import SseReader
from .watchkit import wait_for


def resident_pages(path: Path) -> list[bool]:
    """Which of the file's pages the page cache holds, by mincore(2), which never reads (a
    probe by a read would start the very disk read that brings the page back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vec = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as m:
        first = ctypes.c_char.from_buffer(m)  # a private mapping: writable, never written
        try:
            if libc.mincore(ctypes.c_void_p(ctypes.addressof(first)), ctypes.c_size_t(size),
                            vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del first
    return [bool(v & 1) for v in vec]


def drop_cached(path: Path) -> None:
    """Drop the file's pages from the page cache, or skip where the file system keeps them."""
    if resident._NOWAIT is None:
        pytest.skip("no RWF_NOWAIT here: every read may wait, as before")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if any(resident_pages(path)):
        pytest.skip(f"the file system under {path} keeps its pages (tmpfs?): nothing to drop")


async def proven(app: Any) -> None:
    """Wait till the background prover (index/prover.py) has read every thread: its reads
    go through the same reader and would count as loads, and bring dropped pages back."""
    catalog = app[CATALOG]
    await wait_for(lambda: all(e.messages.canon.count(UNKNOWN) == 0
                               for e in catalog.threads.values()), what="lines decided")


async def metric(server: TestServer, name: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/metrics")) as resp:
        text = await resp.text()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} is exported"
    return float(m.group(1))


async def until_loaded(path: Path, read: Callable[[], Awaitable[None]],
                       loads: Callable[[], Awaitable[float]], tries: int = 50) -> float:
    """Drop the file's pages and `read()` until a read had to load (see the module's doc):
    the loads that read took. Every try's `read()` checks its answer. If the disk answered
    every try within the non-blocking call (seen under heavy load), there is no miss to
    observe: the test says so as a skip, not a pass."""
    for _ in range(tries):
        before = await loads()
        drop_cached(path)
        await read()
        if (taken := await loads() - before) > 0:
            return taken
    pytest.skip(f"{tries} reads of dropped pages were all answered within the RWF_NOWAIT call "
                "(a disk that fast leaves no miss to observe)")


async def test_a_get_and_a_page_whose_bytes_left_memory_are_served(
        server: TestServer, sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    thread = await sdk.beta.threads.create()
    made = [await sdk.beta.threads.messages.create(thread.id, role="user", content=f"m{i} " * 50)
            for i in range(40)]
    path = data_dir / "threads" / thread.id / "messages.jsonl"

    async def loads() -> float:
        return await metric(server, "threadline_read_disk_waits_total")

    async def get() -> None:
        got = await sdk.beta.threads.messages.retrieve(made[7].id, thread_id=thread.id)
        assert got.id == made[7].id
        assert got.content[0].text.value == "m7 " * 50  # type: ignore[union-attr]

    async def page() -> None:
        page = await sdk.beta.threads.messages.list(thread.id, order="asc", after=made[9].id,
                                                    limit=20)
        assert [m.id for m in page.data] == [m.id for m in made[10:30]]

    assert await until_loaded(path, get, loads) == 1
    # Now in memory: no more loads for the same bytes.
    before = await loads()
    await get()
    assert await loads() == before
    assert await until_loaded(path, page, loads) == 1  # the page's range, in one load
    assert await metric(server, "threadline_read_loop_waits_total") == 0


async def test_jan_lines_that_left_memory_are_normalized_as_usual(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(f"m{i}", "jan_1", f"text {i}") for i in range(30)])
    # Indexed at start-up, nothing reads it after; no line cache: every try reads the file.
    client = await open_client(watch=False, line_cache_mb=0)
    await proven(client.app)
    reader = client.app[REPO].reader

    async def page() -> None:
        resp = await client.get("/v1/threads/jan_1/messages?order=asc&limit=5")
        assert resp.status == 200
        body = await resp.json()
        assert [m["content"][0]["text"]["value"] for m in body["data"]] == [
            f"text {i}" for i in range(5)]

    async def loads() -> float:
        return reader.loads
    assert await until_loaded(data_dir / "threads" / "jan_1" / "messages.jsonl", page,
                              loads) == 1
    assert reader.fallbacks == 0


async def test_under_only_resident_a_dropped_read_raises_and_a_plain_one_waits(
        tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 65536 + b"tail")
    fd = os.open(path, os.O_RDONLY)
    reader = resident.Reader(threads=2)
    try:
        drop_cached(path)
        assert resident.pread(fd, 4, 65536) == b"tail"  # not under Reader.call: may wait
        calls: list[bool] = []

        def read() -> bytes:
            calls.append(True)
            return resident.pread(fd, 4, 65536)

        async def call() -> None:
            calls.clear()
            assert await reader.call(read) == b"tail"

        async def loads() -> float:
            return reader.loads
        assert await until_loaded(path, call, loads) == 1
        assert len(calls) == 2 and reader.fallbacks == 0  # raised once, then from memory
    finally:
        reader.close()
        os.close(fd)


async def test_a_read_past_the_end_ends_as_stale_not_in_a_loop(
        client: TestClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(f"m{i}", "jan_1", f"text {i}") for i in range(3)])
    await wait_for(lambda: (e := client.app[CATALOG].get("jan_1")) is not None
                   and len(e.messages) == 3, what="the thread indexed")
    resp = await client.get("/v1/threads/jan_1/messages/m2")
    assert resp.status == 200
    catalog = client.app[CATALOG]
    entry = catalog.get("jan_1")
    assert entry is not None
    path = data_dir / "threads" / "jan_1" / "messages.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "r+b") as f:  # cut in place: the index still has the last line
        f.truncate(len(lines[0]) + len(lines[1]))
    reader = client.app[REPO].reader
    loads = reader.loads
    with pytest.raises(Stale):  # the file ends sooner: told at once, not after a wait
        await reader.call(stored_line, catalog, entry, 2)
    assert reader.loads == loads


async def test_scattered_lines_that_left_memory_are_loaded_together(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    """A run_id filter over a long thread reads its lines one by one: every line it missed is
    loaded in one go, and none is read on the loop (the first version loaded three, one after
    another, then read the rest on the loop)."""
    msgs = []
    for i in range(2000):
        m = jan_message(f"m{i:04d}", "jan_1", f"text {i} " + "x" * 1100)
        m["run_id"] = "run_x" if i % 100 == 0 else None
        msgs.append(m)
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), msgs)
    path = data_dir / "threads" / "jan_1" / "messages.jsonl"
    url = "/v1/threads/jan_1/messages?run_id=run_x&order=asc&limit=20"
    expected = [f"m{i:04d}" for i in range(0, 2000, 100)]

    # With the line cache, a line missed on the first run is normalized once, on the second.
    cached = await open_client(watch=False)
    await proven(cached.app)
    drop_cached(path)
    resp = await cached.get(url)
    assert [m["id"] for m in (await resp.json())["data"]] == expected
    assert cached.app[CATALOG].lines.misses == 20

    client = await open_client(watch=False, line_cache_mb=0)  # every page read reads them all
    await proven(client.app)
    reader = client.app[REPO].reader

    async def page() -> None:
        resp = await client.get(url)
        assert resp.status == 200
        assert [m["id"] for m in (await resp.json())["data"]] == expected
        assert reader.fallbacks == 0

    async def loads() -> float:
        return reader.loads
    for _ in range(10):  # most of the 20 lines miss: more than three loads, none on the loop
        if (taken := await until_loaded(path, page, loads)) > 3:
            break
    assert 3 < taken <= 20


async def test_a_read_that_waited_does_not_go_on_with_a_replaced_entry(
        client: TestClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [jan_message("m1", "jan_1", "one")])
    catalog = client.app[CATALOG]
    await wait_for(lambda: catalog.get("jan_1") is not None, what="the thread indexed")
    old = catalog.get("jan_1")
    assert old is not None
    index = old.messages
    check_current(catalog, old, index)  # current: no complaint
    resp = await client.delete("/v1/threads/jan_1")
    assert resp.status == 200
    write_thread(data_dir, "jan_1", jan_thread("jan_1"), [jan_message("m2", "jan_1", "two")])
    await wait_for(lambda: (e := catalog.get("jan_1")) is not None and e is not old,
                   what="the new thread indexed")
    with pytest.raises(Stale):
        check_current(catalog, old, index)
    resp = await client.get("/v1/threads/jan_1/messages/m2")
    assert resp.status == 200


async def test_a_replay_whose_lines_left_memory_sends_every_message(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(f"m{i:03d}", "jan_1", f"text {i} " + "x" * 1000)
                  for i in range(300)])
    server = await start_server(watch=False, line_cache_mb=0)  # every try reads the file
    await proven(server.app)
    reader = server.app[REPO].reader

    async def replay() -> None:
        got = []
        async with aiohttp.ClientSession() as s, s.get(
                server.make_url("/v1/threads/jan_1/events?after=m000")) as resp:
            assert resp.status == 200
            events = SseReader(resp)
            while len(got) < 299:
                ev = await events.next()
                got.append(ev.json["content"][0]["text"]["value"].split()[1])
        assert got == [str(i) for i in range(1, 300)]
        assert reader.fallbacks == 0

    async def loads() -> float:
        return reader.loads
    assert await until_loaded(data_dir / "threads" / "jan_1" / "messages.jsonl", replay,
                              loads) >= 1


async def test_after_a_miss_the_read_runs_again_and_gives_up_waiting_only_when_bytes_keep_going(
        tmp_path: Path) -> None:
    """`Reader.after_miss` alone, with misses that do not depend on the disk's speed: a read
    function that reports its bytes missing as `resident.pread` does (the ranges it needs)."""
    path = tmp_path / "f"
    path.write_bytes(b"a" * 300_000)
    fd = os.open(path, os.O_RDONLY)
    reader = resident.Reader(threads=2)
    try:
        near = [(fd, 100, 1000 * i) for i in range(50)]  # 50 lines, 1 KB apart: one read
        far = (fd, 100, 250_000)
        runs: list[int] = []

        def read(misses: int, ranges: list[tuple[int, int, int]]) -> str:
            runs.append(1)
            if len(runs) <= misses and resident._only_resident.get():  # as resident.pread
                raise resident.NotResident(ranges)
            return "read"
        miss = resident.NotResident([*near, far])
        assert await reader.after_miss(miss, read, 0, [*near, far]) == "read"
        assert (reader.loads, reader.fallbacks, len(runs)) == (2, 0, 1)  # merged: 2 reads

        checked: list[int] = []
        runs.clear()
        assert await reader.after_miss(miss, read, 1, [far], again=lambda: checked.append(1)) \
            == "read"
        assert (len(runs), len(checked), reader.fallbacks) == (2, 2, 0)  # checked after each

        runs.clear()  # the same bytes missing after every load: read on the loop at last
        assert await reader.after_miss(resident.NotResident([far]), read, 3, [far]) == "read"
        assert (reader.fallbacks, len(runs)) == (1, 3)  # 2 tries from memory, then the wait

        def gone() -> None:
            raise Stale("t")
        with pytest.raises(Stale):  # what the read names was replaced during the wait
            await reader.after_miss(resident.NotResident([far]), read, 0, [far], again=gone)
    finally:
        reader.close()
        os.close(fd)
