"""Where a request's time goes: py-spy samples the Threadline server while wrk drives one request
path at it; the collapsed stacks are saved and summarised as the top self-time and inclusive
frames. Only the main thread's stacks are kept (the event loop, where requests are served), and
py-spy leaves out the time it waits in epoll: percentages are of the loop's busy time, syscalls
made from it (send, pread) included.

py-spy comes with the `bench` extra (`pip install -e '.[bench]'`); without it this is skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_MAIN = "_run_module_as_main "
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?P<line>:\d+)?\)$")


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@dataclass
class Profile:
    samples: int
    self_top: list[tuple[str, float]]
    inclusive_top: list[tuple[str, float]]
    raw_path: Path


def _short(frame: str, line: bool = False) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker.startswith("/lib/"):
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    else:
        path = path.split("/work/main/", 1)[-1]
    at = (m.group("line") or "") if line else ""
    return f"{m.group('func')} ({path}{at})"


def summarise(raw: Path, top: int = 40) -> Profile:
    selfs: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        raw_frames = [f for f in stack.split(";") if "(" in f]
        if not raw_frames or not raw_frames[0].startswith(_MAIN):
            continue  # another thread (the watcher's, the thread pool's): not request work
        frames = [_short(f) for f in raw_frames]
        total += n
        selfs[_short(raw_frames[-1], line=True)] += n  # the line says which call it was in
        for f in set(frames):
            incl[f] += n
    pct = 100.0 / total if total else 0.0

    def best(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, v * pct) for k, v in c.most_common(top)]

    return Profile(total, best(selfs), best(incl), raw)


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> Profile | None:
    """Sample `pid` for `seconds` (run the load meanwhile); None if py-spy is missing or fails."""
    exe = py_spy()
    if exe is None:
        return None
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(int(seconds), 1)),
           "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        print(f"bench: py-spy failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return summarise(out)


_BORING = frozenset({"BaseEventLoop._run_once", "BaseEventLoop.run_forever", "Handle._run",
                     "BaseEventLoop.run_until_complete", "run_app", "<module>", "_run_code",
                     "_run_module_as_main", "main", "serve"})


def markdown(title: str, p: Profile, top: int = 12) -> str:
    lines = [f"#### {title} ({p.samples} busy samples; raw stacks: `{p.raw_path.name}`)", "",
             "| self % | frame | | incl % | frame |", "|---:|---|---|---:|---|"]
    # Inclusive: skip the frames every request has (event loop, run_app) that say nothing.
    inc = [(f, v) for f, v in p.inclusive_top if f.split(" (")[0] not in _BORING]
    for i in range(top):
        s = p.self_top[i] if i < len(p.self_top) else ("", 0.0)
        c = inc[i] if i < len(inc) else ("", 0.0)
        lines.append(f"| {s[1]:.1f} | `{s[0]}` | | {c[1]:.1f} | `{c[0]}` |" if s[0] or c[0]
                     else "")
    lines.append("\nUnder uvloop the loop's own C work (epoll, socket reads and writes) shows as "
                 "self time of `run_app`: py-spy sees no Python frames inside it.")
    return "\n".join(x for x in lines if x) + "\n"
