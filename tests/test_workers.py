"""`workers = N`: several processes on one port and one folder serve one consistent API."""

from __future__ import annotations

import asyncio
import contextlib
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
        await _worker_pids(server)  # both answer, sooner or later
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


async def _worker_pids(server: ServerProcess) -> set[int]:
    """The pids of both workers, from `/healthz`: a new connection each time, since the kernel
    picks the worker per connection (the second may still be starting)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 15
    while len(pids) < 2 and time.monotonic() < deadline:
        async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
            pids.add((await resp.json())["pid"])
    assert len(pids) == 2, f"one worker answered every connection: {pids}"
    return pids


def _running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie nobody reaped yet has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    """kill -9 of the parent (the OOM killer, an operator) must not leave its workers serving
    the port with nobody to stop or restart them."""
    server = ServerProcess(tmp_path / "data", tmp_path / "work", "--workers", "2")
    await server.start()
    pids = await _worker_pids(server)
    try:
        server.kill9()
        deadline = time.monotonic() + 10
        while any(map(_running, pids)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not [pid for pid in pids if _running(pid)], "workers outlived their parent"
        with contextlib.suppress(aiohttp.ClientError):  # nothing answers on the port any more
            async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as r:
                raise AssertionError(f"an orphaned worker still answers: {r.status}")
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_a_stop_signal_sent_twice_still_stops_cleanly(tmp_path: Path) -> None:
    """A terminal's Ctrl-C or systemd's stop signals the whole group: each worker gets the
    signal, then its parent's forward of it. The repeat used to cut the shutdown short with an
    error and exit code 1."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        server = ServerProcess(tmp_path / "data", tmp_path / "work", "--workers", "2")
        await server.start()
        pids = await _worker_pids(server)
        assert server.proc is not None
        for pid in pids:
            os.kill(pid, signum)
        os.kill(server.proc.pid, signum)  # which forwards it again
        await asyncio.sleep(0.02)
        for pid in pids:  # and once more, later in the shutdown
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        server.proc.wait(timeout=15)
        log = server.log.read_text()
        assert server.proc.returncode == 0, log[-3000:]
        assert "failed" not in log and "Traceback" not in log, log[-3000:]
        server.log.unlink()
