"""The benchmark's generated data is what the bench says it measures: Jan-legacy and canonical
lines of 200-2,000 bytes with unique ids, all of which Threadline serves (canonical ones as their
stored bytes). No timings here: the numbers live in `python -m bench`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import sendfloor
from bench.data import MAX_LINE, MIN_LINE, generate


async def test_generated_thread_has_both_shapes_and_is_served(
        data_dir: Path, open_client: Any) -> None:
    generate("test", 200, data_dir, seed=1)
    meta = json.loads((data_dir / "meta.json").read_text())
    path = data_dir / "threads" / meta["thread_id"] / "messages.jsonl"
    lines = path.read_bytes().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(lines) == 200 == meta["messages"]
    assert len(set(ids)) == 200
    assert all(MIN_LINE <= len(line) <= MAX_LINE for line in lines)
    assert set((data_dir / "ids.txt").read_text().split()) == set(ids)

    client = await open_client()
    base = f"/v1/threads/{meta['thread_id']}/messages"
    legacy = await client.get(f"{base}/{ids[0]}")
    assert legacy.status == 200
    body = await legacy.json()
    assert body["status"] == "completed" and body["created_at"] < 10**12  # normalized
    canonical = await client.get(f"{base}/{ids[-1]}")
    assert canonical.status == 200
    assert await canonical.read() == lines[-1]  # served as stored
    page = await (await client.get(f"{base}?limit=20&order=asc&after={ids[90]}")).json()
    assert [m["id"] for m in page["data"]] == ids[91:111]


def test_send_floor_delivers_to_every_socket(tmp_path: Path) -> None:
    """The C floor the SSE rows are compared against compiles, and every round times a send to
    every socket (its receiver exits non-zero unless it read every byte)."""
    exe = sendfloor.compile_floor(tmp_path)
    if exe is None:
        pytest.skip("no C compiler on this machine")
    assert shutil.which("cc") or shutil.which("gcc")
    rounds = sendfloor.deliveries(exe, 20, 3, None, None)
    assert len(rounds) == 3
    assert all(len(r) == 20 and r == sorted(r) and r[0] >= 0 for r in rounds)
