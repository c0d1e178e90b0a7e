"""Creates: POST throughput with fsync on and off."""

from __future__ import annotations

import http.client
import json
import shutil
from dataclasses import asdict
from typing import Any

from . import data, load, procs
from .report import (
    Row,
    at_least,
    rate,
)
from .run import Settings, running, say


def _post(port: int, path: str, body: bytes) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        out: dict[str, Any] = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"POST {path}: {resp.status} {out}")
        return out
    finally:
        conn.close()


def creates(cfg: Settings) -> list[Row]:
    rows = []
    for policy in ("always", "never"):
        scratch = data.scratch_dir(f"create-{policy}")
        try:
            tl = procs.threadline(f"threadline-create-{policy}", scratch, cfg.server_cpu,
                                  cfg.logs, {**cfg.env, "THREADLINE_FSYNC": policy})
            with running(tl):
                thread_id = _post(tl.port, "/v1/threads", b"{}")["id"]
                runs = []
                for _ in range(cfg.repeats):
                    run = load.run_wrk(tl.url, "create", [thread_id], seconds=cfg.seconds,
                                       connections=64, cpu=cfg.client_cpu)
                    say(f"create fsync={policy}: {run.rps:,.0f}/s (p99 {run.p99_ms:.1f} ms)")
                    runs.append(run)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        r = load.Result(runs)
        cfg.raw.setdefault("create", {})[policy] = [asdict(x) for x in runs]
        notes = f"64 clients; p50 {r.median_run.p50_ms:.1f} / p99 {r.median_run.p99_ms:.1f} ms"
        if r.bad:
            notes += f"; **{r.bad} errors/non-2xx**"
        durable = policy == "always"
        rows.append(Row(f"create, fsync={policy}" + (" (durable)" if durable else ""), "—",
                        rate(r.rps), target="≥ 5,000/s" if durable else "",
                        status=at_least(r.rps, 5000) if durable else "", notes=notes))
    return rows


# --- cold start-up and memory -------------------------------------------------------------------
