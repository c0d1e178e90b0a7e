"""An append against writers that take no lock: one whose line starts between the append's check
of the file's end and its write (a Jan-style writer: the JSON, then the newline in a write of its
own), one that keeps replacing the file while the append waits. The append's lines are never
glued to another writer's, and an append that cannot be made whole is not acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.keys import INDEXER
from service.store import append as store_append
from service.store.append import Appended, Contended, append_lines
from tests.jan import jan_message, jan_thread, write_thread

OpenClient = Callable[..., Awaitable[TestClient]]


def _jan_line(n: int) -> bytes:
    return json.dumps(jan_message(f"jan{n}", "jan_1", f"text {n}",
                                  created_ms=1717666240000 + n)).encode()


def _ours(n: int) -> bytes:
    return json.dumps({"id": f"ours{n}", "role": "user", "content": "x"}).encode() + b"\n"


def _append_raw(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _ids(path: Path) -> list[str]:
    """Every line's id; fails on a blank line or one that is not a message (glued lines)."""
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    return [json.loads(line)["id"] for line in lines[:-1]]


def test_a_line_begun_between_the_check_and_the_write_is_not_glued_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other writer's JSON lands just after the append found the file ending on a line end,
    its newline 5 ms later: the append takes its bytes back and writes after that newline."""
    folder = tmp_path / "jan_1"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(_jan_line(0) + b"\n")
    real = store_append.tail_state
    timers: list[threading.Timer] = []

    def check_then_jan_writes(fd: int, st: os.stat_result) -> tuple[bool, os.stat_result]:
        result = real(fd, st)
        if not timers:  # once: the JSON now, its newline in a write of its own a moment later
            _append_raw(path, _jan_line(1))
            timers.append(threading.Timer(0.005, _append_raw, (path, b"\n")))
            timers[0].start()
        return result

    monkeypatch.setattr(store_append, "tail_state", check_then_jan_writes)
    done = append_lines(folder, _ours(0), False)
    timers[0].join()
    assert _ids(path) == ["jan0", "jan1", "ours0"]
    assert path.read_bytes()[done.start:] == _ours(0)


def _glue_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                after: bytes | None, make: bool = True) -> Path:
    """A thread folder whose other writer writes its JSON just after the append's check, and
    `after` (its newline, or something else) just after the append's write."""
    folder = tmp_path / "jan_1"
    path = folder / "messages.jsonl"
    if make:
        folder.mkdir()
        path.write_bytes(_jan_line(0) + b"\n")
    real_check, real_write = store_append.tail_state, store_append.write_all

    def check_then_jan_writes(fd: int, st: os.stat_result) -> tuple[bool, os.stat_result]:
        result = real_check(fd, st)
        if b"jan1" not in path.read_bytes():
            _append_raw(path, _jan_line(1))
        return result

    def write_then(fd: int, data: bytes) -> None:
        real_write(fd, data)
        if after is not None and data != b"\n":
            _append_raw(path, after)

    monkeypatch.setattr(store_append, "tail_state", check_then_jan_writes)
    monkeypatch.setattr(store_append, "write_all", write_then)
    return folder


def test_an_append_whose_glued_line_was_closed_right_after_is_moved_off_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _glue_setup(tmp_path, monkeypatch, b"\n")
    done = append_lines(folder, _ours(0) + _ours(1), False)
    path = folder / "messages.jsonl"
    assert _ids(path) == ["jan0", "jan1", "ours0", "ours1"]
    assert path.read_bytes()[done.start:] == _ours(0) + _ours(1)


def test_an_append_glued_to_a_line_whose_newline_never_comes_gives_up_its_first_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON came, its newline does not (its writer died, or is slower than the wait): the
    first line stays glued to it, one corrupt line, and is reported lost; the rest is whole."""
    folder = _glue_setup(tmp_path, monkeypatch, None)
    done = append_lines(folder, _ours(0) + _ours(1), False)
    lines = (folder / "messages.jsonl").read_bytes().split(b"\n")
    assert done.lost_first
    assert lines[1] == _jan_line(1) + _ours(0)[:-1]  # glued: not a message
    assert json.loads(lines[2])["id"] == "ours1" and lines[3:] == [b""]
    assert (folder / "messages.jsonl").read_bytes()[done.start:] == _ours(0) + _ours(1)


def test_an_append_glued_to_a_line_followed_by_another_gives_up_its_first_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Something other than that line's newline came right after the append (a third writer's
    line): moving the lines would glue the last one to it instead. The first is given up."""
    folder = _glue_setup(tmp_path, monkeypatch, _jan_line(5) + b"\n")
    done = append_lines(folder, _ours(0) + _ours(1), False)
    lines = (folder / "messages.jsonl").read_bytes().split(b"\n")
    assert done.lost_first
    assert lines[1] == _jan_line(1) + _ours(0)[:-1]
    assert [json.loads(x)["id"] for x in lines[2:4]] == ["ours1", "jan5"]


def test_lines_moved_in_a_file_owned_by_another_user_are_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a file's owner may set its mtime to a given time (the server in its container runs
    as another user than the Jan app): "now" is the fallback, and the append stands."""
    folder = _glue_setup(tmp_path, monkeypatch, b"\n")
    real_utime = os.utime
    refused: list[int] = []

    def as_another_user(target: Any, times: Any = None, *, ns: Any = None, **kw: Any) -> None:
        if ns is not None:
            refused.append(1)
            raise PermissionError(1, "Operation not permitted")
        real_utime(target, times, **kw)

    monkeypatch.setattr(os, "utime", as_another_user)
    done = append_lines(folder, _ours(0), False)
    assert refused and _ids(folder / "messages.jsonl") == ["jan0", "jan1", "ours0"]
    assert (folder / "messages.jsonl").read_bytes()[done.start:] == _ours(0)


def test_a_batch_whose_other_lines_were_written_over_is_not_acknowledged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first line stays glued, and a program rewriting the file in place wrote over the
    rest: none of the batch is acknowledged (they were, at offsets holding other bytes)."""
    folder = _glue_setup(tmp_path, monkeypatch, None)
    path = folder / "messages.jsonl"
    real_write = store_append.write_all

    def then_rewritten_in_place(fd: int, data: bytes) -> None:
        real_write(fd, data)
        other = os.open(path, os.O_WRONLY)
        os.pwrite(other, b"x" * 10, os.fstat(other).st_size - 10)  # over the batch's last line
        os.close(other)

    monkeypatch.setattr(store_append, "write_all", then_rewritten_in_place)
    with pytest.raises(Contended):
        append_lines(folder, _ours(0) + _ours(1), False)


async def test_a_create_whose_line_stays_glued_is_a_503_and_never_served(
        open_client: OpenClient, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message("jan0", "jan_1", "hi", created_ms=1717666240000)])
    client = await open_client()
    _glue_setup(data_dir / "threads", monkeypatch, None, make=False)
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"})
    assert resp.status == 503
    error = (await resp.json())["error"]
    assert (error["type"], error["code"]) == ("server_error", "thread_busy")
    listed = await (await client.get("/v1/threads/jan_1/messages?order=asc")).json()
    assert [m["id"] for m in listed["data"]] == ["jan0"]


def test_appends_racing_a_two_write_writer_never_glue(tmp_path: Path) -> None:
    """A real race: a thread writing Jan's way (the JSON, then the newline, no lock) against
    locked appends. Every line whole, no blank line, every acknowledged append in the file."""
    folder = tmp_path / "jan_1"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(b"")
    stop = threading.Event()
    jan_written: list[int] = []

    def jan() -> None:
        n = 0
        while not stop.is_set():
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, _jan_line(n))
            os.write(fd, b"\n")
            os.close(fd)
            jan_written.append(n)
            n += 1

    writer = threading.Thread(target=jan)
    writer.start()
    acked: list[int] = []
    busy = 0
    try:
        deadline = time.monotonic() + 1.5
        n = 0
        while time.monotonic() < deadline:
            try:
                append_lines(folder, _ours(n), False)
                acked.append(n)
            except Contended:
                busy += 1
            n += 1
    finally:
        stop.set()
        writer.join()
    ids = _ids(path)  # fails on a glued or blank line
    assert [i for i in ids if i.startswith("ours")] == [f"ours{n}" for n in acked]
    assert [i for i in ids if i.startswith("jan")] == [f"jan{n}" for n in jan_written]
    assert len(acked) > 100 and busy <= len(acked) // 100


@contextlib.contextmanager
def _replaced_again_and_again(folder: Path) -> Iterator[None]:
    """Another program renames a new file over messages.jsonl every 20 ms, each ending in a
    fresh torn line (so every append waits for its newline, and sees the file replaced)."""
    stop = threading.Event()

    def replace_again_and_again() -> None:
        n = 0
        while not stop.wait(0.02):
            tmp = folder / f"new{n}.tmp"
            tmp.write_bytes(_jan_line(0) + b"\n" + _jan_line(1)[:20])
            os.replace(tmp, folder / "messages.jsonl")
            n += 1

    replacer = threading.Thread(target=replace_again_and_again)
    replacer.start()
    try:
        yield
    finally:
        stop.set()
        replacer.join()


def test_an_append_to_a_file_replaced_again_and_again_fails(tmp_path: Path) -> None:
    """Each wait for the newline of a fresh torn line sees the file renamed over by another:
    after its last attempt the append fails instead of writing into a replaced file."""
    folder = tmp_path / "jan_1"
    folder.mkdir()
    path = folder / "messages.jsonl"
    path.write_bytes(_jan_line(0) + b"\n" + _jan_line(1)[:20])
    with _replaced_again_and_again(folder), pytest.raises(Contended):
        append_lines(folder, _ours(0), False)
    assert b"ours0" not in path.read_bytes()


async def test_a_create_that_cannot_be_written_whole_is_a_503(
        open_client: OpenClient, data_dir: Path) -> None:
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                          [jan_message("m0", "jan_1", "hi", created_ms=1717666240000)])
    path = folder / "messages.jsonl"
    client = await open_client()
    with _replaced_again_and_again(folder):
        await asyncio.sleep(0.05)  # replaced at least once: the file ends in a fresh torn line
        resp = await client.post("/v1/threads/jan_1/messages",
                                 json={"role": "user", "content": "n"})
    assert resp.status == 503
    error = (await resp.json())["error"]
    assert (error["type"], error["code"]) == ("server_error", "thread_busy")
    assert b'"n"' not in path.read_bytes()


def test_an_appended_result_names_where_the_lines_start(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    done: Appended = append_lines(folder, _ours(0) + _ours(1), True)
    assert done.start == 0 and done.size == len(_ours(0) + _ours(1))
    again = append_lines(folder, _ours(2), True)
    assert again.start == done.size and again.before[1] == done.size


async def test_a_create_moved_off_a_glued_line_is_served_at_once(
        open_client: OpenClient, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index may have read the glued state (one corrupt line) before the lines were moved,
    and the move keeps the file's size; on a file system whose clock ticks coarsely its mtime
    may stay the same too (made so here). The create is still served as soon as it returns."""
    folder = write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                          [jan_message("jan0", "jan_1", "hi", created_ms=1717666240000)])
    path = folder / "messages.jsonl"
    client = await open_client()
    real_check, real_unglue = store_append.tail_state, store_append._unglue

    def check_then_jan_writes(fd: int, st: os.stat_result) -> tuple[bool, os.stat_result]:
        result = real_check(fd, st)
        if b'"jan1"' not in path.read_bytes():
            _append_raw(path, _jan_line(1))
        return result

    def seen_glued_then_unglue(fd: int, data: bytes, end: int) -> int:
        _append_raw(path, b"\n")  # Jan's newline, right after the create's lines
        st = os.fstat(fd)
        probe_glued = glued_seen.pop()
        probe_glued()
        moved = real_unglue(fd, data, end)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same tick of the clock
        return moved

    glued_seen: list[Callable[[], None]] = []
    monkeypatch.setattr(store_append, "tail_state", check_then_jan_writes)
    monkeypatch.setattr(store_append, "_unglue", seen_glued_then_unglue)
    loop = asyncio.get_running_loop()
    app = client.server.app
    assert app is not None

    def index_the_glued_file() -> None:  # in the worker thread: the loop syncs, we wait
        asyncio.run_coroutine_threadsafe(
            app[INDEXER].sync("jan_1"), loop).result(timeout=5)

    glued_seen.append(index_the_glued_file)
    resp = await client.post("/v1/threads/jan_1/messages", json={"role": "user", "content": "n"})
    assert resp.status == 200
    new_id = (await resp.json())["id"]
    assert _ids(path) == ["jan0", "jan1", new_id]
    got = await client.get(f"/v1/threads/jan_1/messages/{new_id}")
    assert got.status == 200
    listed = await (await client.get("/v1/threads/jan_1/messages?order=asc")).json()
    assert [m["id"] for m in listed["data"]] == ["jan0", "jan1", new_id]
