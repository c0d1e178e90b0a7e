"""The floor under the SSE fan-out rows: how long the kernel alone takes to deliver one event to
each of N loopback TCP sockets, with no server at all (`bench/c/sendfloor.c`: a C loop of `send`
calls on the server's core, the far ends read with epoll by a process on the client's core).

A server's fan-out is that loop plus its own work, so the p99 of these deliveries is the least any
server written in any language can reach on this machine for the same N; the SSE rows are
compared against it. Needs a C compiler (`cc`); without one the row says so.

    python -m bench.sendfloor [--subscribers 1000] [--rounds 50]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from .report import Row, at_most

SOURCE = Path(__file__).parent / "c" / "sendfloor.c"
EVENT_BYTES = 700  # about a created event for a short message, framing included


def compile_floor(out_dir: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    exe = out_dir / "sendfloor"
    subprocess.run([cc, "-O2", "-o", str(exe), str(SOURCE)], check=True)
    return exe


def deliveries(exe: Path, n: int, rounds: int, send_cpu: int | None,
               recv_cpu: int | None) -> list[list[float]]:
    """Per round, the ms from its start at which each of the n sends had returned."""
    out = subprocess.run([str(exe), str(n), str(rounds), str(EVENT_BYTES),
                          str(-1 if send_cpu is None else send_cpu),
                          str(-1 if recv_cpu is None else recv_cpu)],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return [[float(v) for v in line.split()] for line in out.splitlines() if line.strip()]


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def floor_row(n: int, rounds: int, send_cpu: int | None, recv_cpu: int | None) -> Row:
    name, size = "SSE floor: the kernel alone (C send loop, no server)", f"{n:,} sockets"
    with tempfile.TemporaryDirectory() as tmp:
        exe = compile_floor(Path(tmp))
        if exe is None:
            return Row(name, size, "—", notes="not measured: no C compiler (`cc`) on this machine")
        per_round = deliveries(exe, n, rounds, send_cpu, recv_cpu)
    every = [ms for r in per_round for ms in r]
    last = [r[-1] for r in per_round]
    p50, p99 = quantile(every, 0.50), quantile(every, 0.99)
    return Row(name, size, f"p50 {p50:.1f} / p99 {p99:.1f} ms", target="p99 ≤ 5 ms",
               status=at_most(p99, 5),
               notes=(f"{rounds} rounds of one {EVENT_BYTES}-byte write to each socket, receivers "
                      "reading with epoll on the other core; a delivery's time is when its send "
                      f"returned (the bytes are in the receiver's socket then); whole loop p50 "
                      f"{statistics.median(last):.1f} / max {max(last):.1f} ms: the least any "
                      "server pays for this fan-out on this core"))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sendfloor", description=__doc__)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--send-cpu", type=int, default=0)
    p.add_argument("--recv-cpu", type=int, default=1)
    a = p.parse_args()
    print(floor_row(a.subscribers, a.rounds, a.send_cpu, a.recv_cpu).markdown())


if __name__ == "__main__":
    main()
