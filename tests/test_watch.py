"""Live watch: the index follows what other programs (threads, processes) do to the data folder.

A real watcher runs on a real folder under tmp_path; the writes come from another thread or
another process. Each test waits, with a timeout, for the API to show the change, then checks the
API's view and the change feed (exactly one record per change, of the right kind).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.config import Config
from service.keys import CATALOG, CONFIG, INDEXER
from tests.jan import jan_thread
from tests.procs import APPENDER
from tests.watchkit import (
    Recorder,
    append,
    create_thread,
    expected_messages,
    health,
    jan_line,
    line,
    replace,
    served,
    served_ids,
    settled,
    stats,
    wait_for,
    watcher_ready,
    write_in_place,
)

MakeClient = Callable[..., Any]


@pytest.fixture
def make_client(aiohttp_client: Any, make_config: Callable[..., Config]) -> MakeClient:
    async def make(**overrides: Any) -> TestClient:
        client: TestClient = await aiohttp_client(create_app(make_config(**overrides)))
        await watcher_ready(client)
        return client
    return make


@pytest.fixture(params=["inotify", "polling"])
async def watched(request: pytest.FixtureRequest, make_client: MakeClient) -> TestClient:
    """The app with its watcher on, using OS notifications or, as on network file systems and
    bind mounts, polling."""
    return await make_client(watch_polling=request.param == "polling")


async def test_healthz_says_how_the_watcher_learns_of_changes(watched: TestClient) -> None:
    resp = await watched.get("/healthz")
    watcher = (await resp.json())["watcher"]
    assert watcher["running"] is True
    assert watcher["polling"] is watched.app[CONFIG].watch_polling


@pytest.fixture
async def feed(watched: TestClient) -> Recorder:
    return Recorder(watched)


async def new_thread(client: TestClient, data_dir: Path) -> tuple[str, Path]:
    thread_id = await create_thread(client)
    return thread_id, data_dir / "threads" / thread_id / "messages.jsonl"


async def shows(client: TestClient, thread_id: str, ids: list[str]) -> bool:
    return await served_ids(client, thread_id) == ids


# --- appends ------------------------------------------------------------------------------------

async def test_appended_line_is_served_and_published_once(watched: TestClient, feed: Recorder,
                                                          data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    feed.clear()
    await append(path, line("msg_ext1", tid, "hello from elsewhere") + b"\n")

    await wait_for(lambda: shows(watched, tid, ["msg_ext1"]), what="the appended line")
    resp = await watched.get(f"/v1/threads/{tid}/messages/msg_ext1")
    assert resp.status == 200
    assert (await resp.json())["content"][0]["text"]["value"] == "hello from elsewhere"
    assert feed.kinds() == [("thread.message.created", "msg_ext1")]
    change = feed.changes[0]
    assert (change.offset, change.end) == (0, path.stat().st_size)


async def test_burst_of_lines_from_another_process_is_indexed_in_order(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    feed.clear()
    proc = subprocess.run([sys.executable, str(APPENDER), str(path.parent), "1000", "burst_"],
                          capture_output=True, timeout=60, check=True)
    assert proc.returncode == 0

    ids = [f"burst_{i}" for i in range(1000)]
    await wait_for(lambda: shows(watched, tid, ids), timeout=10, what="1000 appended lines")
    assert feed.of("thread.message.created") == ids
    assert len(feed.changes) == 1000
    assert (await health(watched))["messages"] == 1000


async def test_line_written_in_chunks_is_served_only_once_complete(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    await append(path, line("msg_whole", tid, "first") + b"\n")
    await wait_for(lambda: shows(watched, tid, ["msg_whole"]), what="the first line")
    feed.clear()

    whole = line("msg_chunked", tid, "x" * 3000) + b"\n"
    chunks = [whole[:1000], whole[1000:2000], whole[2000:]]
    for chunk in chunks[:2]:
        await append(path, chunk)
        await wait_for(lambda: settled(watched, path, tid), what="the watcher to see the chunk")
        # Half a message is never served: not in the list, not by id, and nothing is published.
        assert await served_ids(watched, tid) == ["msg_whole"]
        resp = await watched.get(f"/v1/threads/{tid}/messages/msg_chunked")
        assert resp.status == 404
        assert (await health(watched))["corrupt_lines"] == 0
        assert feed.changes == []

    await append(path, chunks[2])
    await wait_for(lambda: shows(watched, tid, ["msg_whole", "msg_chunked"]),
                   what="the completed line")
    messages = await served(watched, tid)
    assert messages is not None
    assert messages[1]["content"][0]["text"]["value"] == "x" * 3000
    assert feed.kinds() == [("thread.message.created", "msg_chunked")]


async def test_corrupt_line_is_counted_kept_and_watching_goes_on(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    feed.clear()
    await append(path, b'{"id": "msg_broken", "content": [tru\n')
    await wait_for(lambda: settled(watched, path, tid), what="the corrupt line to be seen")
    body = await health(watched)
    assert body["corrupt_lines"] == 1
    assert body["corrupt"] == {tid: [[0, path.stat().st_size - 1]]}

    await append(path, line("msg_after", tid, "still watching") + b"\n")
    await wait_for(lambda: shows(watched, tid, ["msg_after"]), what="the line after it")
    assert feed.kinds() == [("thread.message.created", "msg_after")]
    assert path.read_bytes().startswith(b'{"id": "msg_broken", "content": [tru\n')


async def test_failing_thread_is_logged_and_others_are_still_watched(
        watched: TestClient, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = data_dir / "threads" / "bad_thread"
    bad.mkdir()
    (bad / "thread.json").write_text("{}")
    with socket.socket(socket.AF_UNIX) as sock:  # opening it fails with ENXIO
        sock.bind(str(bad / "messages.jsonl"))
        await wait_for(lambda: stats(watched).errors > 0, what="the failing sync to be counted")
    assert "bad_thread" in caplog.text
    resp = await watched.get("/v1/threads/bad_thread/messages")
    assert resp.status == 503  # the data folder's fault, said as such
    assert (await resp.json())["error"]["message"] == (
        "The data folder cannot be used: No such device or address (messages.jsonl).")

    tid, path = await new_thread(watched, data_dir)
    await append(path, line("msg_ok", tid, "fine") + b"\n")
    await wait_for(lambda: shows(watched, tid, ["msg_ok"]), what="the other thread")
    assert (await health(watched))["watcher"]["errors"] >= 1


# --- rewrites -----------------------------------------------------------------------------------

JAN_ID = "jan_1717666232"
ORIGINAL = [("01J0A", "first"), ("01J0B", "second"), ("01J0C", "third")]


async def jan_folder(client: TestClient, data_dir: Path, feed: Recorder) -> Path:
    """A Jan thread with three messages, indexed (and read once, as a client viewing it)."""
    folder = data_dir / "threads" / JAN_ID
    folder.mkdir()
    (folder / "thread.json").write_text(json.dumps(jan_thread(JAN_ID), indent=2))
    path = folder / "messages.jsonl"
    path.write_bytes(b"".join(jan_line(m, JAN_ID, t) + b"\n" for m, t in ORIGINAL))
    await wait_for(lambda: shows(client, JAN_ID, [m for m, _ in ORIGINAL]), what="the Jan thread")
    feed.clear()
    return path


def edited_content() -> bytes:
    """The Jan thread after deleting the second message and editing the third (longer text)."""
    return (jan_line("01J0A", JAN_ID, "first") + b"\n"
            + jan_line("01J0C", JAN_ID, "third, edited") + b"\n")


async def check_edited(client: TestClient, path: Path) -> None:
    await wait_for(lambda: shows(client, JAN_ID, ["01J0A", "01J0C"]), what="the rewrite")
    messages = await served(client, JAN_ID)
    assert messages == expected_messages(path, JAN_ID)
    assert messages is not None and messages[1]["content"][0]["text"]["value"] == "third, edited"
    resp = await client.get(f"/v1/threads/{JAN_ID}/messages/01J0B")
    assert resp.status == 404


async def test_in_place_truncate_and_rewrite_drops_deleted_and_shows_edited(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    path = await jan_folder(watched, data_dir, feed)
    ino = path.stat().st_ino
    await write_in_place(path, edited_content())
    assert path.stat().st_ino == ino

    await check_edited(watched, path)
    assert feed.of("thread.message.updated") == ["01J0C"]
    assert feed.of("thread.message.created") == []
    assert feed.of("thread.message.deleted") == ["01J0B"]


async def test_in_place_rewrite_publishes_the_removed_message_id(
        make_client: MakeClient, data_dir: Path) -> None:
    client = await make_client()
    feed = Recorder(client)
    path = await jan_folder(client, data_dir, feed)
    await write_in_place(path, edited_content())
    await check_edited(client, path)
    assert feed.of("thread.message.deleted") == ["01J0B"]


async def test_in_place_rewrite_to_the_same_size_is_detected(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    path = await jan_folder(watched, data_dir, feed)
    size = path.stat().st_size
    await write_in_place(path, path.read_bytes().replace(b"second", b"SECOND"))
    assert path.stat().st_size == size

    await wait_for(lambda: served(watched, JAN_ID), what="the thread")
    await wait_for(lambda: feed.changes, what="the rewrite to be published")
    messages = await served(watched, JAN_ID)
    assert messages is not None and messages[1]["content"][0]["text"]["value"] == "SECOND"
    assert feed.kinds() == [("thread.message.updated", "01J0B")]


async def test_truncation_removes_messages(watched: TestClient, feed: Recorder,
                                           data_dir: Path) -> None:
    path = await jan_folder(watched, data_dir, feed)
    await asyncio.to_thread(os.truncate, path, len(jan_line("01J0A", JAN_ID, "first")) + 1)

    await wait_for(lambda: shows(watched, JAN_ID, ["01J0A"]), what="the truncation")
    assert feed.of("thread.message.created") == []
    assert feed.of("thread.message.updated") == []
    assert sorted(feed.of("thread.message.deleted")) == ["01J0B", "01J0C"]


async def test_atomic_rename_over_drops_deleted_and_shows_edited(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    path = await jan_folder(watched, data_dir, feed)
    ino = path.stat().st_ino
    await replace(path, edited_content())
    assert path.stat().st_ino != ino

    await check_edited(watched, path)
    assert feed.kinds() == [("thread.message.deleted", "01J0B"),
                            ("thread.message.updated", "01J0C")]


# --- threads appearing, vanishing, changing ------------------------------------------------------

WRITE_FOLDER = """
import json, os, sys
folder = sys.argv[1]
os.mkdir(folder)
with open(os.path.join(folder, "thread.json"), "w") as f:
    f.write(sys.argv[2])
with open(os.path.join(folder, "messages.jsonl"), "w") as f:
    f.write(sys.argv[3])
"""


async def test_new_thread_folder_from_another_program_is_listed_and_served(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    folder = data_dir / "threads" / "jan_1720000000"
    meta = jan_thread("jan_1720000000", created_ms=1720000000000)
    lines = (jan_line("01J1A", "jan_1720000000", "hi") + b"\n"
             + jan_line("01J1B", "jan_1720000000", "hello", role="assistant") + b"\n")
    subprocess.run([sys.executable, "-c", WRITE_FOLDER, str(folder),
                    json.dumps(meta, indent=2), lines.decode()], check=True, timeout=30)

    await wait_for(lambda: shows(watched, "jan_1720000000", ["01J1A", "01J1B"]),
                   what="the new folder's messages")
    resp = await watched.get("/v1/threads")
    assert [t["id"] for t in (await resp.json())["data"]] == ["jan_1720000000"]
    resp = await watched.get("/v1/threads/jan_1720000000")
    thread = await resp.json()
    assert thread["created_at"] == 1720000000
    assert thread["metadata"]["lastMessage"] == "hello"
    assert feed.of("thread.created") == [None]
    assert feed.of("thread.message.created") == ["01J1A", "01J1B"]
    assert feed.of("thread.deleted") == []


async def test_folder_made_first_and_filled_later_is_picked_up(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    folder = data_dir / "threads" / "later_thread"
    folder.mkdir()
    await wait_for(lambda: stats(watched).syncs > 0 and stats(watched).batches > 0,
                   what="the watcher to see the empty folder")
    resp = await watched.get("/v1/threads/later_thread")
    assert resp.status == 404  # an empty folder is not a thread yet

    await replace(folder / "thread.json", json.dumps({"metadata": {"k": "v"}}).encode())
    await wait_for(lambda: _status(watched, "/v1/threads/later_thread", 200), what="thread.json")
    await append(folder / "messages.jsonl", line("msg_late", "later_thread", "late") + b"\n")
    await wait_for(lambda: shows(watched, "later_thread", ["msg_late"]), what="the messages")

    resp = await watched.get("/v1/threads/later_thread")
    assert resp.status == 200 and (await resp.json())["metadata"] == {"k": "v"}
    assert feed.kinds() == [("thread.created", None), ("thread.message.created", "msg_late")]


async def test_deleted_thread_folder_turns_into_404(watched: TestClient, feed: Recorder,
                                                     data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    await append(path, line("msg_doomed", tid, "bye") + b"\n")
    await wait_for(lambda: shows(watched, tid, ["msg_doomed"]), what="the message")
    feed.clear()

    await asyncio.to_thread(shutil.rmtree, path.parent)
    await wait_for(lambda: _status(watched, f"/v1/threads/{tid}", 404), what="GET thread 404")
    assert await served_ids(watched, tid) is None
    resp = await watched.get(f"/v1/threads/{tid}/messages/msg_doomed")
    assert resp.status == 404
    assert (await (await watched.get("/v1/threads")).json())["data"] == []
    assert feed.kinds() == [("thread.deleted", None)]


async def _status(client: TestClient, url: str, status: int) -> bool:
    return (await client.get(url)).status == status


async def test_thread_json_edit_shows_in_get_thread(watched: TestClient, feed: Recorder,
                                                    data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    tj = path.parent / "thread.json"
    doc = json.loads(tj.read_text())
    doc["metadata"] = {"title": "renamed by Jan"}
    doc["title"] = "renamed by Jan"
    feed.clear()
    await write_in_place(tj, json.dumps(doc, indent=2).encode())

    async def metadata() -> Any:
        return (await (await watched.get(f"/v1/threads/{tid}")).json())["metadata"]
    await wait_for(lambda: _eq(metadata(), {"title": "renamed by Jan"}), what="the new metadata")
    assert feed.kinds() == [("thread.updated", None)]


async def _eq(value: Any, expected: Any) -> bool:
    return await value == expected


async def test_half_written_thread_json_keeps_the_last_good_thread(
        watched: TestClient, feed: Recorder, data_dir: Path) -> None:
    tid = await create_thread(watched, metadata={"title": "original"})
    path = data_dir / "threads" / tid / "messages.jsonl"
    tj = path.parent / "thread.json"
    doc = json.loads(tj.read_text())
    doc["metadata"] = {"title": "renamed by Jan"}
    full = json.dumps(doc, indent=2).encode()
    await append(path, line("msg_barrier", tid, "earlier events are done") + b"\n")
    await wait_for(lambda: shows(watched, tid, ["msg_barrier"]), what="the barrier line")
    feed.clear()
    syncs = stats(watched).syncs

    await write_in_place(tj, full[: len(full) // 2])  # Jan caught mid-write
    await wait_for(lambda: stats(watched).syncs > syncs, what="the watcher to read it")
    resp = await watched.get(f"/v1/threads/{tid}")
    assert (await resp.json())["metadata"] == {"title": "original"}
    assert feed.changes == []

    await write_in_place(tj, full)
    await wait_for(lambda: feed.changes, what="the completed thread.json")
    resp = await watched.get(f"/v1/threads/{tid}")
    assert (await resp.json())["metadata"] == {"title": "renamed by Jan"}
    assert feed.kinds() == [("thread.updated", None)]


# --- the server's own writes ---------------------------------------------------------------------

async def test_own_writes_are_indexed_and_published_once(watched: TestClient, feed: Recorder,
                                                          data_dir: Path) -> None:
    tid, path = await new_thread(watched, data_dir)
    created = []
    for i in range(5):
        resp = await watched.post(f"/v1/threads/{tid}/messages",
                                  json={"role": "user", "content": f"own {i}"})
        assert resp.status == 200
        created.append((await resp.json())["id"])
    resp = await watched.post(f"/v1/threads/{tid}/messages/{created[0]}",
                              json={"metadata": {"edited": "yes"}})
    assert resp.status == 200
    resp = await watched.delete(f"/v1/threads/{tid}/messages/{created[1]}")
    assert resp.status == 200
    # An external line after them: once it is served, the watcher has seen every earlier write.
    await append(path, line("msg_marker", tid, "marker") + b"\n")
    expected = [created[0], *created[2:], "msg_marker"]
    await wait_for(lambda: shows(watched, tid, expected), what="the marker line")

    assert feed.kinds(tid) == [
        ("thread.created", None),
        *[("thread.message.created", m) for m in created],
        ("thread.message.updated", created[0]),
        ("thread.message.deleted", created[1]),
        ("thread.message.created", "msg_marker"),
    ]
    body = await health(watched)
    assert (body["threads"], body["messages"]) == (1, 5)
    assert await served(watched, tid) == expected_messages(path, tid)


# --- settings -----------------------------------------------------------------------------------

async def test_watcher_follows_a_relative_data_dir(make_client: MakeClient, data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(data_dir.parent)
    client = await make_client(data_dir=Path(data_dir.name))  # like the default `./data`
    tid, path = await new_thread(client, data_dir)
    await append(path, line("msg_rel", tid, "relative") + b"\n")
    await wait_for(lambda: shows(client, tid, ["msg_rel"]), what="the appended line")


async def test_unreadable_thread_at_start_up_is_skipped_and_logged(
        make_client: MakeClient, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = data_dir / "threads" / "bad_thread"
    bad.mkdir()
    (bad / "messages.jsonl").mkdir()  # not a regular file: no messages (and no thread.json)
    good = data_dir / "threads" / "good_thread"
    good.mkdir()
    (good / "messages.jsonl").write_bytes(line("msg_good", "good_thread", "ok") + b"\n")

    client = await make_client()
    assert await served_ids(client, "good_thread") == ["msg_good"]
    assert "bad_thread" in caplog.text


async def test_a_fifo_or_a_directory_named_messages_jsonl_blocks_nothing(
        make_client: MakeClient, data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A FIFO used to block the watcher's worker for good in its open (live updates stopped, a
    get of its thread hung, shutdown never ended); a directory or a symbolic link to itself made
    every route of its thread answer 500. They read as a thread without messages, and a write is
    a clear 409."""
    client = await make_client()
    tid, path = await new_thread(client, data_dir)
    odd: dict[str, Callable[[Path], Any]] = {
        "fifo_thread": os.mkfifo, "dir_thread": os.mkdir,
        "loop_thread": lambda p: p.symlink_to(p.name)}  # a link to itself: ELOOP on open
    for name, make in odd.items():
        folder = data_dir / "threads" / name
        folder.mkdir()
        (folder / "thread.json").write_text(json.dumps(jan_thread(name)))
        make(folder / "messages.jsonl")
    await append(path, line("msg_after", tid, "still watched") + b"\n")
    await wait_for(lambda: shows(client, tid, ["msg_after"]), what="an append beside a FIFO")
    for name in odd:
        resp = await asyncio.wait_for(client.get(f"/v1/threads/{name}/messages"), 5)
        assert resp.status == 200 and (await resp.json())["data"] == []
        assert (await client.get(f"/v1/threads/{name}")).status == 200
        resp = await asyncio.wait_for(client.post(
            f"/v1/threads/{name}/messages", json={"role": "user", "content": "x"}), 5)
        assert resp.status == 409, await resp.text()
        err = (await resp.json())["error"]
        assert err["message"] == (f"Thread '{name}' cannot be written: its messages.jsonl is "
                                  "not a regular file.")
        assert str(data_dir) not in err["message"]
        assert f"{name}/messages.jsonl is not a regular file" in caplog.text
    await append(path, line("msg_later", tid, "and still") + b"\n")
    await wait_for(lambda: shows(client, tid, ["msg_after", "msg_later"]), what="a later append")


async def test_own_appends_are_recognised_as_indexed_and_others_are_not(
        make_client: MakeClient) -> None:
    """The watcher skips a sync when the files are exactly as indexed (this server's own appends
    are indexed from the bytes written); anything another program does is synced."""
    client = await make_client()
    thread = await (await client.post("/v1/threads", json={})).json()
    for text in ("one", "two"):
        resp = await client.post(f"/v1/threads/{thread['id']}/messages",
                                 json={"role": "user", "content": text})
        assert resp.status == 200
    catalog, indexer = client.app[CATALOG], client.app[INDEXER]
    await wait_for(lambda: indexer.is_current(thread["id"]), what="own appends indexed")
    path = catalog.get(thread["id"]).folder / "messages.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"id":"ext_1","role":"user","content":"from elsewhere"}\n')
    assert not indexer.is_current(thread["id"])
    await wait_for(lambda: len(catalog.get(thread["id"]).messages) == 3, what="the watcher")
    assert indexer.is_current(thread["id"])


async def test_a_folder_name_that_is_not_utf8_does_not_stop_the_watch(
        make_client: MakeClient, data_dir: Path) -> None:
    """watchfiles cannot report a path that is not UTF-8 and fails the whole batch with it (and
    again at each change there); the watcher goes on by polling, so other threads' changes are
    still seen in milliseconds, not at the next 30 s reconcile."""
    client = await make_client()
    tid, path = await new_thread(client, data_dir)
    bad = os.path.join(os.fsencode(data_dir / "threads"), b"bad\xffname")
    os.mkdir(bad)
    for i in range(3):
        with open(os.path.join(bad, b"messages.jsonl"), "ab") as f:
            f.write(line(f"msg_bad{i}", "bad", "x") + b"\n")
        await append(path, line(f"msg_ok{i}", tid, "seen") + b"\n")
        await wait_for(lambda i=i: shows(client, tid, [f"msg_ok{j}" for j in range(i + 1)]),
                       timeout=3.0, what="an append beside the undecodable folder")
    watcher = (await health(client))["watcher"]
    assert watcher["running"] is True and watcher["polling"] is True
