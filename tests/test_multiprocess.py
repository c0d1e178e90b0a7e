"""N Threadline processes on one folder, plus an external writer taking the same lock.

Two real server processes serve the same data dir while an external appender (a separate program
that takes the thread's flock, see tests/appender.py) writes too, all into one thread at once, and
the second server modifies and deletes (rewrites the file) meanwhile. The file must hold every
acknowledged and appended line exactly once, whole, each writer's lines in its order, every edit
applied; and each server must serve every message, including those the other processes wrote or
edited, within the live-watch latency (the watcher, not a restart or a write of its own, brings
them in).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.procs import (
    APPENDER,
    JSON,
    ServerProcess,
    all_messages,
    parse_line,
    read_lines,
    wait_for,
)

CLIENTS_PER_SERVER = 16
CREATES_PER_CLIENT = 8
EXTERNAL_LINES = 150
VISIBLE_WITHIN = 10.0  # generous for a loaded 2-core CI machine; typically tens of ms


async def create_many(http: aiohttp.ClientSession, base: str, thread_id: str, name: str
                      ) -> list[str]:
    """Sequential creates of one client; returns the acknowledged ids in order."""
    ids = []
    for i in range(CREATES_PER_CLIENT):
        async with http.post(f"{base}/v1/threads/{thread_id}/messages",
                             json={"role": "user", "content": f"{name} #{i}"}) as resp:
            assert resp.status == 200, await resp.text()
            ids.append((await resp.json())["id"])
    return ids


async def edit(http: aiohttp.ClientSession, base: str, thread_id: str, message_id: str,
               modify: bool) -> None:
    url = f"{base}/v1/threads/{thread_id}/messages/{message_id}"
    async with (http.post(url, json={"metadata": {"edited": "yes"}}) if modify
                else http.delete(url)) as resp:
        assert resp.status == 200, await resp.text()


async def test_two_servers_and_an_external_appender_share_one_thread(
        tmp_path: Path, record_property: Any) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "threads").mkdir(parents=True)
    servers = [ServerProcess(data_dir, tmp_path / f"proc{i}") for i in range(2)]
    try:
        await asyncio.gather(*(s.start() for s in servers))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         headers=JSON) as http:
            async with http.post(servers[0].url + "/v1/threads", json={}) as resp:
                thread_id = (await resp.json())["id"]

            async def known_to_second() -> bool:
                async with http.get(f"{servers[1].url}/v1/threads/{thread_id}") as resp:
                    return resp.status == 200
            await wait_for(known_to_second, VISIBLE_WITHIN, "the second server to see the thread")

            seeded = await create_many(http, servers[0].url, thread_id, "seed")
            folder = data_dir / "threads" / thread_id
            appender = await asyncio.create_subprocess_exec(
                sys.executable, str(APPENDER), str(folder), str(EXTERNAL_LINES), "msg_ext",
                "--fsync", "--pause", "0.002", stdout=asyncio.subprocess.PIPE)

            async def appending() -> bool:  # the race starts once the appender is under way
                return b"msg_ext0" in (folder / "messages.jsonl").read_bytes()
            await wait_for(appending, VISIBLE_WITHIN, "the appender's first line")
            # Meanwhile the second server rewrites the file: it edits and deletes seeded messages.
            edits = asyncio.gather(*(edit(http, servers[1].url, thread_id, mid, n % 2 == 0)
                                     for n, mid in enumerate(seeded)))
            per_client = await asyncio.gather(*(
                create_many(http, s.url, thread_id, f"s{k}c{c}")
                for k, s in enumerate(servers) for c in range(CLIENTS_PER_SERVER)))
            await edits
            kept = seeded[::2]
            out, _ = await asyncio.wait_for(appender.communicate(), 60)
            assert appender.returncode == 0
            external = [f"msg_ext{i}" for i in range(EXTERNAL_LINES)]

            # The file: whole lines only, every one written exactly once, each writer in order.
            lines, tail = read_lines(folder / "messages.jsonl")
            parsed = [parse_line(line) for line in lines]
            unreadable = sum(p is None for p in parsed)
            file_ids = [p["id"] for p in parsed if p is not None]
            expected = {*external, *kept, *(i for ids in per_client for i in ids)}
            lost = len(expected - set(file_ids))
            assert tail == b"" and unreadable == 0 and lost == 0
            assert sorted(file_ids) == sorted(expected), "a line was duplicated or unknown"
            position = {mid: n for n, mid in enumerate(file_ids)}
            for ids in [external, *per_client]:
                assert [position[i] for i in ids] == sorted(position[i] for i in ids)

            assert all(p["metadata"] == {"edited": "yes"} for p in parsed
                       if p is not None and p["id"] in kept)

            # Each server serves every message, in file order, edits included, without writing
            # anything more.
            async def serves_all(server: ServerProcess) -> bool:
                served = await all_messages(http, server.url, thread_id)
                return [m["id"] for m in served] == file_ids and all(
                    m["metadata"] == {"edited": "yes"} for m in served if m["id"] in kept)
            latency = [await wait_for(lambda s=s: serves_all(s), VISIBLE_WITHIN,  # type: ignore[misc]
                                      f"server {k} to serve every message")
                       for k, s in enumerate(servers)]
            inodes = set(json.loads(out))
            # Proof the writers really raced: external lines are interleaved with the servers'.
            runs = sum(1 for a, b in itertools.pairwise(file_ids)
                       if a.startswith("msg_ext") != b.startswith("msg_ext"))
    finally:
        for s in servers:
            s.stop()
    acknowledged = sum(len(ids) for ids in per_client) + 2 * len(seeded)  # creates and edits
    line = (f"acknowledged={acknowledged} "
            f"external={EXTERNAL_LINES} rewrites={len(seeded)} "
            f"found={len(expected) - lost} lost={lost} unreadable={unreadable} "
            f"visible_after_s={max(latency):.3f} appender_inodes={len(inodes)} "
            f"writer_switches={runs}")
    print(line)
    record_property("counts", line)
    assert runs >= 3, line  # external lines on both sides of a block of the servers'
