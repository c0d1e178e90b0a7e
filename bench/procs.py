"""Server processes for the bench: start pinned to a core, wait for `/healthz`, measure, stop.

Each server is its own process (`taskset -c CPU python -m ...`, which execs, so the pid we hold is
the server's). Its output goes to a log file, shown if it fails to start.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def healthz_status(port: int, timeout: float = 1.0) -> int | None:
    """Status of GET /healthz, or None if nothing answers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return None
    finally:
        conn.close()


def healthz_json(port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """The body of a 200 GET /healthz, or None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of the process, in bytes (`RssAnon`: its own memory, no file pages)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of `pid`, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def family(pid: int) -> list[int]:
    """`pid` and its descendants (a multi-worker server's workers are its children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def wait_idle(servers: Sequence[Server], quiet: float = 0.15, timeout: float = 600.0) -> None:
    """Block until no server has used CPU for `quiet` seconds: a run that ends with requests in
    flight (the whole-file server takes seconds per request) must not load the next run's core."""
    pids = [p for s in servers if s.proc is not None and s.proc.poll() is None
            for p in family(s.pid)]
    last = [cpu_ticks(p) for p in pids]
    calm_since = started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        time.sleep(0.05)
        now = [cpu_ticks(p) for p in pids]
        t = time.perf_counter()
        if now != last:
            last, calm_since = now, t
        elif t - calm_since >= quiet:
            return


class Server:
    """One server process. `start()` returns seconds from spawn to the first `/healthz` 200."""

    def __init__(self, name: str, argv: Sequence[str], cpu: int | str | None, log_dir: Path,
                 env: Mapping[str, str] | None = None) -> None:
        # cpu: one core, or a taskset list such as "0,1"; None: no pinning of its own (it then
        # inherits the bench's pinning to the client core)
        self.name = name
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.cpu = cpu
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 900.0) -> float:
        cmd = list(self.argv)
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns it until stop()
        started = self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.log_path.read_text()[-3000:])
            if healthz_status(self.port, timeout=5.0) == 200:
                return time.perf_counter() - started
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s")


    def indexed(self, timeout: float = 900.0) -> float:
        """Seconds from spawn until /healthz reports no id table still being built: the index
        whole (Threadline answers before that; see service/index/messages.py)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            body = healthz_json(self.port, timeout=5.0)
            if body is not None and not body.get("id_tables_pending"):
                return time.perf_counter() - self.spawned_at
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: id tables not built after {timeout:.0f} s")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def threadline(name: str, data_dir: Path, cpu: int | str | None, log_dir: Path,
               env: Mapping[str, str] | None = None) -> Server:
    argv = [PYTHON, "-m", "service", "--data-dir", str(data_dir), "--port", "{port}"]
    return Server(name, argv, cpu, log_dir, env)


def hello(cpu: int | None, log_dir: Path, uvloop: bool = False) -> Server:
    argv = [PYTHON, "-m", "bench.baselines", "hello", "--port", "{port}"]
    return Server("hello-uvloop" if uvloop else "hello", argv + ["--uvloop"] * uvloop, cpu,
                  log_dir)


def wholefile(name: str, data_dir: Path, cpu: int | None, log_dir: Path) -> Server:
    argv = [PYTHON, "-m", "bench.baselines", "wholefile", "--data-dir", str(data_dir),
            "--port", "{port}"]
    return Server(name, argv, cpu, log_dir)
