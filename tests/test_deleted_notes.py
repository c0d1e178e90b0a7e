"""Where deleted messages stood (store/deleted.py): a deleted id stays a list cursor in any
process, after a restart, through long runs of deleted neighbours, past a neighbour deleted
without a note, and in a file that repeats an id; the note stays bounded whatever is in it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.store import deleted
from tests.jan import jan_message, jan_thread, write_thread

OpenClient = Callable[..., Awaitable[TestClient]]


async def _page(client: TestClient, thread_id: str, **params: Any) -> list[str]:
    resp = await client.get(f"/v1/threads/{thread_id}/messages",
                            params={k: str(v) for k, v in params.items()})
    assert resp.status == 200, await resp.text()
    return [m["id"] for m in (await resp.json())["data"]]


def test_the_note_keeps_the_newest_records_and_stays_bounded(tmp_path: Path) -> None:
    for i in range(3 * deleted.KEEP):
        if deleted.record(tmp_path, f"msg_{i:06}", [f"msg_{i - 1:06}"] if i else []):
            deleted.trim(tmp_path)
    noted = deleted.records(tmp_path)
    assert deleted.KEEP <= len(noted) <= 2 * deleted.KEEP + 1
    assert noted[f"msg_{3 * deleted.KEEP - 1:06}"] == [f"msg_{3 * deleted.KEEP - 2:06}"]
    assert "msg_000000" not in noted  # trimmed away


def test_garbage_torn_records_and_odd_ids_spoil_nothing(tmp_path: Path) -> None:
    assert deleted.records(tmp_path) == {}
    deleted.record(tmp_path, 'a\\tb\n"c"', [])
    with open(tmp_path / deleted.NAME, "ab") as f:
        f.write(b'\n["torn", ["li')  # a process died mid-write
    deleted.record(tmp_path, "after", ['a\\tb\n"c"'])
    assert deleted.records(tmp_path) == {'a\\tb\n"c"': [], "after": ['a\\tb\n"c"']}
    (tmp_path / deleted.NAME).write_bytes(b"x" * (deleted.MAX_BYTES + 10))  # one huge line
    assert deleted.records(tmp_path) == {}
    assert deleted.record(tmp_path, "next", ["after"])  # past MAX_BYTES: trim it
    deleted.trim(tmp_path)
    assert (tmp_path / deleted.NAME).stat().st_size < 100
    assert deleted.records(tmp_path) == {"next": ["after"]}


def test_a_symlink_in_the_notes_place_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    folder = tmp_path / "thread"
    folder.mkdir()
    os.symlink(outside, folder / deleted.NAME)
    with contextlib.suppress(OSError):  # refused: what counts is that nothing went through it
        deleted.record(folder, "m", [])
    assert outside.read_text() == "keep me\n"
    assert deleted.records(folder) == {}


async def test_a_long_run_of_deleted_neighbours_still_finds_its_place(
        client: TestClient, open_client: OpenClient) -> None:
    """100 messages deleted newest first: each record names a neighbour deleted next. The first
    one deleted still pages on from where it stood, here and after a restart."""
    resp = await client.post("/v1/threads", json={"messages": [
        {"role": "user", "content": str(i)} for i in range(120)]})
    thread_id = (await resp.json())["id"]
    ids = await _page(client, thread_id, order="asc", limit=100)
    ids += await _page(client, thread_id, order="asc", limit=100, after=ids[-1])
    for mid in reversed(ids[20:]):
        assert (await client.delete(f"/v1/threads/{thread_id}/messages/{mid}")).status == 200
    for c in (client, await open_client()):
        assert await _page(c, thread_id, order="desc", limit=3, after=ids[-1]) == ids[19:16:-1]
        assert await _page(c, thread_id, order="asc", limit=3, before=ids[60]) == ids[17:20]


async def test_a_neighbour_deleted_without_a_note_is_passed_over(
        data_dir: Path, open_client: OpenClient) -> None:
    """A delete that left no note (Jan deleted the message; or a crash between the note and
    the rename): the cursor stands after the nearest neighbour still there."""
    lines = [jan_message(f"m{i}", "jan_n", str(i)) for i in range(6)]
    folder = write_thread(data_dir, "jan_n", jan_thread("jan_n"), lines)
    client = await open_client()
    assert (await client.delete("/v1/threads/jan_n/messages/m3")).status == 200
    kept = [x for x in lines if x["id"] not in ("m2", "m3")]  # Jan removes m2, no note
    (folder / "messages.jsonl").write_text("".join(json.dumps(x) + "\n" for x in kept))
    again = await open_client()
    assert await _page(again, "jan_n", order="asc", after="m3") == ["m4", "m5"]
    assert await _page(again, "jan_n", order="desc", after="m3") == ["m1", "m0"]


async def test_a_deleted_cursor_in_a_file_that_repeats_an_id(
        data_dir: Path, open_client: OpenClient) -> None:
    """Lines A, X, B, A, C list as X, B, A, C (an id names its last line): X deleted stands
    before B, not after the hidden first copy of A."""
    order = ["A", "X", "B", "A", "C"]
    write_thread(data_dir, "jan_r", jan_thread("jan_r"),
                 [jan_message(m, "jan_r", f"{m}{i}") for i, m in enumerate(order)])
    client = await open_client()
    assert await _page(client, "jan_r", order="asc") == ["X", "B", "A", "C"]
    assert (await client.delete("/v1/threads/jan_r/messages/X")).status == 200
    for c in (client, await open_client()):
        assert await _page(c, "jan_r", order="asc", after="X") == ["B", "A", "C"]
        assert await _page(c, "jan_r", order="desc", before="X") == ["C", "A", "B"]
