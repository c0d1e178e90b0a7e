"""Instructions per request, counted by valgrind's callgrind: a measure that the machine's other
work does not move (throughput on a shared machine varies ±30% between runs; instruction counts
repeat to within a fraction of a percent).

    python -m bench.instructions [--few 200] [--many 1200]

Each server (the hello-world baseline on uvloop, Threadline get by id and list page at 1k) runs
under callgrind twice, serving `--few` and then `--many` requests over one keep-alive connection
from this process; the difference of the two totals over the difference of the counts is the cost
of one request, start-up and shutdown cancelled out. Both runs first get every message once, so
the first read of each line (its classification, a Jan line's normalization) cancels out too: the
numbers are the steady state. One connection, one request at a time: the
event loop's per-wakeup cost is in every request here, where wrk's 32 connections share it.
Prints a markdown table. Needs `valgrind` (Debian package); each server run takes 20-60 s.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from . import data
from .procs import PYTHON, REPO, free_port


def _collected(argv: list[str], env: dict[str, str], paths: list[str]) -> int:
    """Instructions callgrind counted for a server that served `paths` and was stopped."""
    port = free_port()
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", PYTHON,
           *[a.replace("{port}", str(port)) for a in argv]]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env,
                                                "THREADLINE_PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server under callgrind did not start") from None
                time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for path in paths:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path}: {resp.status}")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    m = re.search(r"Collected : (\d+)", err)
    if m is None:
        raise RuntimeError(f"no callgrind total: {err[-500:]}")
    return int(m.group(1))


def per_request(argv: list[str], env: dict[str, str], paths: list[str], few: int,
                many: int, warm: list[str] | None = None) -> float:
    """Instructions of one request of `paths`; `warm` is served first in both runs (so it cancels
    out): the steady state, not the first touch of each line, is what gets measured."""
    warm = warm or []
    with ThreadPoolExecutor(2) as pool:  # the two runs side by side: one per core
        small = pool.submit(_collected, argv, env, warm + paths[:few])
        large = pool.submit(_collected, argv, env, warm + paths[:many])
        return (large.result() - small.result()) / (many - few)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    p.add_argument("--few", type=int, default=200)
    p.add_argument("--many", type=int, default=1200)
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench.instructions: valgrind is not installed (sudo apt-get install -y valgrind)",
              file=sys.stderr)
        return 2
    ds = data.dataset("1k")
    ids = [line for line in ds.ids_file.read_text().split() if line]
    rng = random.Random(1)
    base = f"/v1/threads/{ds.thread_id}/messages"
    gets = [f"{base}/{rng.choice(ids)}" for _ in range(args.many)]
    lists = [f"{base}?limit=20&order=desc&after={rng.choice(ids)}" for _ in range(args.many)]
    # Every message once, first: each line is classified (and a Jan-shaped one normalized into
    # the line cache) on its first read, which wrk's runs pay in their first fraction of a second.
    warm = [f"{base}/{i}" for i in ids]
    tl = ["-m", "service", "--data-dir", str(ds.path)]
    env = {"THREADLINE_WATCH": "false", "PYTHONHASHSEED": "0"}
    hello = per_request(["-m", "bench.baselines", "hello", "--port", "{port}", "--uvloop"], {},
                        gets, args.few, args.many)
    rows = [("hello-world GET (uvloop)", hello),
            ("get by id, 1k", per_request(tl, env, gets, args.few, args.many, warm)),
            ("list page of 20, 1k", per_request(tl, env, lists, args.few, args.many, warm))]
    print("| request | instructions | hello-world / it |\n|---|---:|---:|")
    for name, count in rows:
        print(f"| {name} | {count / 1000:,.0f}k | {hello / count:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
