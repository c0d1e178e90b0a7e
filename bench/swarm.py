"""The SSE subscriber swarm, run as its own process by the `sse` suite:

    python -m bench.swarm --port P --thread T --global G --per-thread K

Opens G streams on `/v1/events` and K on `/v1/threads/T/events` (one asyncio process, uvloop if
installed; it inherits the bench's pinning to the client core), then prints one JSON line
`{"ready": n, "failed": m, "errors": [...]}` once every connection is made and its request sent
(not once the response headers arrive: a server may hold them back until the first event, so the
bench sends warm-up events until one reaches every stream). From then on, each time every open
stream has received
the `thread.message.created` event of a message, it prints `{"id": ..., "t": ...}` where `t` is
`time.monotonic()` when the last stream got it (CLOCK_MONOTONIC: comparable across processes).
A line `{"expect": [ids]}` on stdin ends the run: it waits up to 5 s for stragglers, prints
`{"streams": n, "complete": c, "missing": m, "duplicates": d, "closed": k, "refused": r}`
(`complete`: streams that received every expected id; `refused`: answered other than a 200 event
stream) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, cast

import msgspec

CREATED = b"thread.message.created"
CONNECT_AT_ONCE = 50  # below the server's listen backlog (128): no SYN retries while connecting


class _Id(msgspec.Struct):
    id: str


_decode_id = msgspec.json.Decoder(_Id).decode


class Tally:
    """What every stream received: per message id, how many streams have it and when the last
    one got it."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.count: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.done: set[str] = set()
        self.changed = asyncio.Event()
        self.alive = 0  # streams open now (kept as a count: it is checked on every event)

    def got(self, mid: str, now: float) -> None:
        n = self.count.get(mid, 0) + 1
        self.count[mid] = n
        self.last[mid] = now
        self._check(mid)

    def _check(self, mid: str) -> None:
        if mid not in self.done and self.count.get(mid, 0) >= self.alive:
            self.done.add(mid)
            _emit({"id": mid, "t": self.last[mid]})
        self.changed.set()

    def lost(self) -> None:
        self.alive -= 1
        for mid in list(self.count):
            self._check(mid)


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Stream(asyncio.Protocol):
    """One SSE connection over HTTP/1.0 (so the body is not chunked: it is the event stream)."""

    def __init__(self, path: str, tally: Tally) -> None:
        self.path = path
        self.tally = tally
        self.head = b""
        self.buf = b""
        self.answered = False  # the response headers came
        self.refused = ""  # the status line, if it was not a 200 event stream
        self.open = False
        self.seen: set[str] = set()
        self.events = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.open = True
        self.tally.alive += 1
        self.transport.write(f"GET {self.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                        "Accept: text/event-stream\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.answered:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            self.answered = True
            head, data = self.head.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if " 200 " not in status + " " or b"text/event-stream" not in head.lower():
                self.refused = status
                assert self.transport is not None
                self.transport.close()
                return
        self.buf += data
        if b"\n\n" not in self.buf:
            return
        *blocks, self.buf = self.buf.split(b"\n\n")
        for block in blocks:
            if CREATED not in block:
                continue  # pings, other event kinds
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    mid = _decode_id(line[5:]).id
                    self.events += 1
                    if mid not in self.seen:
                        self.seen.add(mid)
                        self.tally.got(mid, now)

    def connection_lost(self, exc: Exception | None) -> None:
        was_open, self.open = self.open, False
        if was_open:
            self.tally.lost()


async def _connect(port: int, path: str, tally: Tally) -> tuple[Stream, str]:
    loop = asyncio.get_running_loop()
    stream = Stream(path, tally)
    try:
        await asyncio.wait_for(loop.create_connection(lambda: stream, "127.0.0.1", port), 30)
    except (OSError, TimeoutError) as exc:
        return stream, f"{type(exc).__name__}: {exc}"
    return stream, ""


async def _read_stdin() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main_async(port: int, thread_id: str, n_global: int, n_thread: int) -> int:
    tally = Tally()
    paths = ["/v1/events"] * n_global + [f"/v1/threads/{thread_id}/events"] * n_thread
    errors: list[str] = []
    for i in range(0, len(paths), CONNECT_AT_ONCE):
        batch = await asyncio.gather(*(_connect(port, p, tally)
                                       for p in paths[i:i + CONNECT_AT_ONCE]))
        for stream, err in batch:
            if err:
                errors.append(err)
            else:
                tally.streams.append(stream)
    _emit({"ready": len(tally.streams), "failed": len(errors), "errors": errors[:5]})
    while True:
        line = await _read_stdin()
        if not line:
            return 1  # the bench went away
        cmd = json.loads(line)
        if "expect" in cmd:
            break
    expect = set(cmd["expect"])
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and not all(expect <= s.seen for s in tally.streams
                                                  if s.open):
        tally.changed.clear()
        try:
            await asyncio.wait_for(tally.changed.wait(), deadline - time.monotonic())
        except TimeoutError:
            break
    _emit({"streams": len(tally.streams),
           "complete": sum(1 for s in tally.streams if expect <= s.seen),
           "missing": sum(len(expect - s.seen) for s in tally.streams),
           "duplicates": sum(s.events - len(s.seen) for s in tally.streams),
           "closed": sum(1 for s in tally.streams if not s.open),
           "refused": sum(1 for s in tally.streams if s.refused)})
    for s in tally.streams:
        if s.transport is not None:
            s.transport.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.swarm", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--thread", required=True)
    p.add_argument("--global", dest="n_global", type=int, default=0)
    p.add_argument("--per-thread", dest="n_thread", type=int, default=0)
    a = p.parse_args(argv)
    try:
        import uvloop
        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    code: int = run(main_async(a.port, a.thread, a.n_global, a.n_thread))
    return code


if __name__ == "__main__":
    sys.exit(main())
