"""The results table: one markdown row per measurement, with ratios, the issue's target and whether
it is met (and by how much it is missed)."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass

COLUMNS = ("suite", "size", "threadline", "hello", "whole", "vs_hello", "vs_whole", "target",
           "status", "notes")
HEADER = ("| suite | size | Threadline | hello-world | whole-file | TL / hello | TL / whole-file "
          "| target | met? | notes |\n|---|---|---:|---:|---:|---:|---:|---|---|---|")


@dataclass
class Row:
    suite: str
    size: str
    threadline: str
    hello: str = "—"
    whole: str = "—"
    vs_hello: str = "—"
    vs_whole: str = "—"
    target: str = ""
    status: str = ""
    notes: str = ""

    def markdown(self) -> str:
        return "| " + " | ".join(getattr(self, c).replace("|", "\\|") for c in COLUMNS) + " |"


def rate(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:,.0f}/s" if v >= 10 else f"{v:.2f}/s"


def pct(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:.0%}"


def times(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:,.0f}x" if v >= 10 else f"{v:.2f}x"


def at_least(value: float, goal: float) -> str:
    if math.isnan(value):
        return "?"
    return "✓" if value >= goal else f"✗ {value / goal:.0%} of target"


def at_most(value: float, goal: float) -> str:
    if math.isnan(value):
        return "?"
    return "✓" if value <= goal else f"✗ {value / goal:.1f}x over"


def div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"


def environment(mode: str, seconds: float, repeats: int, server_cpu: int | None,
                client_cpu: int | None) -> str:
    import aiohttp
    import msgspec

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       "?")
    except OSError:
        pass
    load = os.getloadavg()
    pin = (f"server on CPU {server_cpu}, load generator on CPU {client_cpu}"
           if server_cpu is not None else "no pinning (fewer than 2 CPUs)")
    return "\n".join([
        f"- mode: **{mode}**; wrk `-t1 -c32 -d{seconds:g}s` (creates `-c64`), median of "
        f"{repeats} run(s), interleaved with the baselines",
        f"- machine: {cpu}, {os.cpu_count()} CPUs; {pin}; load average at start "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work on the machine makes numbers "
        "noisy; the ratios are measured side by side to cancel most of it)",
        f"- Python {platform.python_version()}, aiohttp {aiohttp.__version__}, msgspec "
        f"{msgspec.__version__}, {_cmd(['wrk', '--version'])}",
    ])
