"""Helpers for the live-watch suites: waiting with a timeout, recording the change feed, writing
files the way other programs do, and reading a thread back over HTTP and from the disk.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from aiohttp.test_utils import TestClient

from service.feed import Change
from service.keys import CATALOG, FEED, WATCH
from service.store import normalize
from service.watch import WatchStats

JSON = {"Content-Type": "application/json"}


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy; return that. Polls,
    because what is awaited is another thread's or process's write reaching the index."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


class Recorder:
    """Every change record the app's feed publishes, in order."""

    def __init__(self, client: TestClient) -> None:
        self.changes: list[Change] = []
        self.unsubscribe = client.app[FEED].subscribe(self.changes.append)

    def clear(self) -> None:
        self.changes.clear()

    def kinds(self, thread_id: str | None = None) -> list[tuple[str, str | None]]:
        return [(c.kind, c.message_id) for c in self.changes
                if thread_id is None or c.thread_id == thread_id]

    def of(self, kind: str, thread_id: str | None = None) -> list[str | None]:
        """Message ids (or None for thread kinds) of the records of one kind."""
        return [c.message_id for c in self.changes
                if c.kind == kind and (thread_id is None or c.thread_id == thread_id)]


def line(message_id: str, thread_id: str, text: str, **extra: Any) -> bytes:
    """A complete OpenAI v2 message line (no newline), as another Threadline process writes it."""
    obj = {
        "id": message_id, "object": "thread.message", "created_at": 1717666240,
        "thread_id": thread_id, "status": "completed", "incomplete_details": None,
        "completed_at": None, "incomplete_at": None, "role": "user",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": None, "run_id": None, "attachments": [], "metadata": {},
    }
    obj.update(extra)
    return json.dumps(obj, separators=(",", ":")).encode()


def jan_line(message_id: str, thread_id: str, text: str, role: str = "user") -> bytes:
    """A message line in Jan's own shape (ms timestamps, status `ready`, unknown fields)."""
    return json.dumps({
        "id": message_id, "thread_id": thread_id, "type": "Thread", "role": role,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "status": "ready", "created": 1717666240000, "updated": 1717666240000,
        "object": "thread.message",
    }).encode()


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


async def append(path: Path, data: bytes) -> None:
    """Append `data` from another thread, with one write(2)."""
    await asyncio.to_thread(_append, path, data)


def _write_in_place(path: Path, data: bytes) -> None:
    # Jan's way: open with "w" (truncate) and write the whole content; same inode.
    with path.open("wb") as f:
        f.write(data)


async def write_in_place(path: Path, data: bytes) -> None:
    await asyncio.to_thread(_write_in_place, path, data)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.external.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def replace(path: Path, data: bytes) -> None:
    """Atomic rename-over from another thread: a temp file in the folder, then rename."""
    await asyncio.to_thread(_replace, path, data)


def expected_messages(path: Path, thread_id: str) -> list[dict[str, Any]]:
    """A plain re-read of `messages.jsonl`: every complete line that is a JSON object with an id,
    in file order, normalized as the API serves it."""
    data = path.read_bytes() if path.exists() else b""
    complete = data[: data.rfind(b"\n") + 1]
    out = []
    for raw in complete.split(b"\n"):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        mid = obj.get("id")
        if mid is None or mid == "" or isinstance(mid, dict | list):
            continue
        out.append(msgspec.to_builtins(normalize.message(obj, thread_id)))
    return out


async def served(client: TestClient, thread_id: str) -> list[dict[str, Any]] | None:
    """Every message of a thread in file order (paging by `after`); None once it is a 404."""
    out: list[dict[str, Any]] = []
    params = {"order": "asc", "limit": "100"}
    while True:
        resp = await client.get(f"/v1/threads/{thread_id}/messages", params=params)
        if resp.status == 404:
            return None
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        out.extend(page["data"])
        if not page["has_more"]:
            return out
        params["after"] = page["last_id"]


async def served_ids(client: TestClient, thread_id: str) -> list[str] | None:
    messages = await served(client, thread_id)
    return None if messages is None else [m["id"] for m in messages]


async def health(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/healthz")
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def stats(client: TestClient) -> WatchStats:
    return client.app[WATCH]


def indexed_size(client: TestClient, thread_id: str) -> int | None:
    """How far the index has looked into the thread's messages.jsonl (its size when last seen)."""
    entry = client.app[CATALOG].get(thread_id)
    return None if entry is None or entry.file is None else entry.file.size


async def settled(client: TestClient, path: Path, thread_id: str) -> bool:
    """The index has seen the file as it is now (its size, bytes past the last newline too)."""
    return indexed_size(client, thread_id) == path.stat().st_size


async def create_thread(client: TestClient, **body: Any) -> str:
    resp = await client.post("/v1/threads", json=body)
    assert resp.status == 200, await resp.text()
    thread_id: str = (await resp.json())["id"]
    return thread_id


async def watcher_ready(client: TestClient) -> None:
    """The watcher is up and its first catch-up pass over the folder is done (so the watch itself,
    set up before that pass, is in place)."""
    await wait_for(lambda: stats(client).reconciles > 0, what="the watcher's first catch-up")
