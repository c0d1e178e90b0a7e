"""Workers: reads with one and two processes on the same folder."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import asdict

from service.config import FIELDS as SERVICE_SETTINGS

from . import data, load, procs
from .report import (
    Row,
    div,
    rate,
    times,
)
from .run import Settings, running, say, spread


def _wait_workers(port: int, count: int, timeout: float = 300.0) -> int:
    """Poll /healthz on fresh connections (SO_REUSEPORT spreads them over the workers) until
    `count` different worker pids answered 200; returns how many did."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < count and time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            body = json.loads(resp.read())
            if resp.status == 200 and "pid" in body:
                pids.add(body["pid"])
        except (OSError, ValueError):
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    return len(pids)


def workers_suite(cfg: Settings) -> list[Row]:
    name = "multi-process reads (2 vs 1 workers)"
    if "workers" not in SERVICE_SETTINGS:
        return [Row(name, "—", "—", notes="not measured: Threadline has no `workers` setting")]
    if cfg.server_cpu is None or cfg.client_cpu is None:
        return [Row(name, "—", "—", notes="not measured: fewer than 2 CPUs")]
    ds = data.dataset("1k" if cfg.quick else "100k")
    ids = [ds.thread_id, str(ds.ids_file)]
    both = ",".join(str(c) for c in sorted({cfg.server_cpu, cfg.client_cpu}))
    env = {k: v for k, v in cfg.env.items() if k != "THREADLINE_WORKERS"}

    def server(key: str, cpu: int | str, workers: int) -> procs.Server:
        return procs.threadline(f"threadline-{key}-{ds.label}", ds.path, cpu, cfg.logs,
                                {**env, "THREADLINE_WORKERS": str(workers)})

    # (key, server, wrk's CPUs): 1 worker as in the rows above; 1 and 2 workers with the server
    # and wrk sharing both CPUs, so the ratio compares like with like.
    one, one_both, two = server("w1", cfg.server_cpu, 1), server("w1-both", both, 1), \
        server("w2", both, 2)
    cases: list[tuple[str, procs.Server, int | str]] = [
        ("1 worker", one, cfg.client_cpu), ("1 worker, both CPUs", one_both, both),
        ("2 workers", two, both)]
    runs: dict[str, list[load.Run]] = {}
    say(f"workers at {ds.label}: starting servers")
    with running(one, one_both, two):
        seen = _wait_workers(two.port, 2)
        if seen < 2:
            return [Row(name, ds.label, "—",
                        notes=f"not measured: only {seen} of 2 workers answered /healthz")]
        for rep in range(cfg.repeats):
            for key, srv, wrk_cpu in cases if rep % 2 == 0 else cases[::-1]:
                procs.wait_idle([one, one_both, two])
                run = load.run_wrk(srv.url, "get", ids, seconds=cfg.seconds, connections=32,
                                   cpu=wrk_cpu)
                runs.setdefault(key, []).append(run)
                say(f"  workers {ds.label} {key}: {run.rps:,.1f}/s (p99 {run.p99_ms:.1f} ms)")
    cfg.raw["workers"] = {k: [asdict(r) for r in v] for k, v in runs.items()}
    res = {k: load.Result(v) for k, v in runs.items()}

    def notes(key: str, where: str) -> str:
        r = res[key]
        out = [where, f"p50 {r.median_run.p50_ms:.1f} / p99 {r.median_run.p99_ms:.1f} ms",
               spread(r)]
        if r.bad:
            out.append(f"**{r.bad} errors/non-2xx**")
        return "; ".join(out)

    r1, r1b, r2 = (res[k].rps for k in ("1 worker", "1 worker, both CPUs", "2 workers"))
    return [
        Row("get, 1 worker", ds.label, rate(r1),
            notes=notes("1 worker", f"server on CPU {cfg.server_cpu}, wrk on CPU "
                                    f"{cfg.client_cpu} (as in the rows above)")),
        Row("get, 1 worker, both CPUs", ds.label, rate(r1b),
            notes=notes("1 worker, both CPUs", f"server and wrk both on CPUs {both} (the "
                                               "2-worker setup, for a like-for-like ratio)")),
        Row("get, 2 workers", ds.label, rate(r2),
            notes=notes("2 workers", f"`THREADLINE_WORKERS=2` (SO_REUSEPORT) and wrk all on "
                                     f"CPUs {both}: wrk's own CPU comes out of the same 2 cores, "
                                     "and the kernel hashes wrk's 32 connections over the "
                                     "workers, not always evenly")),
        Row(name, ds.label, times(div(r2, r1b)),
            notes=f"get/s, 2 workers over 1 worker on the same CPUs; over 1 worker pinned "
                  f"with wrk on its own core: {times(div(r2, r1))}"),
    ]


# --- profile ------------------------------------------------------------------------------------
