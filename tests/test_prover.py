"""After start-up, every line's canonical verdict is decided in the background (index/prover.py),
so the first read of a long thread's lines after a restart is served as stored bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
