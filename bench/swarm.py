"""The SSE subscriber swarm, run as its own process by the `sse` suite:

    python -m bench.swarm --port P --thread T --global G --per-thread K

Opens G streams on `/v1/events` and K on `/v1/threads/T/events` (one asyncio process, uvloop if
installed; it inherits the bench's pinning to the client core), then prints one JSON line
`{"ready": n, "failed": m, "errors": [...]}` once every connection is made and its request sent
(not once the response headers arrive: a server may hold them back until the first event, so the
bench sends warm-up events until one reaches every stream). From then on, each time every open
stream has received
the `thread.message.created` event of a message, it prints `{"id": ..., "t": ...}` where `t` is
when the last stream got it, on the `time.monotonic()` clock (CLOCK_MONOTONIC: comparable across
processes).

"Got it" is when the kernel received the bytes that completed the event on that stream (its
receive timestamp, `SO_TIMESTAMPNS`), not when this process came round to reading them: one
process reading 999 sockets on the client core lags the server by milliseconds, and that lag is
the bench's, not the server's. (Without kernel timestamps it falls back to the read time.)

A line `{"expect": [ids], "started": {id: t}}` on stdin ends the run: it waits up to 5 s for
stragglers, prints `{"streams": n, "complete": c, "missing": m, "duplicates": d, "closed": k,
"refused": r, "delivery_ms": {...}}` (`complete`: streams that received every expected id;
`refused`: answered other than a 200 event stream; `delivery_ms`: p50/p99/max over every delivery
to every stream of the time from `started` to its arrival, per kind of start given) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import struct
import sys
import time
from typing import Any

import msgspec

CREATED = b"thread.message.created"
CONNECT_AT_ONCE = 50  # below the server's listen backlog (128): no SYN retries while connecting
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the kernel's receive time
READ_SIZE = 65536


def timed_socket(sock: socket.socket) -> bool:
    """Ask the kernel to stamp what `sock` receives (see `recv_timed`); False if it cannot."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def recv_timed(sock: socket.socket) -> tuple[bytes, float]:
    """Read what is there, and when (on the `time.monotonic()` clock) the kernel received the
    last of it: the receive timestamp (CLOCK_REALTIME) moved onto the monotonic clock, or the
    read time when the kernel gave none."""
    data, ancillary, _, _ = sock.recvmsg(READ_SIZE, 64)
    now_mono, now_real = time.monotonic(), time.time()
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
            sec, nsec = struct.unpack("qq", raw[:16])
            return data, min(now_mono, now_mono - (now_real - (sec + nsec / 1e9)))
    return data, now_mono


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    s = sorted(values)
    return {"n": len(s), "p50": s[len(s) // 2], "p99": s[round(0.99 * (len(s) - 1))],
            "max": s[-1]}


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
        self.arrivals: dict[str, list[float]] = {}  # per message, when each stream got it
        self.done: set[str] = set()
        self.changed = asyncio.Event()
        self.alive = 0  # streams open now (kept as a count: it is checked on every event)

    def got(self, mid: str, now: float) -> None:
        n = self.count.get(mid, 0) + 1
        self.count[mid] = n
        self.last[mid] = max(now, self.last.get(mid, now))
        self.arrivals.setdefault(mid, []).append(now)
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


class Stream:
    """One SSE connection over HTTP/1.0 (so the body is not chunked: it is the event stream),
    read from the event loop with `recvmsg` for the kernel's receive timestamps."""

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
        self.sock: socket.socket | None = None

    async def connect(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 30)
            timed_socket(sock)
            await loop.sock_sendall(sock, f"GET {self.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                                    "Accept: text/event-stream\r\n\r\n".encode())
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.open = True
        self.tally.alive += 1
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            data, when = recv_timed(self.sock)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, when = b"", 0.0
        if not data:
            self.close()
            return
        self.received(data, when)

    def received(self, data: bytes, now: float) -> None:
        if not self.answered:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            self.answered = True
            head, data = self.head.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if " 200 " not in status + " " or b"text/event-stream" not in head.lower():
                self.refused = status
                self.close()
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

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
        was_open, self.open = self.open, False
        if was_open:
            self.tally.lost()


async def _connect(port: int, path: str, tally: Tally) -> tuple[Stream, str]:
    stream = Stream(path, tally)
    try:
        await stream.connect(port)
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
    started: dict[str, dict[str, float]] = cmd.get("started", {})  # kind -> {id: t}
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
           "refused": sum(1 for s in tally.streams if s.refused),
           "delivery_ms": {kind: percentiles([(t - t0) * 1000 for mid, t0 in times.items()
                                              for t in tally.arrivals.get(mid, [])])
                           for kind, times in started.items()}})
    for s in tally.streams:
        s.close()
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
