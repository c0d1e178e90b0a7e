"""A second process appending under the thread lock while the server handles a flood of creates
on the same thread: no line torn or interleaved, nothing lost, each writer's lines in order."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

OpenClient = Callable[..., Awaitable[TestClient]]
ROOT = Path(__file__).resolve().parent.parent
N = 200

# Through Threadline's own primitive: one locked append per line.
VIA_APPEND_LINES = """
import json, sys
from pathlib import Path
from service.store.append import append_lines
folder, n = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    line = json.dumps({"id": f"ext_{i:04d}", "role": "user", "content": "x" * 3000})
    append_lines(folder, line.encode() + b"\\n", False)
"""

# A program that only knows the convention: flock the lock file, write (here in two halves, so
# any writer ignoring the lock would land in the middle of a line), unlock.
VIA_RAW_FLOCK = """
import fcntl, json, os, sys
folder, n = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
for i in range(n):
    line = json.dumps({"id": f"ext_{i:04d}", "role": "user", "content": "x" * 3000}).encode()
    lock = os.open(os.path.join(folder, ".threadline.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    fd = os.open(os.path.join(folder, "messages.jsonl"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, line[:1500])
    os.sched_yield()
    os.write(fd, line[1500:] + b"\\n")
    os.close(fd)
    os.close(lock)
"""


@pytest.mark.parametrize("writer", [VIA_APPEND_LINES, VIA_RAW_FLOCK],
                         ids=["append_lines", "raw_flock"])
async def test_external_appends_and_api_creates_never_interleave(
        open_client: OpenClient, data_dir: Path, writer: str) -> None:
    client = await open_client()
    resp = await client.post("/v1/threads", json={})
    thread_id = (await resp.json())["id"]
    folder = data_dir / "threads" / thread_id
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", writer, str(folder), str(N), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"

    async def create(i: int) -> str:
        resp = await client.post(f"/v1/threads/{thread_id}/messages",
                                 json={"role": "assistant", "content": f"api {i} " + "y" * 2000})
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["id"])

    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    api_ids = await asyncio.gather(*(create(i) for i in range(N)))
    assert await asyncio.wait_for(proc.wait(), 60) == 0

    data = (folder / "messages.jsonl").read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(line) for line in data.split(b"\n")[:-1]]  # every line parses
    assert all(isinstance(obj, dict) for obj in lines)
    ids = [obj["id"] for obj in lines]
    assert len(ids) == len(set(ids)) == 2 * N
    assert [i for i in ids if i.startswith("ext_")] == [f"ext_{i:04d}" for i in range(N)]
    assert {i for i in ids if not i.startswith("ext_")} == set(api_ids)

    fresh = await open_client()
    served: list[str] = []
    while True:
        resp = await fresh.get(f"/v1/threads/{thread_id}/messages", params={
            "order": "asc", "limit": "100", **({"after": served[-1]} if served else {})})
        page = await resp.json()
        served += [m["id"] for m in page["data"]]
        if not page["has_more"]:
            break
    assert served == ids
    health = await (await fresh.get("/healthz")).json()
    assert (health["messages"], health["corrupt_lines"]) == (2 * N, 0)
