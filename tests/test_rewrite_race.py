"""Modify/delete (an atomic rewrite of messages.jsonl) racing with appends from another process.

A rewrite reads the file, writes a new one and renames it over the old one; an append that lands in
between would be lost with the old file. The thread lock prevents that: here an external program
appends (taking the lock, as documented) while API clients modify and delete messages as fast as
they can, and every appended line must survive, once, in order, next to every acknowledged edit.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from service.store import replace
from service.store.rewrite import rewrite_message
from tests.conftest import MakeServer
from tests.procs import APPENDER, JSON, all_messages, parse_line, read_lines

EXTERNAL_LINES = 300
CLIENTS = 8


async def edit_until(http: aiohttp.ClientSession, base: str, thread_id: str, name: str,
                     done: asyncio.Event, rng: random.Random) -> tuple[dict[str, Any], int]:
    """Create a message, then modify it, or delete it and create another, until `done`; returns
    the last acknowledged state of this client's message and how many rewrites it made."""
    url = f"{base}/v1/threads/{thread_id}/messages"

    async def create(n: int) -> dict[str, Any]:
        async with http.post(url, json={"role": "user", "content": f"{name} v{n}"}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()  # type: ignore[no-any-return]

    current, rewrites, n = await create(0), 0, 0
    while not done.is_set():
        n += 1
        if rng.random() < 0.7:
            async with http.post(f"{url}/{current['id']}",
                                 json={"content": f"{name} v{n}", "metadata": {"n": str(n)}}
                                 ) as resp:
                assert resp.status == 200, await resp.text()
                current = await resp.json()
        else:
            async with http.delete(f"{url}/{current['id']}") as resp:
                assert resp.status == 200, await resp.text()
            current = await create(n)
        rewrites += 1
    return current, rewrites


async def test_rewrites_racing_external_appends_drop_no_line(
        start_server: MakeServer, data_dir: Path, record_property: Any) -> None:
    server: TestServer = await start_server()
    base = str(server.make_url(""))
    async with aiohttp.ClientSession(headers=JSON) as http:
        async with http.post(base + "/v1/threads", json={}) as resp:
            thread_id = (await resp.json())["id"]
        folder = data_dir / "threads" / thread_id
        done = asyncio.Event()
        editors = [asyncio.create_task(edit_until(http, base, thread_id, f"c{c}", done,
                                                  random.Random(c))) for c in range(CLIENTS)]
        appender = await asyncio.create_subprocess_exec(
            sys.executable, str(APPENDER), str(folder), str(EXTERNAL_LINES), "msg_ext", "--fsync",
            "--pause", "0.002",
            stdout=asyncio.subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(appender.communicate(), 60)
        finally:
            done.set()
            results = await asyncio.gather(*editors)
        assert appender.returncode == 0
        inodes = set(json.loads(out))

        lines, tail = read_lines(folder / "messages.jsonl")
        parsed = [parse_line(line) for line in lines]
        unreadable = sum(p is None for p in parsed)
        ids = [p["id"] for p in parsed if p is not None]
        external = [i for i in ids if i.startswith("msg_ext")]
        lost = EXTERNAL_LINES - len(set(external))
        finals = {obj["id"]: obj for obj, _ in results}
        served = {m["id"]: m for m in await all_messages(http, base, thread_id)}
    rewrites = sum(n for _, n in results)
    line = (f"external={EXTERNAL_LINES} found={len(set(external))} lost={lost} "
            f"unreadable={unreadable} rewrites={rewrites} file_generations={len(inodes)}")
    print(line)
    record_property("counts", line)
    assert tail == b"" and unreadable == 0 and lost == 0, line
    assert external == [f"msg_ext{i}" for i in range(EXTERNAL_LINES)], "duplicated or reordered"
    # Every client's last acknowledged state is what is stored and served; nothing else remains.
    assert sorted(ids) == sorted([*external, *finals])
    assert all(served[mid] == obj for mid, obj in finals.items())
    # The race really happened: the appender's lines went into several generations of the file,
    # i.e. rewrites replaced the file between its appends. (How many rewrites fit in the
    # appender's run depends on the machine's load; the generations are what count.)
    assert len(inodes) >= 2 and rewrites > 0, line


@pytest.mark.parametrize("moment", ["fsync", "replace"])
def test_lines_appended_without_the_lock_during_a_rewrite_survive_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    """A delete rewrites the file while a writer that takes no lock appends: while the temp file
    is synced, and in the instant before the rename. Both lines are in the new file, after
    everything that was there (found in review: the rewrite dropped them)."""
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(b'{"id":"a"}\n{"id":"b"}\n')
    real = getattr(os, moment)
    fired = []

    def meanwhile(*args: Any) -> Any:
        if not fired:  # once: the old file is still the one at `path`
            fired.append(True)
            with path.open("ab") as f:  # as Jan appends: O_APPEND, one write, no lock
                f.write(b'{"id":"jan-%s"}\n' % moment.encode())
        return real(*args)

    monkeypatch.setattr(os, moment, meanwhile)
    done = rewrite_message(folder, "a", lambda old: None, durable=True)
    monkeypatch.setattr(os, moment, real)
    assert fired and done.found
    expected = b'{"id":"b"}\n{"id":"jan-%s"}\n' % moment.encode()
    assert path.read_bytes() == expected == done.data


@pytest.mark.parametrize("delay", [0.0, 0.005])
def test_a_line_written_to_the_old_file_around_the_rename_is_carried_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delay: float) -> None:
    """A writer that takes no lock opened the file just before the rename. Its line lands in the
    old file right after the rename (delay 0: the first part visible at once, the rest 30 ms
    later, as another process's write(2) becomes visible a page at a time), or a few
    milliseconds after it (a writer descheduled between its open and its write). The line is
    carried into the new file whole (found in review: cut short, glued to the next line; or
    lost with the old file)."""
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(b'{"id":"a"}\n{"id":"b"}\n')
    line = b'{"id":"jan","content":"' + b"x" * 5000 + b'"}\n'
    real = os.replace
    writers: list[threading.Thread] = []

    def write_late(fd: int) -> None:
        if delay:
            time.sleep(delay)
            os.write(fd, line)
        else:
            os.write(fd, line[:4096])
            time.sleep(0.03)
            os.write(fd, line[4096:])
        os.close(fd)

    def replace(*args: Any) -> Any:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # the old file, opened before the rename
        done = real(*args)
        if not writers:
            writers.append(threading.Thread(target=write_late, args=(fd,)))
            writers[0].start()
        return done

    monkeypatch.setattr(os, "replace", replace)
    done = rewrite_message(folder, "a", lambda old: None, durable=False)
    monkeypatch.setattr(os, "replace", real)
    writers[0].join()
    assert path.read_bytes() == b'{"id":"b"}\n' + line == done.data


@pytest.mark.parametrize("variant", ["two writers", "writeln"])
def test_a_late_line_goes_after_what_was_appended_to_the_new_file_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    """Right after the rename, one writer that takes no lock appends to the new file (in one
    write, or as the Jan app does, its JSON and then its newline 30 ms later), while another,
    which opened the old file before the rename, writes there. The late line goes into the new
    file after the first writer's, whole (it was glued between the JSON and its newline), and
    the rewrite returns what the new file holds (it returned the late line where the other
    writer's stands, and events went out of file order)."""
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(b'{"id":"a"}\n{"id":"b"}\n')
    real = os.replace
    writers: list[threading.Thread] = []

    def write(old: int) -> None:
        new = os.open(path, os.O_WRONLY | os.O_APPEND)
        if variant == "two writers":
            os.write(new, b'{"id":"new"}\n')
            os.write(old, b'{"id":"late"}\n')
        else:
            os.write(new, b'{"id":"new"}')
            os.write(old, b'{"id":"late"}\n')
            time.sleep(0.03)
            os.write(new, b"\n")
        os.close(new)
        os.close(old)

    def replace(*args: Any) -> Any:
        old = os.open(path, os.O_WRONLY | os.O_APPEND)  # opened before the rename
        done = real(*args)
        writers.append(threading.Thread(target=write, args=(old,)))
        writers[0].start()
        time.sleep(0.002)
        return done

    monkeypatch.setattr(os, "replace", replace)
    done = rewrite_message(folder, "a", lambda old: None, durable=False)
    monkeypatch.setattr(os, "replace", real)
    writers[0].join()
    assert path.read_bytes() == b'{"id":"b"}\n{"id":"new"}\n{"id":"late"}\n' == done.data


def test_a_rewrite_waits_for_no_newline_of_a_line_left_unfinished_long_ago(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A torn last line whose writer died an hour ago: copied at once (every modify and delete
    of such a thread waited 100 ms for its newline), and closed, so that the new file's fresh
    mtime has no append wait for it either."""
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(b'{"id":"a"}\n{"id":"b"}\n{"id":"tor')
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    slept: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(s) or real_sleep(s))
    done = rewrite_message(folder, "a", lambda old: None, durable=False)
    monkeypatch.setattr(time, "sleep", real_sleep)
    assert slept == [replace.FOLLOW_GRACE]  # the pause after the rename, and no wait
    assert path.read_bytes() == b'{"id":"b"}\n{"id":"tor\n' == done.data


def test_a_late_line_is_never_written_through_a_link_planted_after_the_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the rewrite pauses after its rename, a late line lands in the old file and a
    symbolic link to a file outside the folder replaces the new one. The late line is not
    written through the link (it was, into the file it named), and the rewrite, done by then,
    still returns (no error after the fact)."""
    folder = tmp_path / "t"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(b'{"id":"a"}\n{"id":"b"}\n')
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"outside\n")
    real_replace, real_sleep = os.replace, time.sleep
    old: list[int] = []

    def replace_(*args: Any) -> Any:
        old.append(os.open(path, os.O_WRONLY | os.O_APPEND))  # opened before the rename
        return real_replace(*args)

    def sleep(seconds: float) -> None:
        if seconds == replace.FOLLOW_GRACE and old:
            os.write(old[0], b'{"id":"late"}\n')
            os.close(old.pop())
            path.unlink()
            path.symlink_to(victim)
        real_sleep(seconds)

    monkeypatch.setattr(os, "replace", replace_)
    monkeypatch.setattr(time, "sleep", sleep)
    rewrite_message(folder, "a", lambda line: None, durable=False)
    monkeypatch.undo()
    assert victim.read_bytes() == b"outside\n"
