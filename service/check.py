"""`threadline check DIR`: scan a data folder read-only and report what the server would find.

Counts threads and messages, and reports each problem with its file and byte offset: corrupt lines
(what the server skips, counts and keeps), an unterminated last line (a writer that crashed or is
still writing), duplicate message ids, and a `thread.json` that is not a JSON object. Files are only
ever opened for reading. Exit status: 0 clean, 1 damage found, 2 nothing to check. A progress bar
is drawn on stderr when it is a terminal, and only then.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .store.layout import MESSAGES, THREAD_JSON, list_thread_ids
from .store.lines import complete_end, decode_object, message_id, scan

CHUNK = 4 << 20
PREVIEW = 60


@dataclass
class Report:
    threads: int = 0
    messages: int = 0
    corrupt: int = 0
    problems: list[str] = field(default_factory=list)


def _preview(line: bytes) -> str:
    text = line[:PREVIEW].decode("utf-8", "backslashreplace")
    return repr(text + ("..." if len(line) > PREVIEW else ""))


def _lines(path: Path) -> Iterator[tuple[int, int, bytes, str | None]]:
    """(line number, byte offset, line, message id or None if corrupt) for each non-blank
    complete line, then (0, offset, bytes, None) for unterminated bytes at the end, if any."""
    base = line_no = 0
    carry = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            buf = carry + chunk
            end = complete_end(buf)
            counted = 0
            for offset, length, mid, _run_id, _crc in scan(buf[:end], base):
                pos = offset - base
                line_no += buf.count(b"\n", counted, pos) + 1
                counted = pos + length + 1
                yield line_no, offset, buf[pos : pos + length], mid
            line_no += buf.count(b"\n", counted, end)
            carry, base = buf[end:], base + end
    if carry.strip():
        yield 0, base, carry, None


def _why(line: bytes) -> str:
    """Why a line the index refused is no message."""
    obj = decode_object(line)
    if obj is None:
        return "not JSON"
    if "id" not in obj:
        return "no message id"
    if message_id(obj["id"]) is None:
        return "an id that is empty, or not a string or a number"
    # Read leniently here, refused by the index: a stray byte (invalid UTF-8) in the id, or an id
    # or run id that is a number out of range.
    return "an id or run id that cannot be read exactly (invalid UTF-8, a number out of range)"


def check_messages(path: Path, rel: str, report: Report) -> None:
    seen: dict[str, int] = {}
    for line_no, offset, line, mid in _lines(path):
        if line_no == 0:
            report.problems.append(f"{rel}: byte {offset}: unterminated last line "
                                   f"({len(line)} bytes): {_preview(line)}")
        elif mid is None:
            report.corrupt += 1
            why = _why(line)
            report.problems.append(f"{rel}:{line_no}: byte {offset}: corrupt line, {why} "
                                   f"({len(line)} bytes): {_preview(line)}")
        elif mid in seen:
            report.problems.append(f"{rel}:{line_no}: byte {offset}: duplicate message id "
                                   f"{mid!r} (first at byte {seen[mid]})")
        else:
            seen[mid] = offset
            report.messages += 1


def check_thread(folder: Path, rel: str, report: Report) -> None:
    thread_json, messages = folder / THREAD_JSON, folder / MESSAGES
    if not thread_json.is_file() and not messages.is_file():
        return  # not a thread (the server ignores it too)
    report.threads += 1
    if thread_json.is_file() and decode_object(thread_json.read_bytes()) is None:
        report.problems.append(f"{rel}/{THREAD_JSON}: not a JSON object (served with defaults)")
    if messages.is_file():
        check_messages(messages, f"{rel}/{MESSAGES}", report)


class Progress:
    """A one-line bar on a terminal; silent otherwise (logs and pipes get only the report)."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.on = out.isatty() and total > 0
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.on or (now - self._last < 0.1 and done < self.total):
            return
        self._last = now
        filled = 30 * done // self.total
        self.out.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} threads")
        self.out.flush()

    def close(self) -> None:
        if self.on:
            self.out.write("\r\033[K")
            self.out.flush()


def check(data_dir: Path, progress: TextIO | None = None) -> Report:
    threads_dir = data_dir / "threads"
    names = list_thread_ids(threads_dir)
    report = Report()
    bar = Progress(len(names), progress or sys.stderr)
    for i, name in enumerate(names, 1):
        check_thread(threads_dir / name, f"threads/{name}", report)
        bar.update(i)
    bar.close()
    return report


def run(data_dir: Path, out: TextIO = sys.stdout) -> int:
    if not (data_dir / "threads").is_dir():
        print(f"threadline check: {data_dir} has no threads/ folder; is it a Jan data folder?",
              file=sys.stderr)
        return 2
    report = check(data_dir)
    for problem in report.problems:
        print(problem, file=out)
    verdict = "damaged" if report.problems else "ok"
    print(f"{data_dir}: {report.threads} threads, {report.messages} messages, {report.corrupt} "
          f"corrupt lines, {len(report.problems)} problems: {verdict}", file=out)
    return 1 if report.problems else 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="scan a data folder read-only and report damage")
    p.add_argument("dir", type=Path, help="the Jan data folder (holding threads/)")


def main(args: argparse.Namespace) -> int:
    return run(args.dir)
