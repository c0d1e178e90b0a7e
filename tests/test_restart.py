"""A restart loses nothing: whatever the API created, changed or deleted is served byte for byte
the same by a fresh server on the same folder."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.index.messages import LARGE
from tests.jan import jan_message, jan_thread, write_thread
from tests.watchkit import wait_for

OpenClient = Callable[..., Awaitable[TestClient]]


async def call(client: TestClient, method: str, path: str, body: Any = None) -> Any:
    resp = await client.request(method, path, json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def populate(client: TestClient) -> None:
    """Threads and messages of every kind, then modifies and deletes of each."""
    t1 = await call(client, "POST", "/v1/threads", {
        "metadata": {"project": "restart"},
        "tool_resources": {"code_interpreter": {"file_ids": ["file-a"]}},
        "messages": [{"role": "user", "content": "first", "metadata": {"n": "1"}},
                     {"role": "assistant", "content": [{"type": "text", "text": "second"}]}]})
    t2 = await call(client, "POST", "/v1/threads", {})
    t3 = await call(client, "POST", "/v1/threads", {"messages": [
        {"role": "user", "content": "doomed"}]})
    base1, base2 = f"/v1/threads/{t1['id']}", f"/v1/threads/{t2['id']}"
    m = await call(client, "POST", f"{base1}/messages", {
        "role": "user",
        "content": [{"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "image_file", "image_file": {"file_id": "file-i", "detail": "low"}}],
        "attachments": [{"file_id": "file-d", "tools": [{"type": "file_search"}]}]})
    for i in range(12):
        await call(client, "POST", f"{base2}/messages", {"role": "user", "content": f"n{i}ü"})
    page = await call(client, "GET", f"{base2}/messages?order=asc&limit=100")
    ids2 = [x["id"] for x in page["data"]]
    await call(client, "POST", f"{base2}/messages/{ids2[3]}", {"metadata": {"edited": "yes"}})
    await call(client, "POST", f"{base2}/messages/{ids2[4]}", {
        "content": "rewritten", "status": "incomplete", "incomplete_at": 1700000000,
        "incomplete_details": {"reason": "max_tokens"}})
    await call(client, "DELETE", f"{base2}/messages/{ids2[0]}")
    await call(client, "DELETE", f"{base2}/messages/{ids2[11]}")
    await call(client, "POST", f"{base1}/messages/{m['id']}", {"metadata": {"seen": "1"}})
    await call(client, "POST", base1, {"metadata": {"project": "restart", "v": "2"}})
    await call(client, "DELETE", f"/v1/threads/{t3['id']}")


async def snapshot(client: TestClient) -> dict[str, bytes]:
    """The raw bytes of every GET the API offers over what is stored."""
    out: dict[str, bytes] = {}

    async def get(path: str) -> Any:
        resp = await client.get(path)
        assert resp.status == 200, await resp.text()
        out[path] = await resp.read()
        return await resp.json()

    for order in ("asc", "desc"):
        await get(f"/v1/threads?limit=100&order={order}")
    for thread in (await get("/v1/threads?limit=100"))["data"]:
        base = f"/v1/threads/{thread['id']}"
        await get(base)
        for query in ("", "?order=asc&limit=100", "?limit=3"):
            await get(f"{base}/messages{query}")
        for msg in (await get(f"{base}/messages?limit=100"))["data"]:
            await get(f"{base}/messages/{msg['id']}")
            await get(f"{base}/messages/{msg['id']}/files")
    return out


async def test_a_fresh_server_serves_everything_identically(open_client: OpenClient) -> None:
    first = await open_client()
    await populate(first)
    before = await snapshot(first)
    await first.close()

    second = await open_client()
    after = await snapshot(second)
    assert after == before
    assert len(before) == 3 + 2 * 5 + 13 * 2  # lists, threads and their lists, messages
    threads = (await (await second.get("/v1/threads")).json())["data"]
    assert len(threads) == 2
    health = await (await second.get("/healthz")).json()
    assert (health["messages"], health["corrupt_lines"]) == (13, 0)


async def test_writes_after_a_restart_continue_the_same_threads(open_client: OpenClient) -> None:
    first = await open_client()
    thread = await call(first, "POST", "/v1/threads", {"messages": [
        {"role": "user", "content": "before"}]})
    await first.close()
    second = await open_client()
    base = f"/v1/threads/{thread['id']}/messages"
    new = await call(second, "POST", base, {"role": "assistant", "content": "after"})
    page = await call(second, "GET", base + "?order=asc")
    assert [m["content"][0]["text"]["value"] for m in page["data"]] == ["before", "after"]
    await second.close()
    third = await open_client()
    assert await call(third, "GET", f"{base}/{new['id']}") == new


async def test_jan_threads_without_a_creation_time_keep_it_across_rewrites(
        open_client: OpenClient, data_dir: Path) -> None:
    """A thread.json with no time (or none at all) dates the thread by its first message, not by
    the folder's mtime, which every rewrite moves."""
    no_json = write_thread(data_dir, "jan_a", None, [jan_message("a0", "jan_a", "x")])
    timeless = {k: v for k, v in jan_thread("jan_b").items() if k not in ("created", "updated")}
    no_time = write_thread(data_dir, "jan_b", timeless, [
        jan_message("b0", "jan_b", "y", created_ms=1717666250000)])
    for folder in (no_json, no_time):
        os.utime(folder, (1600000000, 1600000000))
    first = await open_client()
    for path in ("/v1/threads/jan_a/messages/a0", "/v1/threads/jan_b/messages/b0"):
        await call(first, "POST", path, {"metadata": {"edited": "1"}})  # renames in the folder
    before = await snapshot(first)
    await first.close()
    after = await snapshot(await open_client())
    assert after == before
    assert [(t["id"], t["created_at"]) for t in json.loads(before["/v1/threads?limit=100"])[
        "data"]] == [("jan_b", 1717666250), ("jan_a", 1717666240)]


async def test_a_thread_dated_by_its_folder_keeps_that_date_through_modifies(
        open_client: OpenClient, data_dir: Path) -> None:
    """No time in thread.json and no message: the folder's mtime dates the thread, and a modify
    (which renames a new thread.json into the folder, moving that mtime) keeps the date shown."""
    timeless = {k: v for k, v in jan_thread("jan_e").items() if k not in ("created", "updated")}
    folder = write_thread(data_dir, "jan_e", timeless, [])
    os.utime(folder, (1717200000, 1717200000))
    client = await open_client()
    assert (await call(client, "GET", "/v1/threads/jan_e"))["created_at"] == 1717200000
    for n in range(2):
        got = await call(client, "POST", "/v1/threads/jan_e", {"metadata": {"n": str(n)}})
        assert got["created_at"] == 1717200000
    assert json.loads((folder / "thread.json").read_text())["created_at"] == 1717200000
    await client.close()
    again = await open_client()
    assert (await call(again, "GET", "/v1/threads/jan_e"))["created_at"] == 1717200000


async def test_a_thread_dated_by_its_folder_keeps_that_date_through_message_writes(
        open_client: OpenClient, data_dir: Path) -> None:
    """The same through message writes, which move the folder's mtime too (a rewrite renames a
    temp file into place; the first write creates the lock file): the date goes into
    thread.json before the first one, and a restart still shows it."""
    timeless = {k: v for k, v in jan_thread("jan_f").items() if k not in ("created", "updated")}
    untimed = [{k: v for k, v in jan_message(f"f{i}", "jan_f", "x").items()
                if k not in ("created", "updated", "created_at")} for i in range(3)]
    folder = write_thread(data_dir, "jan_f", timeless, untimed)
    empty = write_thread(data_dir, "jan_g", timeless | {"id": "jan_g"}, [])
    for f in (folder, empty):
        os.utime(f, (1704067200, 1704067200))
    client = await open_client()
    base = "/v1/threads/jan_f"
    assert (await call(client, "GET", base))["created_at"] == 1704067200
    await call(client, "POST", f"{base}/messages/f1", {"metadata": {"a": "b"}})
    await call(client, "DELETE", f"{base}/messages/f0")
    await call(client, "POST", "/v1/threads/jan_g/messages", {"role": "user", "content": "hi"})
    for thread in ("jan_f", "jan_g"):
        assert (await call(client, "GET", f"/v1/threads/{thread}"))["created_at"] == 1704067200
    await client.close()
    again = await open_client()
    for thread in ("jan_f", "jan_g"):
        assert (await call(again, "GET", f"/v1/threads/{thread}"))["created_at"] == 1704067200
    assert json.loads((folder / "thread.json").read_text())["title"] == timeless["title"]


async def test_modifying_a_corrupt_thread_json_writes_a_complete_one(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_c", None, [jan_message("c0", "jan_c", "z")])
    (folder / "thread.json").write_text("[not, an, object")
    client = await open_client()
    thread = await call(client, "POST", "/v1/threads/jan_c", {"metadata": {"k": "v"}})
    assert (thread["created_at"], thread["metadata"]) == (1717666240, {"k": "v"})
    stored = json.loads((folder / "thread.json").read_text())
    assert stored == {"id": "jan_c", "object": "thread", "created_at": 1717666240,
                      "metadata": {"k": "v"}}
    kept = list(folder.glob(".thread.json.unreadable-*"))  # the unreadable bytes, not lost
    assert [p.read_text() for p in kept] == ["[not, an, object"]
    await client.close()
    assert await call(await open_client(), "GET", "/v1/threads/jan_c") == thread


async def test_start_up_removes_old_leftovers_of_interrupted_creates_and_deletes(
        open_client: OpenClient, data_dir: Path) -> None:
    threads = data_dir / "threads"
    old = [threads / ".new-thread_x", threads / ".deleted-thread_y-1234"]
    fresh = threads / ".new-thread_z"  # another process may be creating it right now
    for folder in [*old, fresh]:
        folder.mkdir()
        (folder / "messages.jsonl").write_text("")
    for folder in old:
        os.utime(folder, (1_000_000_000, 1_000_000_000))
    client = await open_client()
    listed = await call(client, "GET", "/v1/threads")
    assert listed["data"] == []
    assert [p.exists() for p in old] == [False, False]
    assert fresh.exists()


async def test_modifying_a_thread_json_caught_mid_rewrite_keeps_its_fields(
        open_client: OpenClient, data_dir: Path) -> None:
    """Jan rewrites thread.json in place without a lock: a modify that finds it half written
    waits for the whole file instead of replacing it (and losing Jan's assistants)."""
    whole = json.dumps(jan_thread("jan_d", title="Trip plans"), indent=2)
    folder = write_thread(data_dir, "jan_d", None, [jan_message("d0", "jan_d", "z")])
    (folder / "thread.json").write_text(whole)
    client = await open_client()
    (folder / "thread.json").write_text(whole[: len(whole) // 2])  # Jan, half way
    finish = threading.Timer(0.03, lambda: (folder / "thread.json").write_text(whole))
    finish.start()
    try:
        await call(client, "POST", "/v1/threads/jan_d", {"metadata": {"k": "v"}})
    finally:
        finish.join()
    stored = json.loads((folder / "thread.json").read_text())
    assert stored["assistants"] == jan_thread("jan_d")["assistants"]
    assert stored["created"] == jan_thread("jan_d")["created"] and stored["metadata"] == {"k": "v"}
    assert not list(folder.glob(".thread.json.unreadable-*"))


async def test_a_large_thread_is_served_right_after_its_index_is_compacted(
        open_client: OpenClient, data_dir: Path) -> None:
    """Threads over 10,000 messages have their arrays copied to exact size after start-up."""
    count = 12_000
    write_thread(data_dir, "jan_big", jan_thread("jan_big"),
                 [jan_message(f"b{i:05d}", "jan_big", f"t{i}") for i in range(count)])
    client = await open_client()
    for i in (0, 5_000, count - 1):
        got = await call(client, "GET", f"/v1/threads/jan_big/messages/b{i:05d}")
        assert got["content"][0]["text"]["value"] == f"t{i}"
    page = await call(client, "GET", "/v1/threads/jan_big/messages?order=asc&after=b09998&limit=3")
    assert [m["id"] for m in page["data"]] == ["b09999", "b10000", "b10001"]
    created = await call(client, "POST", "/v1/threads/jan_big/messages",
                         {"role": "user", "content": "after compaction"})
    assert (await call(client, "GET", f"/v1/threads/jan_big/messages/{created['id']}"))["id"] \
        == created["id"]


async def test_a_large_threads_id_table_is_built_after_start_up_and_healthz_says_when(
        data_dir: Path, open_client: OpenClient) -> None:
    """The server answers before the id tables of large threads exist (they are built just
    after start-up); /healthz counts those still pending, and every id is found meanwhile."""
    count = LARGE + 100
    write_thread(data_dir, "jan_big", jan_thread("jan_big"),
                 [jan_message(f"m{i}", "jan_big", f"text {i}") for i in range(count)])
    client = await open_client(watch=False)
    body = await (await client.get("/healthz")).json()
    assert body["id_tables_pending"] in (0, 1)  # 1 unless the build already finished
    for mid in ("m0", f"m{count // 2}", f"m{count - 1}"):  # oldest first: may build it here
        resp = await client.get(f"/v1/threads/jan_big/messages/{mid}")
        assert resp.status == 200 and (await resp.json())["id"] == mid

    async def built() -> bool:
        return (await (await client.get("/healthz")).json())["id_tables_pending"] == 0
    await wait_for(built, what="the id table")
