"""The load generator: `wrk -t1 -cN -dDs` pinned to the client core, driven by a Lua script that
picks a random message id (get) or a random cursor (list) from the dataset's id sample for each
request, and reports its counts as one JSON line from wrk's `done()` hook.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_MISSING = ("bench: `wrk` is not installed. On Debian/Ubuntu: `sudo apt-get install -y wrk` "
               "(it is a Debian package; no other setup is needed).")

_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

_LOAD_IDS = r"""
local ids = {}
local thread_id = nil
function load(args)
  thread_id = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  math.randomseed(os.time())
end
"""

SCRIPTS: dict[str, str] = {
    # args: thread_id ids_file
    "get": _LOAD_IDS + r"""
function init(args) load(args) end
function request()
  return wrk.format("GET", "/v1/threads/" .. thread_id .. "/messages/" .. ids[math.random(#ids)])
end
""",
    # args: thread_id ids_file order
    "list": _LOAD_IDS + r"""
local order = "desc"
function init(args) load(args); order = args[3] end
function request()
  return wrk.format("GET", "/v1/threads/" .. thread_id .. "/messages?limit=20&order=" .. order ..
                    "&after=" .. ids[math.random(#ids)])
end
""",
    # args: path (one fixed GET: the app's per-request floor, e.g. /healthz)
    "path": r"""
local path = "/"
function init(args) path = args[1] end
function request() return wrk.format("GET", path) end
""",
    # args: thread_id
    "create": r"""
local path = nil
local n = 0
function init(args)
  path = "/v1/threads/" .. args[1] .. "/messages"
end
function request()
  n = n + 1
  local body = '{"role":"user","content":"benchmark message ' .. n ..
    ': the quick brown fox jumps over the lazy dog, again and again, until the disk is happy."}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
""",
}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class Run:
    """One wrk run."""

    requests: int
    seconds: float
    errors: int  # socket errors and timeouts
    non2xx: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Result:
    """The median of repeated runs (by requests/s), with every run kept."""

    runs: list[Run]

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def median_run(self) -> Run:
        return sorted(self.runs, key=lambda r: r.rps)[len(self.runs) // 2]

    @property
    def bad(self) -> int:
        return sum(r.errors + r.non2xx for r in self.runs)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)


def run_wrk(url: str, script: str, args: list[str], *, seconds: float, connections: int,
            cpu: int | str | None, timeout_s: int = 30) -> Run:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(SCRIPTS[script] + _DONE)
        lua = f.name
    secs = max(math.ceil(seconds), 1)  # wrk takes whole seconds
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{secs}s", f"--timeout={timeout_s}s",
           "-s", lua, url, "--", *args]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + timeout_s + 60)
    finally:
        Path(lua).unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} "
                           f"{out.stderr[-2000:]}")
    d = json.loads(line[len("BENCH_JSON "):])
    return Run(requests=d["requests"], seconds=d["duration_us"] / 1e6,
               errors=d["connect"] + d["read"] + d["write"] + d["timeout"], non2xx=d["status"],
               p50_ms=d["p50_us"] / 1000, p99_ms=d["p99_us"] / 1000)
