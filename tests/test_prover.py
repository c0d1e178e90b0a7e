"""After start-up, every line's canonical verdict is decided in the background (index/prover.py),
so the first read of a long thread's lines after a restart is served as stored bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.index import prover
from service.index.messages import CANONICAL, NORMALIZE, UNKNOWN
from service.keys import CATALOG

from .jan import jan_message, jan_thread, write_thread
from .test_canonical_lines import canonical_line
from .watchkit import wait_for


async def test_lines_of_threads_there_at_start_up_are_decided_before_any_read(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    lines = [canonical_line(f"msg_{i:03}", "thread_c", f"line {i}") for i in range(300)]
    odd = json.loads(lines[150])
    odd["thread_id"] = "thread_elsewhere"  # canonical-looking, but not this thread's line
    lines[150] = json.dumps(odd, separators=(",", ":")).encode()
    write_thread(data_dir, "thread_c", {"id": "thread_c", "created_at": 1}, lines)
    write_thread(data_dir, "jan_q", jan_thread("jan_q"),
                 [jan_message(f"j{i}", "jan_q", f"jan {i}") for i in range(100)])
    client = await open_client(watch=False)
    catalog = client.app[CATALOG]
    c, q = catalog.get("thread_c").messages, catalog.get("jan_q").messages
    await wait_for(lambda: c.canon.count(UNKNOWN) == 0 and q.canon.count(UNKNOWN) == 0,
                   what="every line decided")
    assert c.canon[:150] == bytes([CANONICAL]) * 150
    assert c.canon[150] == NORMALIZE and c.canon[151:] == bytes([CANONICAL]) * 149
    assert q.canon == bytes([NORMALIZE]) * 100
    # Served as before: the canonical lines as stored, the others normalized.
    resp = await client.get("/v1/threads/thread_c/messages",
                            params={"order": "asc", "limit": "10", "after": "msg_144"})
    page = (await resp.json())["data"]
    assert page[:5] == [json.loads(x) for x in lines[145:150]]
    assert page[5] == {**json.loads(lines[150]), "thread_id": "thread_c"}
    resp = await client.get("/v1/threads/jan_q/messages/j7")
    assert (await resp.json())["content"][0]["text"]["value"] == "jan 7"


async def test_a_slice_is_bounded_by_lines_and_bytes_and_a_long_line_is_left_to_its_read(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    lines = [canonical_line(f"msg_{i:03}", "thread_l", f"line {i}") for i in range(200)]
    lines[120] = canonical_line("msg_120", "thread_l", "y" * (prover.LONG_LINE + 10))
    write_thread(data_dir, "thread_l", {"id": "thread_l", "created_at": 1}, lines)
    client = await open_client(watch=False)
    index = client.app[CATALOG].get("thread_l").messages
    await wait_for(lambda: index.canon.count(UNKNOWN) == 1, what="every other line decided")
    assert index.canon[120] == UNKNOWN  # the long one: decided at its first read
    assert prover.slice_end(index, 0) == prover.SLICE - 1  # 64 short lines
    assert prover.slice_end(index, 100) == 119  # stops before the long line
    assert prover.slice_end(index, 120) == 120  # which is a slice of its own
    resp = await client.get("/v1/threads/thread_l/messages/msg_120")
    assert resp.status == 200 and index.canon[120] == CANONICAL
    # Lines of ~10 KB: the byte budget ends the slice before the line count does.
    wide = [canonical_line(f"msg_{i:03}", "thread_w", "w" * 10_000) for i in range(100)]
    write_thread(data_dir, "thread_w", {"id": "thread_w", "created_at": 2}, wide)
    client = await open_client(watch=False)
    index = client.app[CATALOG].get("thread_w").messages
    hi = prover.slice_end(index, 0)
    assert hi < prover.SLICE - 1
    assert index.end_of(hi) - index.starts[0] <= prover.SLICE_BYTES < index.end_of(hi + 1)


async def test_prove_lines_false_leaves_each_line_to_its_first_read(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    lines = [canonical_line(f"msg_{i:03}", "thread_c", f"line {i}") for i in range(100)]
    write_thread(data_dir, "thread_c", {"id": "thread_c", "created_at": 1}, lines)
    on = await open_client(watch=False)
    off = await open_client(watch=False, prove_lines=False)
    proved = on.app[CATALOG].get("thread_c").messages
    await wait_for(lambda: proved.canon.count(UNKNOWN) == 0, what="the default proves")
    index = off.app[CATALOG].get("thread_c").messages
    assert index.canon == bytes([UNKNOWN]) * 100  # while the other app proved all 100
    resp = await off.get("/v1/threads/thread_c/messages/msg_007")
    assert resp.status == 200 and index.canon[7] == CANONICAL
    assert index.canon.count(UNKNOWN) == 99
