"""Reads on the event loop never wait for the disk: bytes the page cache dropped are read by a
reader thread, then served from memory (store/resident.py). Pages are dropped for real, with
POSIX_FADV_DONTNEED on the file (clean pages of an ext4 file leave the cache at once)."""

from __future__ import annotations

import ctypes
import mmap
import os
import re
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.index.reader import Stale, stored_line
from service.keys import CATALOG, REPO
from service.store import resident

from .jan import jan_message, jan_thread, write_thread
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


async def disk_waits(server: TestServer) -> float:
    async with aiohttp.ClientSession() as session, session.get(server.make_url("/metrics")) as resp:
        text = await resp.text()
    m = re.search(r"^threadline_read_disk_waits_total (\S+)$", text, re.M)
    assert m, "the metric is exported"
    return float(m.group(1))


async def test_a_get_and_a_page_whose_bytes_left_memory_are_served(
        server: TestServer, sdk: openai.AsyncOpenAI, data_dir: Path) -> None:
    thread = await sdk.beta.threads.create()
    made = [await sdk.beta.threads.messages.create(thread.id, role="user", content=f"m{i} " * 50)
            for i in range(40)]
    path = data_dir / "threads" / thread.id / "messages.jsonl"
    before = await disk_waits(server)

    drop_cached(path)
    got = await sdk.beta.threads.messages.retrieve(made[7].id, thread_id=thread.id)
    assert got.id == made[7].id and got.content[0].text.value == "m7 " * 50  # type: ignore[union-attr]
    assert await disk_waits(server) == before + 1
    # Now in memory: no more waits for the same bytes.
    await sdk.beta.threads.messages.retrieve(made[7].id, thread_id=thread.id)
    assert await disk_waits(server) == before + 1

    drop_cached(path)
    page = await sdk.beta.threads.messages.list(thread.id, order="asc", after=made[9].id, limit=20)
    assert [m.id for m in page.data] == [m.id for m in made[10:30]]
    assert await disk_waits(server) == before + 2


async def test_jan_lines_that_left_memory_are_normalized_as_usual(
        client: TestClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(f"m{i}", "jan_1", f"text {i}") for i in range(30)])
    path = data_dir / "threads" / "jan_1" / "messages.jsonl"
    catalog = client.app[CATALOG]
    await wait_for(lambda: (e := catalog.get("jan_1")) is not None and len(e.messages) == 30,
                   what="the thread indexed")
    drop_cached(path)
    resp = await client.get("/v1/threads/jan_1/messages?order=asc&limit=5")
    assert resp.status == 200
    body = await resp.json()
    assert [m["content"][0]["text"]["value"] for m in body["data"]] == [
        f"text {i}" for i in range(5)]
    assert client.app[REPO].reader.waits == 1


async def test_under_only_resident_a_dropped_read_raises_and_a_plain_one_waits(
        tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 65536 + b"tail")
    fd = os.open(path, os.O_RDONLY)
    try:
        drop_cached(path)
        assert resident.pread(fd, 4, 65536) == b"tail"  # not under only_resident: waits
        drop_cached(path)
        reader = resident.Reader(threads=2)
        try:
            calls: list[bool] = []

            def read() -> bytes:
                calls.append(True)
                return resident.pread(fd, 4, 65536)
            assert await reader.call(read) == b"tail"
            assert reader.waits == 1 and len(calls) == 2  # raised once, then from memory
        finally:
            reader.close()
    finally:
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
    waits = reader.waits
    with pytest.raises(Stale):  # the file ends sooner: told at once, not after a wait
        await reader.call(stored_line, catalog, entry, 2)
    assert reader.waits == waits
