"""Live-append latency: another process appends a line to `messages.jsonl` (as Jan does: a plain
O_APPEND write, no lock); how long until Threadline serves it (GET by id returns 200), and, if the
SSE route exists, until its `thread.message.created` event arrives.

The bench process is the "other process": it is not the server, and runs on the client core.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .data import Dataset, _legacy, _ulid


@dataclass
class Latencies:
    ms: list[float] = field(default_factory=list)
    timeouts: int = 0
    note: str = ""

    def pct(self, p: float) -> float:
        if not self.ms:
            return float("nan")
        s = sorted(self.ms)
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")

    @property
    def p99(self) -> float:
        return self.pct(99)


def _append(path: Path, line: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line + b"\n")
    finally:
        os.close(fd)


def _new_line(ds: Dataset, i: int) -> tuple[str, bytes]:
    ms = int(time.time() * 1000)
    mid = _ulid(ms)
    return mid, _legacy(mid, ds.thread_id, "user" if i % 2 else "assistant",
                        f"live append {i}: " + "lorem ipsum " * random.randint(10, 80), ms)


def append_to_get(port: int, ds: Dataset, count: int, timeout_s: float = 5.0) -> Latencies:
    """Append `count` lines one at a time; after each, poll GET by id until 200."""
    out = Latencies()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    base = f"/v1/threads/{ds.thread_id}/messages/"
    try:
        for i in range(count):
            mid, line = _new_line(ds, i)
            started = time.perf_counter()
            _append(ds.jsonl, line)
            while True:
                conn.request("GET", base + mid)
                resp = conn.getresponse()
                resp.read()
                now = time.perf_counter()
                if resp.status == 200:
                    out.ms.append((now - started) * 1000)
                    break
                if now - started > timeout_s:
                    out.timeouts += 1
                    break
                time.sleep(0.0002)
            time.sleep(random.uniform(0.005, 0.02))  # keep appends apart: no batching by luck
    finally:
        conn.close()
    return out


class _SseReader(threading.Thread):
    """Reads an SSE stream; records when each message id first arrives in a `data:` line."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.file = sock.makefile("rb")
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()

    def run(self) -> None:
        try:
            for raw in self.file:
                if not raw.startswith(b"data:"):
                    continue
                now = time.perf_counter()
                try:
                    obj = json.loads(raw[5:])
                except ValueError:
                    continue
                mid = obj.get("id") if isinstance(obj, dict) else None
                if isinstance(mid, str):
                    with self.cond:
                        self.seen.setdefault(mid, now)
                        self.cond.notify_all()
        except (OSError, ValueError):
            return

    def close(self) -> None:
        # shutdown() wakes the reading thread with an EOF (close() alone does not: the file
        # holds the socket open, and closing the file waits for the blocked read)
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.join(timeout=2)
        self.file.close()
        self.sock.close()

    def wait_for(self, mid: str, timeout: float) -> float | None:
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.seen, timeout):
                return None
            return self.seen[mid]


def request_stream(port: int, path: str, prepare: Callable[[socket.socket], object] | None = None
                   ) -> socket.socket:
    """A connection that has asked for the SSE stream at `path` (`prepare` runs on the socket
    before the request). HTTP/1.0 so the stream is not chunked: every line is an SSE line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if prepare is not None:
        prepare(sock)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
                 .encode())
    return sock


def refused(head: bytes, path: str) -> str:
    """Why the response head is not a 200 event stream ("" when it is)."""
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200 " not in status_line + " " or b"text/event-stream" not in head.lower():
        return f"{path} answered {status_line!r}"
    return ""


def subscribe(port: int, path: str, head_wait: float = 1.0) -> tuple[_SseReader | None, str]:
    """Open an SSE stream on `path` and start reading it: (reader, "") or (None, why not) if the
    route answers anything but a 200 event stream. A server may hold the response headers back
    until its first event or ping: after `head_wait` s without them the reader starts anyway
    (it skips whatever is not a `data:` line, headers included)."""
    sock = request_stream(port, path)
    head = b""
    sock.settimeout(head_wait)
    try:
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        if not head:  # nothing yet: the headers come with the first event
            head = b"HTTP/1.0 200 (deferred)\r\ncontent-type: text/event-stream\r\n\r\n"
    if why := refused(head, path):
        sock.close()
        return None, why
    sock.settimeout(None)  # the reader blocks until events come; close() ends it
    reader = _SseReader(sock)
    reader.start()
    return reader, ""


def append_to_sse(port: int, ds: Dataset, count: int, timeout_s: float = 5.0) -> Latencies:
    """Subscribe to the thread's events, then append lines one at a time and time each event.
    Skipped (with a note) if the route answers anything but a 200 event stream."""
    out = Latencies()
    reader, why = subscribe(port, f"/v1/threads/{ds.thread_id}/events")
    if reader is None:
        out.note = f"skipped: {why}"
        return out
    try:
        for i in range(count):
            mid, line = _new_line(ds, i)
            started = time.perf_counter()
            _append(ds.jsonl, line)
            arrived = reader.wait_for(mid, timeout_s)
            if arrived is None:
                out.timeouts += 1
            else:
                out.ms.append((arrived - started) * 1000)
            time.sleep(random.uniform(0.005, 0.02))
    finally:
        reader.close()
    return out
