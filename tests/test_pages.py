"""List pages of canonical lines are served as the stored bytes of the whole range (one read, no
check per line), and only while the range is exactly the indexed lines: gaps of corrupt lines,
Jan-shaped neighbours and files rewritten under the index take the line-by-line path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.index.messages import CANONICAL
from service.keys import CATALOG

from .jan import jan_message, jan_thread, write_thread


async def _thread_with(client: TestClient, texts: list[str]) -> tuple[str, list[dict[str, Any]]]:
    thread = await (await client.post("/v1/threads", json={})).json()
    made = []
    for text in texts:
        resp = await client.post(f"/v1/threads/{thread['id']}/messages",
                                 json={"role": "user", "content": text})
        assert resp.status == 200
        made.append(await resp.json())
    return thread["id"], made


async def _page(client: TestClient, thread_id: str, **query: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/threads/{thread_id}/messages", params=query)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_pages_of_canonical_lines_in_both_orders_are_the_stored_messages(
        client: TestClient) -> None:
    thread_id, made = await _thread_with(client, [f"message {i} " + "x" * (i * 37 % 300)
                                                  for i in range(30)])
    whole = await _page(client, thread_id, order="asc", limit="100")
    assert whole["data"] == made and whole["has_more"] is False
    # Every line is known canonical now (lines the watcher indexed first were checked on the way).
    assert client.app[CATALOG].get(thread_id).messages.canon.count(CANONICAL) == 30
    asc = await _page(client, thread_id, order="asc", limit="7", after=made[4]["id"])
    assert asc["data"] == made[5:12]
    assert (asc["first_id"], asc["last_id"], asc["has_more"]) == (made[5]["id"], made[11]["id"],
                                                                  True)
    desc = await _page(client, thread_id, order="desc", limit="7", after=made[20]["id"])
    assert desc["data"] == made[13:20][::-1]
    assert (await _page(client, thread_id, limit="1"))["data"] == [made[-1]]


async def test_a_corrupt_line_between_canonical_lines_is_skipped(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    client = await open_client(watch=False)
    thread_id, made = await _thread_with(client, ["a", "b", "c", "d"])
    await client.close()
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + b'{"id": "broken\n\n' + b"".join(lines[2:]))
    client = await open_client(watch=False)
    for order, expected in (("asc", made), ("desc", made[::-1])):
        page = await _page(client, thread_id, order=order)
        assert page["data"] == expected


async def test_a_page_mixing_jan_and_canonical_lines_is_normalized_where_needed(
        client: TestClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message(f"j{i}", "jan_1", f"jan {i}") for i in range(3)])
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "new"})
    assert resp.status == 200
    created = await resp.json()
    page = await _page(client, "jan_1", order="asc")
    assert [m["id"] for m in page["data"]] == ["j0", "j1", "j2", created["id"]]
    assert all(m["object"] == "thread.message" for m in page["data"])
    assert page["data"][0]["content"][0]["text"]["value"] == "jan 0"
    assert page["data"][-1] == created


async def test_a_file_rewritten_under_the_index_is_never_served_from_old_offsets(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    """Another program rewrites the file (no watcher to tell): lines of other lengths shift
    every offset. The page notices before serving a byte, syncs and serves the new file."""
    client = await open_client(watch=False)
    thread_id, made = await _thread_with(client, ["one", "two", "three", "four"])
    assert (await _page(client, thread_id, order="asc"))["data"] == made
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    objs = [json.loads(line) for line in path.read_bytes().splitlines()]
    objs[1]["content"][0]["text"]["value"] = "two, and now much longer than it was"
    path.write_bytes(b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n"
                              for o in objs))
    page = await _page(client, thread_id, order="asc")
    assert [m["content"][0]["text"]["value"] for m in page["data"]] == [
        "one", "two, and now much longer than it was", "three", "four"]
    desc = await _page(client, thread_id, order="desc")
    assert desc["data"] == page["data"][::-1]


async def test_a_page_of_cached_jan_lines_is_their_cached_forms_in_either_order(
        client: TestClient, data_dir: Path) -> None:
    write_thread(data_dir, "jan_2", jan_thread("jan_2"),
                 [jan_message(f"j{i}", "jan_2", f"jan {i}") for i in range(6)])
    first = await _page(client, "jan_2", order="desc", limit="4", after="j5")
    assert [m["id"] for m in first["data"]] == ["j4", "j3", "j2", "j1"]
    cache = client.app[CATALOG].lines
    hits, misses = cache.hits, cache.misses
    again = await _page(client, "jan_2", order="desc", limit="4", after="j5")
    assert again == first
    assert (cache.hits, cache.misses) == (hits + 4, misses)  # one lookup per line, no miss
    asc = await _page(client, "jan_2", order="asc", limit="4", after="j0")
    assert [m["id"] for m in asc["data"]] == ["j1", "j2", "j3", "j4"]
    assert asc["data"] == first["data"][::-1]


async def test_a_line_rewritten_in_place_to_the_same_length_is_not_served_as_stored(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    """Another program rewrites a line in place, same length, into a Jan-shaped one (no watcher
    to tell): every offset and newline is where the index says, yet the line is no longer the one
    found canonical. Its CRC tells: the read syncs and serves the line normalized."""
    client = await open_client(watch=False)
    thread_id, made = await _thread_with(client, ["one", "two", "three"])
    assert (await _page(client, thread_id, order="asc"))["data"] == made  # all known canonical
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    lines = path.read_bytes().split(b"\n")
    jan = json.dumps({"id": made[1]["id"], "role": "user", "status": "ready",
                      "created": made[1]["created_at"] * 1000, "thread_id": thread_id,
                      "content": [{"type": "text", "text": {"value": "TWO", "annotations": []}}]
                      }, separators=(",", ":")).encode()  # it even opens as a canonical line does
    assert len(jan) < len(lines[1])
    lines[1] = jan[:-1] + b" " * (len(lines[1]) - len(jan)) + b"}"
    with path.open("r+b") as f:  # in place: same inode, same size
        f.write(b"\n".join(lines))
    got = await client.get(f"/v1/threads/{thread_id}/messages/{made[1]['id']}")
    assert got.status == 200
    msg = await got.json()
    assert (msg["status"], msg["created_at"], msg["content"][0]["text"]["value"]) == (
        "completed", made[1]["created_at"], "TWO")
    page = await _page(client, thread_id, order="asc")
    assert page["data"][1] == msg and page["data"][0] == made[0] and page["data"][2] == made[2]


def _bytes_read() -> int:
    """Bytes this process has read from files so far (`rchar`: every read and pread)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


async def test_a_page_over_a_long_corrupt_stretch_reads_its_lines_not_the_stretch(
        open_client: Callable[..., Any], data_dir: Path) -> None:
    """A page of a few lines whose range holds megabytes of corrupt lines (a torn write of a
    huge blob, garbage pasted into the file) reads each of its lines, not the whole range."""
    client = await open_client(watch=False)
    thread_id, made = await _thread_with(client, ["a", "b", "c"])
    await client.close()
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    junk = b"\x00garbage " * (1 << 20)  # one 9 MB corrupt line, then a blank one
    path.write_bytes(lines[0] + junk + b"\n\n" + b"".join(lines[1:]))
    client = await open_client(watch=False)
    for order, expected in (("asc", made), ("desc", made[::-1])):
        before = _bytes_read()
        page = await _page(client, thread_id, order=order)
        assert page["data"] == expected
        assert _bytes_read() - before < len(junk) // 8, "the corrupt stretch was read"
    health = await (await client.get("/healthz")).json()
    assert health["corrupt_lines"] == 1
