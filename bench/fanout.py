"""SSE latency with many open subscribers: a swarm of streams (`bench.swarm`, its own asyncio
process) holds N-1 subscriptions open, half on `/v1/events` and half on the thread's stream; this
process opens the N-th, the measured one (the thread's stream, read by its own thread), then times
one event at a time:

- API create: `POST /v1/threads/{id}/messages` → `thread.message.created` on the measured stream;
- external append: a Jan-shaped line appended to `messages.jsonl` by this process (plain
  `O_APPEND` write, no lock) → the same event, through the server's watcher.

An event has arrived when the kernel received the bytes that complete it on the stream (the
socket's receive timestamp): that is what the server controls. When the reading process gets to
them is the client's business, and here the client core also runs the swarm, whose reading of 999
sockets would otherwise add milliseconds that a real subscriber on its own machine never sees.
The read times are kept too (`api_read`, `external_read`).

For each, it also takes the time until the last of the swarm's streams had the event (the fan-out
complete), and waits for that before the next event so one fan-out never overlaps the next. At
the end the swarm checks that every one of its streams received every event and gives the latency
of every delivery to every stream (`report["delivery_ms"]`). The server starts each fan-out at a
random stream, so the measured stream's latencies sample every place in the fan-out order.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import random
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import live
from .data import Dataset
from .procs import PYTHON, REPO
from .swarm import recv_timed, timed_socket

WAIT_S = 5.0  # an event not seen within this is counted as missing


@dataclass
class Fanout:
    subscribers: int  # streams open while measuring: the swarm's plus the measured one
    api: live.Latencies = field(default_factory=live.Latencies)  # POST → measured stream
    external: live.Latencies = field(default_factory=live.Latencies)  # append → measured
    api_all: live.Latencies = field(default_factory=live.Latencies)  # POST → every stream
    external_all: live.Latencies = field(default_factory=live.Latencies)
    api_read: live.Latencies = field(default_factory=live.Latencies)  # ... read by this process
    external_read: live.Latencies = field(default_factory=live.Latencies)
    api_ack: live.Latencies = field(default_factory=live.Latencies)  # POST → its response
    report: dict[str, Any] = field(default_factory=dict)  # the swarm's final count
    note: str = ""  # why it was not measured


class _Swarm:
    """The swarm process and its output: the ready line, then per-event "all streams have it"
    times, then the final count."""

    def __init__(self, port: int, thread_id: str, streams: int, log: Path) -> None:
        n_global = streams // 2
        argv = [PYTHON, "-m", "bench.swarm", "--port", str(port), "--thread", thread_id,
                "--global", str(n_global), "--per-thread", str(streams - n_global)]
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as err:
            # It inherits this process's pinning: the client core.
            self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.done: dict[str, float] = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            obj = json.loads(raw)
            if "t" in obj:
                with self.cond:
                    self.done[obj["id"]] = obj["t"]
                    self.cond.notify_all()
            else:
                self.lines.put(obj)

    def next_line(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_all(self, mid: str, timeout: float) -> float | None:
        """`time.monotonic()` when the last of the swarm's streams received `mid`."""
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.done, timeout):
                return None
            return self.done[mid]

    def finish(self, ids: list[str], started: dict[str, dict[str, float]]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"expect": ids, "started": started}).encode() + b"\n")
        self.proc.stdin.flush()
        report = self.next_line(WAIT_S + 30) or {"error": "no final count from the swarm"}
        self.stop()
        return report

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Reader(threading.Thread):
    """Reads the measured SSE stream (HTTP/1.0: the body is the bare event stream); records for
    each message id when the kernel received its `data:` line and when this thread read it."""

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.buf = rest
        self.seen: dict[str, tuple[float, float]] = {}  # id -> (received, read), monotonic
        self.cond = threading.Condition()

    def run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                data, received = recv_timed(self.sock)
                if not data:
                    return
                read = time.monotonic()
                self.buf += data
                *lines, self.buf = self.buf.split(b"\n")
                for line in lines:
                    if line.startswith(b"data:"):
                        self._data(line[5:], received, read)

    def _data(self, raw: bytes, received: float, read: float) -> None:
        try:
            obj = json.loads(raw)
        except ValueError:
            return
        mid = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(mid, str):
            with self.cond:
                self.seen.setdefault(mid, (received, read))
                self.cond.notify_all()

    def wait_for(self, mid: str, timeout: float) -> tuple[float, float] | None:
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.seen, timeout):
                return None
            return self.seen[mid]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread with an EOF
        self.join(timeout=2)
        self.sock.close()


def _subscribe(port: int, path: str) -> tuple[_Reader | None, str]:
    """Open the measured stream: (reader, "") or (None, why not)."""
    sock = live.request_stream(port, path, prepare=timed_socket)
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        pass
    head, _, rest = head.partition(b"\r\n\r\n")
    if why := live.refused(head, path):
        sock.close()
        return None, why
    sock.settimeout(None)  # the reader blocks until events come; close() ends it
    reader = _Reader(sock, rest)
    reader.start()
    return reader, ""


def _create(conn: http.client.HTTPConnection, thread_id: str, i: int) -> str:
    body = json.dumps({"role": "user", "content": f"fan-out {i}: " + "lorem ipsum " *
                       random.randint(10, 80)}).encode()
    conn.request("POST", f"/v1/threads/{thread_id}/messages", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    out = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"create: {resp.status} {out}")
    mid: str = out["id"]
    return mid


def _warm_up(conn: http.client.HTTPConnection, thread_id: str, swarm: _Swarm,
             reader: _Reader, tries: int = 30) -> int:
    """Create messages until one reaches every stream: then every subscription is in place (a
    stream's request may still be queued at the server when its connection is made). Returns the
    number of warm-up creates, 0 if none reached every stream."""
    for i in range(1, tries + 1):
        mid = _create(conn, thread_id, -i)
        if swarm.wait_all(mid, 2.0) is not None and reader.wait_for(mid, 2.0) is not None:
            return i
    return 0


def run(port: int, ds: Dataset, subscribers: int, count: int, log: Path) -> Fanout:
    """Open `subscribers` streams, then time `count` API creates and `count` external appends."""
    out = Fanout(subscribers)
    swarm = _Swarm(port, ds.thread_id, subscribers - 1, log)
    reader: _Reader | None = None
    started: dict[str, dict[str, float]] = {"api": {}, "external": {}}
    try:
        ready = swarm.next_line(180)
        if ready is None or ready.get("failed") or ready.get("ready") != subscribers - 1:
            out.note = f"the swarm could not open its streams: {ready} (see {log})"
            return out
        reader, why = _subscribe(port, f"/v1/threads/{ds.thread_id}/events")
        if reader is None:
            out.note = why
            return out
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ids: list[str] = []
        try:
            if not _warm_up(conn, ds.thread_id, swarm, reader):
                out.note = "warm-up events never reached every stream"
                return out
            for kind in ("api", "external"):
                one, every, read = (out.api, out.api_all, out.api_read) if kind == "api" else (
                    out.external, out.external_all, out.external_read)
                for i in range(count):
                    if kind == "api":
                        t0 = time.monotonic()
                        mid = _create(conn, ds.thread_id, i)
                        out.api_ack.ms.append((time.monotonic() - t0) * 1000)
                    else:
                        mid, line = live._new_line(ds, i)
                        t0 = time.monotonic()
                        live._append(ds.jsonl, line)
                    ids.append(mid)
                    started[kind][mid] = t0
                    arrived = reader.wait_for(mid, WAIT_S)
                    if arrived is None:
                        one.timeouts += 1
                        read.timeouts += 1
                    else:
                        one.ms.append((arrived[0] - t0) * 1000)
                        read.ms.append((arrived[1] - t0) * 1000)
                    last = swarm.wait_all(mid, WAIT_S)
                    if last is None:
                        every.timeouts += 1
                    else:
                        every.ms.append((last - t0) * 1000)
                    time.sleep(random.uniform(0.002, 0.01))  # apart: no batching by luck
        finally:
            conn.close()
        out.report = swarm.finish(ids, started)
    finally:
        if reader is not None:
            reader.close()
        swarm.stop()
    return out
