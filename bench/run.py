"""What every suite shares: the settings from the command line, servers that run for a block,
one measurement kept with its repeats."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import data, load, procs

RESULTS = Path(__file__).resolve().parent / "results"
SUITES = ("get", "list", "create", "startup", "live", "sse", "workers", "micro", "profile")


@dataclass
class Settings:
    quick: bool
    sizes: list[str]
    suites: set[str]
    seconds: float
    repeats: int
    wholefile_max: int
    appends: int
    sse_subscribers: int
    profile_seconds: float
    server_cpu: int | None
    client_cpu: int | None
    env: dict[str, str]
    logs: Path
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def largest(self) -> data.Dataset:
        return data.dataset(max(self.sizes, key=lambda s: data.SIZES[s]))


def parse_args(argv: list[str]) -> Settings:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="smoke run (1k and 100k, 1 s runs, 1 repeat): well under a minute")
    p.add_argument("--suites", nargs="+", choices=SUITES, help="default: all")
    p.add_argument("--sizes", nargs="+", choices=list(data.SIZES),
                   help="thread sizes (default 1k 100k 1M; --quick: 1k 100k)")
    p.add_argument("--seconds", type=float, help="seconds per wrk run (default 5; quick 1)")
    p.add_argument("--repeats", type=int, help="runs per measurement, median taken "
                   "(default 3; quick 1)")
    p.add_argument("--wholefile-max", type=int,
                   help="largest thread the whole-file baseline is run on (default 100000; "
                   "quick 1000: it needs seconds per request at 100k messages)")
    p.add_argument("--appends", type=int, help="live appends timed (default 200; quick 30)")
    p.add_argument("--sse-subscribers", type=int,
                   help="SSE streams open during the sse suite (default 1000; quick 100)")
    p.add_argument("--no-watch", action="store_true",
                   help="run Threadline with THREADLINE_WATCH=false for the get/list/create/"
                   "startup suites (the live suite always watches)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the Threadline server (repeatable), e.g. "
                   "THREADLINE_LOG_LEVEL=warning")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    a = p.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in a.env)
    if a.no_watch:
        env["THREADLINE_WATCH"] = "false"
    pin = (os.cpu_count() or 1) >= 2
    return Settings(
        quick=a.quick,
        sizes=a.sizes or (["1k", "100k"] if a.quick else ["1k", "100k", "1M"]),
        suites=set(a.suites or SUITES),
        seconds=a.seconds or (1.0 if a.quick else 5.0),
        repeats=a.repeats or (1 if a.quick else 3),
        wholefile_max=a.wholefile_max or (1000 if a.quick else 100_000),
        appends=a.appends or (30 if a.quick else 200),
        sse_subscribers=max(a.sse_subscribers or (100 if a.quick else 1000), 2),
        profile_seconds=2.0 if a.quick else 10.0,
        server_cpu=a.server_cpu if pin else None,
        client_cpu=a.client_cpu if pin else None,
        env=env,
        logs=RESULTS / "logs",
    )


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def running(*servers: procs.Server) -> Iterator[None]:
    try:
        for s in servers:
            s.start()
        yield
    finally:
        for s in servers:
            s.stop()

def measure(cfg: Settings, runs: dict[str, list[load.Run]], label: str, key: str,
             server: procs.Server, script: str, args: list[str], conns: int = 32,
             seconds: float | None = None) -> None:
    run = load.run_wrk(server.url, script, args, seconds=seconds or cfg.seconds,
                       connections=conns, cpu=cfg.client_cpu)
    runs.setdefault(key, []).append(run)
    say(f"  {label} {key}: {run.rps:,.1f}/s (p99 {run.p99_ms:.1f} ms)")


def spread(r: load.Result) -> str:
    """The range of the repeated runs: how much to trust the median."""
    if len(r.runs) < 2:
        return "1 run"
    rates = sorted(x.rps for x in r.runs)
    return f"runs {rates[0]:,.0f} to {rates[-1]:,.0f}/s"

