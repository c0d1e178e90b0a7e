"""`threadline check DIR`: reports threads, messages and every damaged line with its file and byte
offset, exits non-zero on damage, changes nothing, and draws a progress bar only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from service import check

from .jan import jan_message, jan_thread, write_thread

ROOT = Path(__file__).resolve().parent.parent


def threadline(*args: str, stderr: int | None = subprocess.PIPE
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=stderr, timeout=60)


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and folder under `folder`: its bytes (None for folders) and mtime."""
    out: dict[str, tuple[bytes | None, int]] = {}
    for path in sorted(folder.rglob("*")):
        st = path.stat()
        out[str(path.relative_to(folder))] = (path.read_bytes() if path.is_file() else None,
                                              st.st_mtime_ns)
    return out


def damaged_folder(data_dir: Path) -> dict[str, int]:
    """A data folder with one of each kind of damage; returns the byte offsets of the damage."""
    good = [json.dumps(jan_message(f"m{i}", "jan_a", f"text {i}")).encode() for i in range(3)]
    lines = [good[0], b'{"id": "m9", "role": "us', b"", good[1],
             json.dumps({"role": "user", "content": "no id"}).encode(), good[0], good[2]]
    folder = write_thread(data_dir, "jan_a", jan_thread("jan_a"), [])
    body = b"".join(line + b"\n" for line in lines) + b'{"id": "torn'
    (folder / "messages.jsonl").write_bytes(body)
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    write_thread(data_dir, "jan_b", jan_thread("jan_b"),
                 [jan_message("b1", "jan_b", "fine"), jan_message("b2", "jan_b", "also fine")])
    broken = write_thread(data_dir, "jan_c", None, [jan_message("c1", "jan_c", "ok")])
    (broken / "thread.json").write_text('{"id": "jan_c", "title": ')
    (data_dir / "threads" / "not a thread").mkdir()
    return {"not_json": offsets[1], "no_id": offsets[4], "duplicate": offsets[5],
            "torn": pos}


def test_damaged_folder_is_reported_with_positions_and_exit_1(data_dir: Path) -> None:
    where = damaged_folder(data_dir)
    before = snapshot(data_dir)
    proc = threadline("check", str(data_dir))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    f = "threads/jan_a/messages.jsonl"
    assert lines[:-1] == [
        f"{f}:2: byte {where['not_json']}: corrupt line, not JSON (24 bytes): "
        + repr('{"id": "m9", "role": "us'),
        f"{f}:5: byte {where['no_id']}: corrupt line, no message id (36 bytes): "
        + repr('{"role": "user", "content": "no id"}'),
        f"{f}:6: byte {where['duplicate']}: duplicate message id 'm0' (first at byte 0)",
        f"{f}: byte {where['torn']}: unterminated last line (12 bytes): " + repr('{"id": "torn'),
        "threads/jan_c/thread.json: not a JSON object (served with defaults)",
    ]
    assert lines[-1] == (f"{data_dir}: 3 threads, 6 messages, 2 corrupt lines, 5 problems: "
                         "damaged")
    assert proc.stderr == ""  # not a terminal: no progress bar
    assert snapshot(data_dir) == before  # read only: same bytes, same mtimes, nothing new


def test_clean_folder_exits_0(data_dir: Path) -> None:
    write_thread(data_dir, "jan_b", jan_thread("jan_b"), [jan_message("b1", "jan_b", "fine")])
    proc = threadline("check", str(data_dir))
    assert proc.returncode == 0
    assert proc.stdout == f"{data_dir}: 1 threads, 1 messages, 0 corrupt lines, 0 problems: ok\n"


def test_folder_without_threads_exits_2(tmp_path: Path) -> None:
    proc = threadline("check", str(tmp_path))
    assert proc.returncode == 2
    assert "has no threads/ folder" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # not even a threads/ folder was created


def test_progress_bar_is_drawn_on_a_terminal(data_dir: Path) -> None:
    for i in range(3):
        write_thread(data_dir, f"t{i}", jan_thread(f"t{i}"), [jan_message("m", f"t{i}", "x")])
    leader, follower = pty.openpty()
    try:
        proc = threadline("check", str(data_dir), stderr=follower)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the other side is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    assert b"\r[" in drawn and b"3/3 threads" in drawn
    assert "threads" in proc.stdout and "\r" not in proc.stdout  # the report stays clean


def test_positions_are_the_same_whatever_the_read_size(data_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    damaged_folder(data_dir)
    whole = check.check(data_dir)
    for chunk in (1, 7, 64):
        monkeypatch.setattr(check, "CHUNK", chunk)
        assert check.check(data_dir) == whole
    assert whole.messages == 6 and whole.corrupt == 2


def test_corrupt_lines_say_why() -> None:
    from service.check import _why

    assert _why(b'{"id": "m9", "role": "us') == "not JSON"
    assert _why(b"[1, 2]") == "not JSON"
    assert _why(b'{"role": "user"}') == "no message id"
    assert _why(b'{"id": ""}') == _why(b'{"id": {"a": 1}}') == (
        "an id that is empty, or not a string or a number")
    for line in (b'{"id": "bad\xff"}', b'{"id": "ok", "run_id": 1e400}'):
        assert _why(line).startswith("an id or run id that cannot be read exactly"), line
