"""Server-sent events: live messages from every writer, updates, deletions, resume without gaps."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from service.events.journal import Record
from service.events.order import HOLD_SECONDS
from service.feed import Change
from service.keys import FEED, HUB
from service.store.rewrite import rewrite_message

from .jan import jan_message, jan_thread, write_thread
from .sse import SseReader

JSON = {"Content-Type": "application/json"}


@asynccontextmanager
async def stream(server: TestServer, path: str, headers: dict[str, str] | None = None
                 ) -> AsyncIterator[SseReader]:
    async with aiohttp.ClientSession() as s, s.get(server.make_url(path),
                                                   headers=headers or {}) as resp:
        assert resp.status == 200, await resp.text()
        yield SseReader(resp)


async def post(server: TestServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(server.make_url(path), json=body) as resp:
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


async def new_thread(server: TestServer) -> str:
    return str((await post(server, "/v1/threads", {}))["id"])


async def say(server: TestServer, thread_id: str, text: str) -> dict[str, Any]:
    return await post(server, f"/v1/threads/{thread_id}/messages",
                      {"role": "user", "content": text})


async def delete(server: TestServer, path: str) -> None:
    async with aiohttp.ClientSession() as s, s.delete(server.make_url(path)) as resp:
        assert resp.status == 200, await resp.text()


async def marker(server: TestServer) -> tuple[dict[str, Any], str]:
    """A message in a thread of its own, and its event's id: a point to resume after."""
    async with stream(server, "/v1/events") as events:
        msg = await say(server, await new_thread(server), "marker")
        seen = await events.until(lambda e: e.event == "thread.message.created")
    return msg, str(seen.id)


async def thread_with_backup(server: TestServer, data_dir: Path
                             ) -> tuple[str, list[dict[str, Any]], Path]:
    """A thread of three messages and a copy of its folder (a backup to restore later)."""
    import shutil
    thread_id = await new_thread(server)
    sent = [await say(server, thread_id, f"m{i}") for i in range(3)]
    backup = data_dir.parent / "backup"
    shutil.copytree(data_dir / "threads" / thread_id, backup)
    return thread_id, sent, backup


def append_external(data_dir: Path, thread_id: str, message_id: str, text: str) -> None:
    line = json.dumps({"id": message_id, "role": "assistant", "content": text,
                       "created": 1717666240000, "status": "ready"})
    with open(data_dir / "threads" / thread_id / "messages.jsonl", "a") as f:
        f.write(line + "\n")


def text_of(event_json: dict[str, Any]) -> str:
    return str(event_json["content"][0]["text"]["value"])


async def test_stream_headers_and_pings(start_server: Callable[..., Any]) -> None:
    server = await start_server(sse_ping_seconds=0.1)
    thread_id = await new_thread(server)
    async with aiohttp.ClientSession() as s, s.get(
            server.make_url(f"/v1/threads/{thread_id}/events")) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["X-Accel-Buffering"] == "no"
        # Headers and a first comment at once, before any event or ping is due.
        assert await asyncio.wait_for(resp.content.readline(), 5) == b": connected\n"
        assert await asyncio.wait_for(resp.content.readline(), 5) == b"\n"
        assert await asyncio.wait_for(resp.content.readline(), 5) == b": ping\n"


async def test_api_and_external_messages_arrive_in_order(server: TestServer, data_dir: Path
                                                         ) -> None:
    thread_id = await new_thread(server)
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        first = await say(server, thread_id, "from the API")
        append_external(data_dir, thread_id, "jan_ext_1", "from another program")
        second = await say(server, thread_id, "from the API again")
        got = await events.take(3)
    assert [e.event for e in got] == ["thread.message.created"] * 3
    assert [e.json["id"] for e in got] == [first["id"], "jan_ext_1", second["id"]]
    assert got[0].json == first  # exactly the REST object
    assert text_of(got[1].json) == "from another program"
    ids = [int(e.id or 0) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_events_go_out_when_the_line_is_in_the_file_not_after_the_fsync(
        start_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer waits for the disk; the event (and a get) do not: once written, the line is
    what every reader of the file sees. (No watcher: it would see the line too, and send it.)"""
    server = await start_server(fsync="always", watch=False)
    thread_id = await new_thread(server)
    slow = os.fdatasync
    synced: list[float] = []

    def fdatasync(fd: int) -> None:
        time.sleep(0.5)
        slow(fd)
        synced.append(time.monotonic())
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        create = asyncio.create_task(say(server, thread_id, "before the disk says yes"))
        got = await events.next(timeout=5)
        seen = time.monotonic()
        assert not create.done() and not synced  # the event came while the fsync still ran
        async with aiohttp.ClientSession() as s, s.get(server.make_url(
                f"/v1/threads/{thread_id}/messages/{got.json['id']}")) as resp:
            assert resp.status == 200 and await resp.json() == got.json
        message = await create
    assert synced and synced[0] > seen  # the answer came after the fsync
    assert got.json == message


async def test_update_and_delete_events_carry_rest_objects(server: TestServer) -> None:
    thread_id = await new_thread(server)
    msg = await say(server, thread_id, "hello")
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        updated = await post(server, f"/v1/threads/{thread_id}/messages/{msg['id']}",
                             {"metadata": {"k": "v"}})
        await delete(server, f"/v1/threads/{thread_id}/messages/{msg['id']}")
        up, gone = await events.take(2)
    assert up.event == "thread.message.updated" and up.json == updated
    assert gone.event == "thread.message.deleted"
    assert gone.json == {"id": msg["id"], "object": "thread.message.deleted", "deleted": True,
                         "thread_id": thread_id}
    assert up.id and gone.id


async def test_resume_mid_thread_has_no_gap_and_no_duplicate(server: TestServer) -> None:
    thread_id = await new_thread(server)
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        sent = [await say(server, thread_id, f"m{i}") for i in range(5)]
        got = await events.take(5)
    resume_from = got[2].id
    later = [await say(server, thread_id, f"later{i}") for i in range(2)]
    for how in ("header", "query"):
        path = f"/v1/threads/{thread_id}/events"
        headers = {}
        if how == "header":
            headers["Last-Event-ID"] = str(resume_from)
        else:
            path += f"?last_event_id={resume_from}"
        async with stream(server, path, headers) as events:
            replayed = await events.take(4)
            assert await events.nothing_for(0.3)
        assert [e.json["id"] for e in replayed] == [m["id"] for m in sent[3:] + later]


async def test_resume_after_restart_includes_messages_written_while_down(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    server = await start_server()
    thread_id = await new_thread(server)
    async with stream(server, "/v1/events") as events:
        before = [await say(server, thread_id, f"b{i}") for i in range(3)]
        got = await events.take(3)
    assert [e.json["id"] for e in got] == [m["id"] for m in before]
    last_id = got[-1].id
    await server.close()

    append_external(data_dir, thread_id, "while_down", "written with no server running")
    server2 = await start_server()
    after = await say(server2, thread_id, "after restart")
    async with stream(server2, "/v1/events", {"Last-Event-ID": str(last_id)}) as events:
        replayed = await events.take(2)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in replayed] == ["while_down", after["id"]]


@pytest.mark.parametrize("deleted", ["created", "old"])
async def test_a_restart_after_the_newest_message_was_deleted_replays_nothing_old(
        start_server: Callable[..., Any], data_dir: Path, deleted: str) -> None:
    """The thread's latest journaled message (one created through the API, or the last one of a
    Jan thread older than the journal) is deleted: after a restart its older messages are not
    new, and what was written while no server ran still is."""
    thread_id, old = jan_folder_thread(data_dir, 5)
    server = await start_server()
    other = await new_thread(server)
    async with stream(server, "/v1/events") as events:
        made = await say(server, thread_id if deleted == "created" else other, "new")
        seen = await events.until(lambda e: e.event == "thread.message.created")
    gone = made["id"] if deleted == "created" else old[-1]
    await delete(server, f"/v1/threads/{thread_id}/messages/{gone}")
    await server.close()
    for restart in range(2):
        server = await start_server()
        async with stream(server, "/v1/events", {"Last-Event-ID": str(seen.id)}) as events:
            assert await events.nothing_for(0.3), f"old messages replayed (restart {restart})"
        await server.close()
    append_external(data_dir, thread_id, "while_down", "written with no server running")
    server = await start_server()
    async with stream(server, "/v1/events", {"Last-Event-ID": str(seen.id)}) as events:
        replayed = await events.take(1)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in replayed] == ["while_down"]


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
async def test_a_thread_restored_from_a_backup_gets_new_event_ids(
        start_server: Callable[..., Any], data_dir: Path, restart: bool) -> None:
    """Deleted, then copied back with the same ids (also after a restart in between: the
    deletion is in the journal): its messages are created again, after events a client has
    already seen, so they carry new ids; a resume replays them, and each only once."""
    import shutil
    server = await start_server()
    thread_id, sent, backup = await thread_with_backup(server, data_dir)
    await delete(server, f"/v1/threads/{thread_id}")
    mark, mark_id = await marker(server)
    if restart:
        await server.close()
        server = await start_server()
    async with stream(server, "/v1/events") as events:
        shutil.copytree(backup, data_dir / "threads" / thread_id)
        live = [await events.until(lambda e: e.event == "thread.message.created")
                for _ in range(3)]
    assert [e.json["id"] for e in live] == [m["id"] for m in sent]
    assert all(int(e.id or 0) > int(mark_id) for e in live)
    async with stream(server, "/v1/events", {"Last-Event-ID": mark_id}) as events:
        replayed = await events.take(3)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in replayed] == [m["id"] for m in sent]
    async with stream(server, "/v1/events", {"Last-Event-ID": "0"}) as events:
        everything = [e.json["id"] for e in await events.take(4)]
        assert await events.nothing_for(0.3)  # not the restored messages' old records again
    assert everything == [mark["id"], *(m["id"] for m in sent)]


async def test_a_message_copied_back_while_no_server_ran_is_created_anew(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    server = await start_server()
    thread_id = await new_thread(server)
    sent = [await say(server, thread_id, f"m{i}") for i in range(3)]
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    saved = path.read_bytes()
    await delete(server, f"/v1/threads/{thread_id}/messages/{sent[1]['id']}")
    _, mark_id = await marker(server)
    await server.close()
    path.write_bytes(saved)  # the backup, copied back while no server runs
    for _ in range(2):  # and once journaled, not again at the next start
        server = await start_server()
        async with stream(server, "/v1/events", {"Last-Event-ID": mark_id}) as events:
            replayed = await events.take(1)
            assert await events.nothing_for(0.3)
        assert replayed[0].json["id"] == sent[1]["id"]
        await server.close()


async def test_a_process_that_has_not_read_the_journal_since_replays_a_restored_thread(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """Two processes; the second sees nothing of the delete and the restore (its watcher polls
    once a minute) and has not appended since: its memory holds the messages' old ids. A resume
    through it must still replay the new records, not skip them for the old ones."""
    import shutil
    one = await start_server()
    two = await start_server(watch_polling=True, watch_poll_interval_ms=60_000)
    thread_id, sent, backup = await thread_with_backup(two, data_dir)
    await delete(one, f"/v1/threads/{thread_id}")
    _, mark_id = await marker(one)
    async with stream(one, "/v1/events") as events:
        shutil.copytree(backup, data_dir / "threads" / thread_id)
        [await events.until(lambda e: e.event == "thread.message.created") for _ in range(3)]
    async with stream(two, "/v1/events", {"Last-Event-ID": mark_id}) as events:
        replayed = await events.take(3)
    assert [e.json["id"] for e in replayed] == [m["id"] for m in sent]


async def test_after_message_starts_a_thread_stream_after_it(server: TestServer) -> None:
    thread_id = await new_thread(server)
    sent = [await say(server, thread_id, f"m{i}") for i in range(4)]
    async with stream(server, f"/v1/threads/{thread_id}/events?after={sent[1]['id']}") as events:
        replayed = await events.take(2)
        live = await say(server, thread_id, "live")
        nxt = await events.next()
    assert [e.json["id"] for e in replayed] == [sent[2]["id"], sent[3]["id"]]
    assert nxt.json["id"] == live["id"]


def jan_folder_thread(data_dir: Path, count: int) -> tuple[str, list[str]]:
    """A Jan thread written before any Threadline ran on the folder (no journal yet)."""
    thread_id = "jan_1717666232"
    ids = [f"old_{i}" for i in range(count)]
    write_thread(data_dir, thread_id, jan_thread(thread_id),
                 [jan_message(mid, thread_id, mid) for mid in ids])
    return thread_id, ids


async def test_an_after_replay_of_messages_older_than_the_journal_resumes_where_it_stopped(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """Messages from before the journal have no journal record: their replayed events carry
    their position, so a client dropped mid-replay resumes after the last one it saw."""
    thread_id, old = jan_folder_thread(data_dir, 6)
    server = await start_server()
    path = f"/v1/threads/{thread_id}/events?after={old[0]}"
    async with stream(server, path) as events:
        got = await events.take(2)
    assert [e.json["id"] for e in got] == old[1:3]
    assert got[0].id != got[1].id
    live = await say(server, thread_id, "written while the client was away")
    # EventSource reconnects to the same URL with the last id it saw.
    async with stream(server, path, {"Last-Event-ID": str(got[-1].id)}) as events:
        rest = await events.take(4)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in rest] == [*old[3:], live["id"]]
    # The global stream has no such positions: a clear 400, not a replay of everything.
    async with aiohttp.ClientSession() as s, s.get(
            server.make_url("/v1/events"), headers={"Last-Event-ID": str(got[-1].id)}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "last_event_id"


async def test_resuming_after_a_message_since_deleted_replays_the_threads_journaled_ones(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    thread_id, old = jan_folder_thread(data_dir, 4)
    server = await start_server()
    async with stream(server, f"/v1/threads/{thread_id}/events?after={old[0]}") as events:
        got = await events.take(1)
    await delete(server, f"/v1/threads/{thread_id}/messages/{old[1]}")
    new = await say(server, thread_id, "new")
    async with stream(server, f"/v1/threads/{thread_id}/events",
                      {"Last-Event-ID": str(got[0].id)}) as events:
        rest = await events.take(1)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in rest] == [new["id"]]


async def test_global_stream_sees_every_thread(server: TestServer) -> None:
    async with stream(server, "/v1/events") as events:
        a = await new_thread(server)
        b = await new_thread(server)
        ma = await say(server, a, "in a")
        mb = await say(server, b, "in b")
        got = await events.take(4)
    assert [(e.event, e.json["id"]) for e in got] == [
        ("thread.created", a), ("thread.created", b),
        ("thread.message.created", ma["id"]), ("thread.message.created", mb["id"])]


async def test_thread_stream_only_carries_its_thread(server: TestServer) -> None:
    a, b = await new_thread(server), await new_thread(server)
    async with stream(server, f"/v1/threads/{a}/events") as events:
        await say(server, b, "elsewhere")
        mine = await say(server, a, "here")
        got = await events.next()
    assert got.json["id"] == mine["id"]


async def test_another_threadline_process_writes_show_up(start_server: Callable[..., Any]
                                                         ) -> None:
    one, two = await start_server(), await start_server()
    thread_id = await new_thread(one)
    async with stream(one, f"/v1/threads/{thread_id}/events") as events:
        msg = await say(two, thread_id, "written through the second process")
        got = await events.next()
    assert got.json == msg


async def test_with_two_processes_a_stream_sends_creations_in_journal_order(
        start_server: Callable[..., Any]) -> None:
    """Process one's watcher lags (polling every 1.5 s): process two journals x, then one
    journals its own y. One's stream must not send y before x (a client dropping between the
    two would resume after y and never get x): y waits, x's thread is synced at once, and both
    go out in id order, well before the watcher would have seen x."""
    one = await start_server(watch_polling=True, watch_poll_interval_ms=1500)
    two = await start_server()
    tx, ty = await new_thread(two), await new_thread(one)
    await asyncio.sleep(2)  # one has seen thread tx
    async with stream(one, "/v1/events") as events:
        started = time.monotonic()
        x = await say(two, tx, "x through two")
        y = await say(one, ty, "y through one")
        got = [await events.until(lambda e: e.event == "thread.message.created")
               for _ in range(2)]
        took = time.monotonic() - started
    assert [e.json["id"] for e in got] == [x["id"], y["id"]]
    assert int(got[0].id or 0) < int(got[1].id or 0)
    assert took < 1.2, f"y waited {took:.2f}s: x came by the watcher, not by the sync"


async def test_with_two_processes_taking_writes_ids_never_go_backwards(
        start_server: Callable[..., Any]) -> None:
    one, two = await start_server(), await start_server()
    tx, ty = await new_thread(two), await new_thread(one)
    await asyncio.sleep(0.3)
    count = 30
    async with stream(one, "/v1/events") as events:
        for i in range(count):
            await asyncio.gather(say(two, tx, f"x{i}"), say(one, ty, f"y{i}"))
        got = [await events.until(lambda e: e.event == "thread.message.created")
               for _ in range(2 * count)]
    ids = [int(e.id or 0) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == 2 * count


async def test_a_creation_reaches_the_stream_when_another_process_rewrites_the_file_meanwhile(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """Another process deletes a message (an atomic rewrite) between the moment this one
    indexes its own creation and the moment its hub builds the event: the index is then a
    rewrite behind the file, and the read for the event found other bytes at the message's
    offset. The event was dropped (1-2% of creations with deletes going on in a second
    process); the thread is synced and the event built from the file as it is now."""
    server = await start_server(watch=False)
    thread_id = await new_thread(server)
    first = await say(server, thread_id, "deleted by another process")
    folder = data_dir / "threads" / thread_id

    def rewrite_behind(change: Change) -> None:
        if change.kind == "thread.message.created" and change.message_id != first["id"]:
            rewrite_message(folder, first["id"], lambda old: None, durable=False)
    server.app[FEED].subscribe(rewrite_behind)  # after the hub's: before its pump runs
    async with stream(server, "/v1/events") as events:
        msg = await say(server, thread_id, "must reach the stream")
        got = await events.until(lambda e: e.event == "thread.message.created")
    assert got.json == msg


async def test_a_creation_seen_before_another_process_deleted_it_is_not_journaled_again(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """One indexes x from the file as it was; two deletes x (rewrite, then its deletion record)
    before one's hub journals x. x's latest record is its deletion, so one's creation is in
    doubt: a sync finds x gone, so no second creation record (which gave x a new id, and the
    streams of one a created event for a message deleted before) and no created event."""
    one, two = await start_server(watch=False), await start_server(watch=False)
    thread_id = await new_thread(two)
    x = await say(two, thread_id, "x")
    folder = data_dir / "threads" / thread_id
    journal = data_dir / ".threadline" / "events.jsonl"

    def two_deletes_x(change: Change) -> None:
        if change.kind == "thread.message.created" and change.message_id == x["id"]:
            rewrite_message(folder, x["id"], lambda old: None, durable=False)
            two.app[HUB].journal.append([Record(t=thread_id, m=x["id"], d=True)])
    one.app[FEED].subscribe(two_deletes_x)  # runs before one's hub journals x
    async with stream(one, "/v1/events") as events:
        async with aiohttp.ClientSession() as s, s.get(one.make_url(
                f"/v1/threads/{thread_id}/messages/{x['id']}")) as resp:
            assert resp.status in (200, 404)  # one syncs the thread and indexes x
        got = await events.until(lambda e: e.event.startswith("thread.message."))
    assert (got.event, got.json["id"]) == ("thread.message.deleted", x["id"])
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [r.get("d", False) for r in records if r.get("m") == x["id"]] == [False, True, True]


async def test_an_event_held_for_another_processs_creation_goes_once_that_is_found_gone(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """Two journals x (a line another program appended), which a rewrite then removes before
    one has seen it (and before two notices). One's own y waits for x: the sync of x's thread
    does not find it, so y goes then, not when the hold runs out."""
    one, two = await start_server(watch=False), await start_server(watch=False)
    tx, ty = await new_thread(two), await new_thread(one)
    append_external(data_dir, tx, "x_gone", "x")
    async with aiohttp.ClientSession() as s, s.get(  # two indexes (and journals) x
            two.make_url(f"/v1/threads/{tx}/messages/x_gone")) as resp:
        assert resp.status == 200
    async with stream(two, f"/v1/threads/{tx}/events", {"Last-Event-ID": "0"}) as events:
        await events.until(lambda e: e.json.get("id") == "x_gone")  # journaled by now
    rewrite_message(data_dir / "threads" / tx, "x_gone", lambda old: None, durable=False)
    await _goes_without_waiting(one, ty, "y waits for x only until x is known gone")


async def test_an_event_held_for_a_creation_this_process_indexed_before_goes_after_a_sync(
        start_server: Callable[..., Any], data_dir: Path) -> None:
    """Two deletes x and a backup brings it back, faster than one notices: two journals x anew.
    One still has x indexed, unchanged, so it never journals it again; its own y waits for x
    only until a sync of x's thread shows x is not coming through its feed."""
    one, two = await start_server(watch=False), await start_server(watch=False)
    tx, ty = await new_thread(one), await new_thread(one)
    x = await say(one, tx, "x")
    path = data_dir / "threads" / tx / "messages.jsonl"
    backup = path.read_bytes()
    await delete(two, f"/v1/threads/{tx}/messages/{x['id']}")
    tmp = path.with_name("restore.tmp")
    tmp.write_bytes(backup)
    os.replace(tmp, path)
    async with aiohttp.ClientSession() as s, s.get(  # two indexes x again and journals it anew
            two.make_url(f"/v1/threads/{tx}/messages/{x['id']}")) as resp:
        assert resp.status == 200
    journal = data_dir / ".threadline" / "events.jsonl"
    for _ in range(250):
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        if [r.get("d", False) for r in records if r.get("m") == x["id"]] == [False, True, False]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"x not journaled anew: {records}")
    await _goes_without_waiting(one, ty, "y")


async def _goes_without_waiting(server: TestServer, thread_id: str, text: str) -> None:
    """A message created now reaches a stream well within the hold for older creations."""
    async with stream(server, "/v1/events") as events:
        started = time.monotonic()
        y = await say(server, thread_id, text)
        got = await events.until(lambda e: e.event == "thread.message.created")
        took = time.monotonic() - started
    assert got.json == y
    assert took < HOLD_SECONDS / 2, f"y waited {took:.2f}s"


async def _slow_syncs(server: TestServer) -> asyncio.Event:
    """The hub's thread syncs wait for the returned gate (a slow disk, a busy process): the
    window in which an event is held for another process's older creation stays open."""
    hub = server.app[HUB]
    gate, sync = asyncio.Event(), hub._sync

    async def slow(thread_id: str, stale: Any = None) -> Any:
        await gate.wait()
        return await sync(thread_id, stale)
    hub._sync = slow
    return gate


async def test_a_stream_that_subscribes_while_an_event_is_held_gets_it_in_journal_order(
        start_server: Callable[..., Any]) -> None:
    one, two = await start_server(watch=False), await start_server(watch=False)
    tx, ty = await new_thread(one), await new_thread(two)
    await post(two, f"/v1/threads/{tx}/messages", {"role": "user", "content": "two knows tx"})
    gate = await _slow_syncs(two)
    async with stream(two, "/v1/events") as early:
        x = await say(one, tx, "x")  # journaled by one; two has not indexed it
        y = await say(two, ty, "y")  # journaled by two after x: held until x arrives
        assert two.app[HUB].order.held
        async with stream(two, "/v1/events") as late:  # live from now: y is already queued
            await asyncio.sleep(0.05)
            gate.set()
            z = await say(two, ty, "z")
            got_late = [await late.until(lambda e: e.event == "thread.message.created")
                        for _ in range(3)]
        got_early = [await early.until(lambda e: e.event == "thread.message.created")
                     for _ in range(3)]
    order = [x["id"], y["id"], z["id"]]
    assert [e.json["id"] for e in got_early] == order
    # Not x then z: a resume after z would never see y.
    assert [e.json["id"] for e in got_late] == order


async def test_a_stream_gets_a_held_event_released_on_its_own_after_an_older_one(
        start_server: Callable[..., Any]) -> None:
    """y waits for x and w (older creations of another process); the late stream subscribes
    meanwhile. x arrives and goes out alone (w still holds y); w never comes in time, so y goes
    out alone after HOLD_SECONDS. The late stream had x: it must have y too, before z."""
    one, two = await start_server(watch=False), await start_server(watch=False)
    tx, tw, ty = await new_thread(one), await new_thread(one), await new_thread(two)
    for t in (tx, tw):
        await post(two, f"/v1/threads/{t}/messages", {"role": "user", "content": "two knows"})
    hub = two.app[HUB]
    gates = {tx: asyncio.Event(), tw: asyncio.Event()}
    sync = hub._sync

    async def slow(thread_id: str, stale: Any = None) -> Any:
        if thread_id in gates:
            await gates[thread_id].wait()
        return await sync(thread_id, stale)
    hub._sync = slow
    async with stream(two, "/v1/events"):  # someone listening: events are held, not dropped
        x = await say(one, tx, "x")
        await say(one, tw, "w")
        y = await say(two, ty, "y")
        await asyncio.sleep(0.05)
        assert hub.order.held
        async with stream(two, "/v1/events") as late:
            await asyncio.sleep(0.05)
            gates[tx].set()
            await asyncio.sleep(HOLD_SECONDS + 0.3)
            z = await say(two, ty, "z")
            got = [await late.until(lambda e: e.event == "thread.message.created")
                   for _ in range(3)]
        gates[tw].set()
    assert [e.json["id"] for e in got] == [x["id"], y["id"], z["id"]]


async def test_a_resume_replays_another_processs_creation_this_one_has_not_indexed(
        start_server: Callable[..., Any]) -> None:
    one, two = await start_server(watch=False), await start_server(watch=False)
    tx = await new_thread(one)
    await say(two, tx, "two knows tx")
    async with stream(two, "/v1/events", {"Last-Event-ID": "0"}) as events:
        seen = await events.until(lambda e: e.event == "thread.message.created")
    x = await say(one, tx, "x, journaled by one")  # two has no watcher: not indexed there
    async with stream(two, "/v1/events", {"Last-Event-ID": str(seen.id)}) as events:
        got = await events.until(lambda e: e.event == "thread.message.created")
        assert await events.nothing_for(0.3)
    assert got.json["id"] == x["id"]


@pytest.mark.parametrize(("chunks_taken", "gone"), [
    (1, [5, 2]),  # the last message sent, and one before it
    (2, [6, 7, 8, 9, 10, 3]),  # the whole last chunk sent, and one before it
], ids=["last-message", "whole-last-chunk"])
async def test_an_after_replay_goes_on_after_a_rewrite_that_deleted_what_it_sent_last(
        start_server: Callable[..., Any], data_dir: Path, monkeypatch: pytest.MonkeyPatch,
        chunks_taken: int, gone: list[int]) -> None:
    from service.events import replay
    from service.keys import CATALOG
    monkeypatch.setattr(replay, "CHUNK", 5)
    thread_id, old = jan_folder_thread(data_dir, 14)
    server = await start_server(watch=False)
    chunks = server.app[HUB].replay_after_message(server.app[CATALOG].get(thread_id), 0)
    given = [mid for _ in range(chunks_taken) for _, _, mid in await chunks.__anext__()]
    assert given == old[1:1 + 5 * chunks_taken]
    for i in gone:
        await delete(server, f"/v1/threads/{thread_id}/messages/{old[i]}")
    rest = [mid async for chunk in chunks for _, _, mid in chunk]
    assert rest == old[1 + 5 * chunks_taken:]


async def test_creations_of_other_processes_are_not_remembered_without_subscribers(
        start_server: Callable[..., Any]) -> None:
    one, two = await start_server(watch=False), await start_server(watch=False)
    tx, ty = await new_thread(one), await new_thread(two)
    for i in range(50):
        await say(one, tx, f"x{i}")
    await say(two, ty, "two reads the journal: 50 creations it has not seen")
    assert len(two.app[HUB].journal._unseen) == 50
    await asyncio.sleep(HOLD_SECONDS + 0.1)
    await say(two, ty, "and again")
    await asyncio.sleep(0.05)
    assert not two.app[HUB].journal._unseen


async def test_unknown_thread_is_a_json_404_before_streaming(server: TestServer) -> None:
    async with aiohttp.ClientSession() as s, s.get(
            server.make_url("/v1/threads/nope/events")) as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert body["error"]["message"] == "No thread found with id 'nope'."


async def test_head_on_a_stream_is_its_headers_without_a_stream(server: TestServer) -> None:
    thread_id = await new_thread(server)
    async with aiohttp.ClientSession() as s:
        for path in ("/v1/events", f"/v1/threads/{thread_id}/events"):
            async with s.head(server.make_url(path)) as resp:
                assert resp.status == 200, path
                assert resp.content_type == "text/event-stream"
                assert resp.headers["Cache-Control"] == "no-cache"
                assert await resp.read() == b""
        async with s.head(server.make_url("/v1/threads/nope/events")) as resp:
            assert resp.status == 404
        for query in ("?after=nope", "?last_event_id=x"):  # what GET refuses, HEAD refuses
            async with s.head(server.make_url(f"/v1/threads/{thread_id}/events{query}")) as resp:
                assert resp.status == 400, query
    assert not server.app[HUB].subscribers


async def test_bad_last_event_id_is_400(server: TestServer) -> None:
    for query, headers in (("", {"Last-Event-ID": "x;y"}), ("?last_event_id=%C2%B2", {}),
                           ("?last_event_id=%FF", {})):
        async with aiohttp.ClientSession() as s, s.get(
                server.make_url("/v1/events" + query), headers=headers) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_an_id_beyond_the_journal_resumes_from_now_and_mutes_nothing(
        server: TestServer) -> None:
    """An id from a removed or foreign journal must not hide the events that follow."""
    thread_id = await new_thread(server)
    async with stream(server, f"/v1/threads/{thread_id}/events",
                      {"Last-Event-ID": "999999999"}) as events:
        msg = await say(server, thread_id, "after a bogus resume id")
        got = await events.next()
    assert got.json["id"] == msg["id"]


@pytest.mark.parametrize("limits", [{"sse_queue_limit": 8},  # by count of events
                                    {"sse_queue_mb": 1}],  # by their bytes, far below 1,000
                         ids=["events", "bytes"])
async def test_stalled_reader_is_dropped_while_others_keep_receiving(
        start_server: Callable[..., Any], limits: dict[str, int]) -> None:
    server = await start_server(**limits)
    hub = server.app[HUB]
    thread_id = await new_thread(server)
    # A client that connects and never reads: a tiny receive buffer, so the server's writes stall.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((server.host, server.port))
    sock.sendall(f"GET /v1/threads/{thread_id}/events HTTP/1.1\r\n"
                 "Host: 127.0.0.1\r\n\r\n".encode())
    try:
        async with stream(server, f"/v1/threads/{thread_id}/events") as events:
            deadline = time.monotonic() + 5
            while len(hub.subscribers) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(hub.subscribers) == 2
            big = "x" * 50_000
            received = 0
            for i in range(120):
                await say(server, thread_id, f"{i} {big}")
                while True:  # the healthy reader keeps up
                    ev = await events.next()
                    if ev.event == "thread.message.created":
                        received += 1
                        break
            assert received == 120
            deadline = time.monotonic() + 5
            while len(hub.subscribers) > 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(hub.subscribers) == 1  # the stalled one was dropped, the reader stays
    finally:
        sock.close()


async def test_shutdown_with_open_streams_is_prompt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "service", "--data-dir", str(data),
                             "--port", str(port), "--log-level", "warning"],
                            env={**os.environ, "THREADLINE_WATCH": "true"})
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as s:
            for _ in range(200):
                try:
                    async with s.get(url + "/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            async with s.get(url + "/v1/events") as r1, s.get(url + "/v1/events") as r2:
                assert r1.status == r2.status == 200
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
                took = time.monotonic() - started
        assert code == 0
        assert took < 1.5, f"shutdown took {took:.2f}s with open streams"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_shutdown_is_prompt_with_a_stream_whose_client_reads_nothing(tmp_path: Path
                                                                        ) -> None:
    """A stalled client's handler is stuck writing to it: the shutdown cuts that connection
    rather than wait out aiohttp's shutdown timeout."""
    from .procs import ServerProcess
    server = ServerProcess(tmp_path / "data", tmp_path / "work")
    await server.start()
    stalled = socket.socket()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(server.url + "/v1/threads", json={}) as r:
                thread_id = (await r.json())["id"]
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", server.port))
            stalled.sendall(b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            await asyncio.sleep(0.3)
            for i in range(20):  # ~4 MB the stalled client never reads
                async with s.post(server.url + f"/v1/threads/{thread_id}/messages",
                                  json={"role": "user", "content": f"{i} " + "x" * 200_000}
                                  ) as r:
                    assert r.status == 200
            await asyncio.sleep(0.3)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, server.proc.wait, 15)
        took = time.monotonic() - started
    finally:
        stalled.close()
        server.stop()
    assert code == 0
    assert took < 1.5, f"shutdown took {took:.2f}s with a stalled stream"


async def test_events_reach_a_stream_of_the_shipped_server_process(tmp_path: Path) -> None:
    """`python -m service` as users run it (uvloop, events written straight to the socket)."""
    from .procs import ServerProcess
    server = ServerProcess(tmp_path / "data", tmp_path / "work")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/v1/threads", json={}) as resp:
                thread_id = (await resp.json())["id"]
            async with http.get(server.url + f"/v1/threads/{thread_id}/events") as r1, \
                    http.get(server.url + "/v1/events") as r2:
                one, every = SseReader(r1), SseReader(r2)
                sent = []
                for i in range(5):
                    async with http.post(server.url + f"/v1/threads/{thread_id}/messages",
                                         json={"role": "user", "content": f"m{i}"}) as resp:
                        sent.append((await resp.json())["id"])
                got_one = [e.json["id"] for e in await one.take(5)]
                got_every = [e.json["id"] for e in await every.take(5)]
        assert got_one == sent and got_every == sent
    finally:
        server.stop()


async def test_a_resume_from_far_back_replays_every_message_in_order(
        server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replays read the journal a block at a time and build and write events a chunk at a time
    (memory stays bounded however far back); none may be lost at block or chunk edges. Blocks
    are made small here, so there are dozens, each ending mid-record."""
    from service.api.sse import REPLAY_CHUNK
    from service.events import journal, replay
    monkeypatch.setattr(journal, "READ_BLOCK", 1000)
    monkeypatch.setattr(replay, "CHUNK", 7)
    thread_id = await new_thread(server)
    other = await new_thread(server)
    count = REPLAY_CHUNK + 44
    async with aiohttp.ClientSession() as s:
        sent = []
        for i in range(count):
            async with s.post(server.make_url(f"/v1/threads/{thread_id}/messages"),
                              json={"role": "user", "content": f"m{i}"}) as resp:
                sent.append((await resp.json())["id"])
            if i % 3 == 0:
                await say(server, other, f"other {i}")
    async with stream(server, f"/v1/threads/{thread_id}/events", {"Last-Event-ID": "0"}
                      ) as events:
        got = [e.json["id"] for e in await events.take(count)]
        assert await events.nothing_for(0.3)
    assert got == sent
    async with stream(server, f"/v1/threads/{thread_id}/events?after={sent[0]}") as events:
        got = [e.json["id"] for e in await events.take(count - 1)]
        assert await events.nothing_for(0.3)
    assert got == sent[1:]
    async with stream(server, "/v1/events", {"Last-Event-ID": "0"}) as events:
        got = [e.json["id"] for e in await events.take(count + (count + 2) // 3)]
        assert await events.nothing_for(0.3)
        (sub,) = server.app[HUB].subscribers
        assert not sub.sent_ids  # journaled ones are covered by the last id: memory stays flat
        live = await say(server, thread_id, "live after the replay")
        assert (await events.next()).json["id"] == live["id"]
    assert [m for m in got if m in set(sent)] == sent


async def _read_until(reader: asyncio.StreamReader, marker: bytes, timeout: float = 5.0) -> bytes:
    got = b""
    while marker not in got:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            break
        got += chunk
    return got


async def test_an_http10_stream_is_the_bare_event_stream(server: TestServer) -> None:
    """HTTP/1.0 has no chunked encoding: live events (written straight to the socket by the
    fan-out) must carry no chunk framing, exactly as the replayed and queued ones."""
    thread_id = await new_thread(server)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(f"GET /v1/threads/{thread_id}/events HTTP/1.0\r\n"
                     "Host: 127.0.0.1\r\n\r\n".encode())
        head = await _read_until(reader, b": connected\n\n")
        assert head.split(b"\r\n", 1)[0].endswith(b" 200 OK"), head
        assert b"transfer-encoding" not in head.lower()
        msg = await say(server, thread_id, "over HTTP/1.0")
        body = head + await _read_until(reader, b"}\n\n")
    finally:
        writer.close()
    frame = body.split(b": connected\n\n", 1)[1]
    lines = frame.split(b"\n")
    assert lines[0].startswith(b"id: ") and lines[1] == b"event: thread.message.created"
    assert json.loads(lines[2][len(b"data: "):]) == msg
    assert lines[3:] == [b"", b""]


async def test_a_stream_whose_client_left_is_unsubscribed(server: TestServer) -> None:
    hub = server.app[HUB]
    thread_id = await new_thread(server)
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        await say(server, thread_id, "one")
        await events.next()
        assert len(hub.subscribers) == 1
    deadline = time.monotonic() + 5
    while hub.subscribers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not hub.subscribers


async def test_events_wait_for_a_journal_locked_by_another_process(server: TestServer,
                                                                   data_dir: Path) -> None:
    """While another process holds the journal's lock the event waits for it (in a worker
    thread, not on the event loop), then comes with its journal id: resumable after it."""
    import fcntl
    thread_id = await new_thread(server)
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        first = await say(server, thread_id, "before")
        got_first = await events.next()
        fd = os.open(data_dir / ".threadline" / "events.jsonl", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            second = await say(server, thread_id, "while locked")
            assert await events.nothing_for(0.2)  # no id yet: it waits, the server does not
            fcntl.flock(fd, fcntl.LOCK_UN)
            got_second = await events.next()
        finally:
            os.close(fd)
    assert got_first.json["id"] == first["id"] and got_second.json["id"] == second["id"]
    assert int(got_second.id or 0) > int(got_first.id or 0)
    async with stream(server, f"/v1/threads/{thread_id}/events",
                      {"Last-Event-ID": str(got_first.id)}) as events:
        assert (await events.next()).json["id"] == second["id"]
        assert await events.nothing_for(0.2)


async def test_a_stream_resuming_during_a_fan_out_gets_its_events(server: TestServer) -> None:
    """A fan-out lets the event loop run between slices of streams; a stream that subscribes to
    resume meanwhile is not among those it writes to, and must be handed its events anyway."""
    from service.events.hub import CREATED, Event
    hub = server.app[HUB]
    event = Event(CREATED, "7", b'{"id":"m"}', "thread_a", 7, "m")
    other = Event("thread.updated", "7", b'{"id":"thread_b"}', "thread_b", 0, None)
    before = hub.subscribe(None)  # there when the fan-out starts
    seq = hub._seq
    fanning = asyncio.create_task(hub.fan_out([(seq + 1, event), (seq + 2, other)]))
    await asyncio.sleep(0)  # the fan-out is under way (it yields before writing)
    assert not fanning.done()
    mine = hub.subscribe("thread_a", resuming=True)
    every = hub.subscribe(None, resuming=True)
    live = hub.subscribe(None)
    await fanning
    try:
        assert await before.wait() == [event, other]
        assert await mine.wait() == [event]
        assert await every.wait() == [event, other]
        live.poke()
        assert await live.wait() == []  # it starts from now: nothing from before
    finally:
        for sub in (before, mine, every, live):
            hub.unsubscribe(sub)


def test_the_journal_closes_a_torn_line_and_reads_what_other_processes_appended(
        tmp_path: Path) -> None:
    """Appends on the loop take the file's size once: another process's records are read, a line
    torn by a crash is closed before the next record, and ids are offsets past each record."""
    from service.events.journal import Journal, Record

    ours, theirs = Journal(tmp_path), Journal(tmp_path)
    ours.load()
    theirs.load()
    [first] = ours.try_append([Record(t="t1", m="m1")]) or []
    assert first == ours.path.stat().st_size
    [second] = theirs.try_append([Record(t="t1", m="m2")]) or []
    with open(ours.path, "ab") as f:
        f.write(b'{"t":"t1","m":"m3"')  # a crash mid-record
    ids = ours.try_append([Record(t="t1", m="m2"), Record(t="t1", m="m4")])
    assert ids is not None and ids[0] == second  # journaled by the other: same id, not twice
    lines = ours.path.read_bytes().split(b"\n")
    assert lines[-3:] == [b'{"t":"t1","m":"m3"', b'{"t":"t1","m":"m4"}', b""]
    assert ids[1] == ours.path.stat().st_size


def test_event_ids_never_go_down_in_the_hubs_order(tmp_path: Path) -> None:
    """An update's id is the latest creation this process knew of when it was built. Another
    process's older creation may reach this one later: it goes before such an update (a client
    resuming after the update would miss it), and while it is known but not seen here, the
    update waits like the creations after it."""
    from service.events.hub import CREATED, Event
    from service.events.journal import Journal, Record
    from service.events.order import InOrder

    def created(jid: int, mid: str) -> Event:
        return Event(CREATED, str(jid), b"{}", "t1", jid, mid)

    def updated(watermark: int, mid: str) -> Event:
        return Event("thread.message.updated", str(watermark), b"{}", "t1", 0, mid)

    ours, theirs = Journal(tmp_path), Journal(tmp_path)
    ours.load()
    theirs.load()
    order = InOrder(ours)
    [older] = theirs.try_append([Record(t="t1", m="theirs")]) or []  # not in our feed yet
    [mine] = ours.try_append([Record(t="t1", m="mine")]) or []
    assert older < mine
    out, waiting = order.release([(1, created(mine, "mine")), (2, updated(mine, "mine"))])
    assert out == [] and waiting == {"t1"}  # both wait for the older creation
    out, _ = order.release([(3, updated(mine, "other"))])
    assert out == []  # an update alone waits as well: its id is past the older one's
    ours.try_append([Record(t="t1", m="theirs")])  # it arrives here: the same id
    out, _ = order.release([(4, created(older, "theirs"))])
    assert [e.num for _, e in out] == [older, mine, mine, mine]
    assert [e.message_id for _, e in out] == ["theirs", "mine", "mine", "other"]


def test_a_resumed_stream_never_sends_a_lower_id_than_it_has(tmp_path: Path) -> None:
    """A stream that resumed from id 300 (or replayed up to it) may get an update another worker
    built earlier (id 200): it goes out as 300, and creations up to 300 are not sent again."""
    from service.events.hub import CREATED, Event, Subscription

    sub = Subscription(None, 100)
    sub.resume_from(300)  # what it resumed from, or what its replay reached: the same here
    sub.go_live(lambda events: None, lambda: False)
    live = [Event(CREATED, "250", b"{}", "t1", 250, "m250"),
            Event("thread.message.updated", "200", b"{}", "t1", 0, "m1"),
            Event(CREATED, "320", b"{}", "t1", 320, "m320"),
            Event("thread.message.deleted", "310", b"{}", "t1", 310, "m1")]
    sent = sub.fitted(live)
    assert [(e.name, e.id) for e in sent] == [
        ("thread.message.updated", "300"), (CREATED, "320"), ("thread.message.deleted", "320")]
    assert sent[0].frame.startswith(b"id: 300\n")


async def test_an_update_from_a_worker_behind_goes_out_under_the_id_resumed_from(
        start_server: Callable[..., Any]) -> None:
    """A client resumes on worker two with an id worker one issued, which two has not read up to
    yet; two's next update carries two's latest id, lower: it must go out under the id the
    client resumed from, or a resume from it would replay creations the client already has."""
    one, two = await start_server(watch=False), await start_server(watch=False)
    thread = await new_thread(one)
    first = await say(one, thread, "first")
    async with aiohttp.ClientSession() as s, s.get(  # two indexes (and journals) first
            two.make_url(f"/v1/threads/{thread}/messages/{first['id']}")) as resp:
        assert resp.status == 200
    _, later = await marker(one)  # a creation elsewhere, journaled by one only
    async with stream(two, "/v1/events", {"Last-Event-ID": later}) as events:
        await post(two, f"/v1/threads/{thread}/messages/{first['id']}",
                   {"metadata": {"edited": "yes"}})
        got = await events.until(lambda e: e.event == "thread.message.updated")
    assert got.json["metadata"] == {"edited": "yes"}
    assert int(got.id) >= int(later), (got.id, later)


async def test_creations_the_journal_could_not_take_are_journaled_later_and_replayed(
        server: TestServer, data_dir: Path) -> None:
    """The journal's disk is full (its writes fail with ENOSPC: here it is /dev/full) while the
    messages still land in their file: their events go out live, and their records wait for the
    next append that works, so a resume from before finds every one, once, in order."""
    thread_id = await new_thread(server)
    journal = data_dir / ".threadline" / "events.jsonl"
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        first = await say(server, thread_id, "before")
        resume_from = (await events.next()).id
        kept = journal.with_name("events.jsonl.kept")
        journal.rename(kept)
        journal.symlink_to("/dev/full")
        during = [await say(server, thread_id, f"during {i}") for i in range(3)]
        live = await events.take(3)  # live subscribers are not kept waiting
        assert [e.json["id"] for e in live] == [m["id"] for m in during]
        journal.unlink()
        kept.rename(journal)
        after = await say(server, thread_id, "after")
        assert (await events.next()).json["id"] == after["id"]
    async with stream(server, f"/v1/threads/{thread_id}/events",
                      {"Last-Event-ID": str(resume_from)}) as events:
        replayed = await events.take(4)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in replayed] == [m["id"] for m in [*during, after]]
    assert first["id"] not in [e.json["id"] for e in replayed]


async def test_a_journal_removed_while_running_starts_again_and_resumes_work(
        server: TestServer, data_dir: Path) -> None:
    """Its writes failed for good (EINVAL: a read before offset 0) and every event kept the last
    old id, so resumes found nothing; now the journal starts again from the new file."""
    thread_id, other = await new_thread(server), await new_thread(server)
    await say(server, thread_id, "old")
    old_other = await say(server, other, "old too")
    (data_dir / ".threadline" / "events.jsonl").unlink()
    new = [await say(server, thread_id, f"new {i}") for i in range(2)]
    async with stream(server, "/v1/events", {"Last-Event-ID": "0"}) as events:
        replayed = await events.take(2)
        assert await events.nothing_for(0.3)
    assert [e.json["id"] for e in replayed] == [m["id"] for m in new]
    assert int(replayed[0].id or 0) < int(replayed[1].id or 0)
    # The other thread is where it stood (a baseline): after a restart its older messages are
    # not taken for new ones.
    journal = [json.loads(line) for line in
               (data_dir / ".threadline" / "events.jsonl").read_text().splitlines()]
    assert {"t": other, "b": old_other["id"]} in journal


async def test_a_restored_message_written_with_a_new_one_keeps_its_place_in_the_stream(
        server: TestServer, data_dir: Path) -> None:
    """A message deleted, then its line copied back followed by a new message in one write: the
    stream (and a replay) follow the file's order, restored one first. (It was re-checked after
    the rest of its batch was journaled, so it came second.)"""
    thread_id = await new_thread(server)
    gone = await say(server, thread_id, "to restore")
    await say(server, thread_id, "stays")
    path = data_dir / "threads" / thread_id / "messages.jsonl"
    line = path.read_bytes().splitlines()[0]
    async with aiohttp.ClientSession() as http, http.delete(
            server.make_url(f"/v1/threads/{thread_id}/messages/{gone['id']}")) as resp:
        assert resp.status == 200
    async with stream(server, f"/v1/threads/{thread_id}/events") as events:
        new = json.dumps({"id": "msg_newer", "role": "user", "content": "newer"}).encode()
        with path.open("ab") as f:
            f.write(line + b"\n" + new + b"\n")
        live = await events.take(2)
    assert [e.json["id"] for e in live] == [gone["id"], "msg_newer"]
    async with stream(server, f"/v1/threads/{thread_id}/events",
                      {"Last-Event-ID": live[0].id or ""}) as events:
        assert [e.json["id"] for e in await events.take(1)] == ["msg_newer"]
