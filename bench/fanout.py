"""SSE latency with many open subscribers: a swarm of streams (`bench.swarm`, its own asyncio
process) holds N-1 subscriptions open, half on `/v1/events` and half on the thread's stream; this
process opens the N-th, the measured one (the thread's stream, read by its own thread so the
swarm's reading does not delay its timestamps), then times one event at a time:

- API create: `POST /v1/threads/{id}/messages` → `thread.message.created` on the measured stream;
- external append: a Jan-shaped line appended to `messages.jsonl` by this process (plain
  `O_APPEND` write, no lock) → the same event, through the server's watcher.

For each, it also takes the time until the last of the swarm's streams had the event (the fan-out
complete), and waits for that before the next event so one fan-out never overlaps the next. At
the end the swarm checks that every one of its streams received every event.
"""

from __future__ import annotations

import http.client
import json
import queue
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import live
from .data import Dataset
from .procs import PYTHON, REPO

WAIT_S = 5.0  # an event not seen within this is counted as missing


@dataclass
class Fanout:
    subscribers: int  # streams open while measuring: the swarm's plus the measured one
    api: live.Latencies = field(default_factory=live.Latencies)  # POST → measured stream
    external: live.Latencies = field(default_factory=live.Latencies)  # append → measured
    api_all: live.Latencies = field(default_factory=live.Latencies)  # POST → every stream
    external_all: live.Latencies = field(default_factory=live.Latencies)
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
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.done[mid]

    def finish(self, ids: list[str]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"expect": ids}).encode() + b"\n")
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
             reader: live._SseReader, tries: int = 30) -> int:
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
    reader: live._SseReader | None = None
    try:
        ready = swarm.next_line(180)
        if ready is None or ready.get("failed") or ready.get("ready") != subscribers - 1:
            out.note = f"the swarm could not open its streams: {ready} (see {log})"
            return out
        reader, why = live.subscribe(port, f"/v1/threads/{ds.thread_id}/events")
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
                one, every = (out.api, out.api_all) if kind == "api" else (
                    out.external, out.external_all)
                for i in range(count):
                    started, started_mono = time.perf_counter(), time.monotonic()
                    if kind == "api":
                        mid = _create(conn, ds.thread_id, i)
                    else:
                        mid, line = live._new_line(ds, i)
                        live._append(ds.jsonl, line)
                    ids.append(mid)
                    arrived = reader.wait_for(mid, WAIT_S)
                    if arrived is None:
                        one.timeouts += 1
                    else:
                        one.ms.append((arrived - started) * 1000)
                    last = swarm.wait_all(mid, WAIT_S)
                    if last is None:
                        every.timeouts += 1
                    else:
                        every.ms.append((last - started_mono) * 1000)
                    time.sleep(random.uniform(0.002, 0.01))  # apart: no batching by luck
        finally:
            conn.close()
        out.report = swarm.finish(ids)
    finally:
        if reader is not None:
            reader.close()
        swarm.stop()
    return out
