"""`workers = N`: several processes on one port and one folder serve one consistent API."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from .procs import ServerProcess


async def test_two_workers_share_the_port_and_serve_each_others_writes(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "work", "--workers", "2")
    await server.start()
    try:
        # Both workers answer, sooner or later (the second may still be starting): a new
        # connection each time, since the kernel picks the worker per connection.
        pids: set[int] = set()
        deadline = time.monotonic() + 15
        while len(pids) < 2 and time.monotonic() < deadline:
            async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
                pids.add((await resp.json())["pid"])
        assert len(pids) == 2, f"one worker answered every connection: {pids}"
        created: list[tuple[str, str]] = []
        for i in range(10):
            async with aiohttp.ClientSession() as http:
                async with http.post(server.url + "/v1/threads", json={
                        "messages": [{"role": "user", "content": f"hello {i}"}]}) as resp:
                    assert resp.status == 200
                    thread_id = (await resp.json())["id"]
                async with http.get(server.url + f"/v1/threads/{thread_id}/messages") as resp:
                    message_id = (await resp.json())["data"][0]["id"]
                created.append((thread_id, message_id))
        for thread_id, message_id in created:  # every write is readable through either worker
            for _ in range(3):
                async with aiohttp.ClientSession() as http, http.get(
                        server.url + f"/v1/threads/{thread_id}/messages/{message_id}") as resp:
                    assert resp.status == 200
    finally:
        assert server.proc is not None
        started = time.monotonic()
        server.stop()
        took = time.monotonic() - started
    assert server.proc.returncode == 0
    assert took < 5, f"stopping two workers took {took:.1f}s"


async def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", tmp_path / "work", "--workers", "2")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/healthz") as resp:
                victim = (await resp.json())["pid"]
            os.kill(victim, signal.SIGKILL)
            seen: set[int] = set()
            deadline = time.monotonic() + 15
            while len(seen) < 2 and time.monotonic() < deadline:
                try:
                    async with aiohttp.ClientSession() as fresh, fresh.get(
                            server.url + "/healthz") as resp:
                        if resp.status == 200:
                            seen.add((await resp.json())["pid"])
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        assert victim not in seen and len(seen) == 2
    finally:
        server.stop()
