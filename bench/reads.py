"""Reads: get by id and list pages against the hello-world and whole-file baselines, per size."""

from __future__ import annotations

import functools
import http.client
import statistics
import time
from dataclasses import asdict

from . import data, load, procs
from .report import (
    Row,
    at_least,
    div,
    pct,
    rate,
    times,
)
from .run import Settings, measure, running, say, spread


def _uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


# --- reads: get and list ------------------------------------------------------------------------


def _probe(port: int, ds: data.Dataset) -> float:
    """Seconds one get takes (to size the whole-file runs)."""
    mid = data.read_ids(ds)[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        started = time.perf_counter()
        conn.request("GET", f"/v1/threads/{ds.thread_id}/messages/{mid}")
        conn.getresponse().read()
        return time.perf_counter() - started
    finally:
        conn.close()


def _disk_waits(port: int) -> int | None:
    """Threadline's count of reads whose bytes the page cache had dropped (store/resident.py)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for line in text.splitlines():
        if line.startswith("threadline_read_disk_waits_total "):
            return int(float(line.split()[1]))
    return None


def reads(cfg: Settings) -> list[Row]:
    rows: list[Row] = []
    hellos = [procs.hello(cfg.server_cpu, cfg.logs)]
    if _uvloop():
        hellos.append(procs.hello(cfg.server_cpu, cfg.logs, uvloop=True))
    list_means: dict[str, float] = {}
    with running(*hellos):
        for label in cfg.sizes:
            ds = data.dataset(label)
            ids = [ds.thread_id, str(ds.ids_file)]
            tl = procs.threadline(f"threadline-{label}", ds.path, cfg.server_cpu, cfg.logs,
                                  cfg.env)
            servers = [tl]
            wf = None
            if ds.messages <= cfg.wholefile_max:
                wf = procs.wholefile(f"wholefile-{label}", ds.path, cfg.server_cpu, cfg.logs)
                servers.append(wf)
            say(f"reads at {label}: starting servers")
            with running(*servers):
                runs: dict[str, list[load.Run]] = {}
                go = functools.partial(measure, cfg, runs, label)
                wf_latency = _probe(wf.port, ds) if wf is not None else 0.0
                cases: list[tuple[str, procs.Server, str, list[str]]] = [
                    (h.name, h, "get", ids) for h in hellos]
                if "get" in cfg.suites:
                    cases.append(("get", tl, "get", ids))
                if "list" in cfg.suites:
                    cases += [("list asc", tl, "list", [*ids, "asc"]),
                              ("list desc", tl, "list", [*ids, "desc"])]
                if label == cfg.sizes[0]:
                    # A handler that does no store work: what the app's stack (routing,
                    # the gate around each handler) costs per request, against the ceiling.
                    cases.append(("healthz", tl, "path", ["/healthz"]))
                waits_before = _disk_waits(tl.port)
                for rep in range(cfg.repeats):
                    # Alternate the order so drift in the machine's load favours no one.
                    for case in cases if rep % 2 == 0 else cases[::-1]:
                        procs.wait_idle([*hellos, *servers])
                        go(*case)
                    big = ds.messages > 10_000
                    if wf is not None and (rep == 0 or not big):
                        # The whole-file server is CPU-bound and serial: 2 connections give it
                        # the same throughput as 32 without leaving a long queue behind, a run
                        # lasts long enough for a few of its slow requests to complete, and
                        # one such run is enough (it has no variance worth a median).
                        conns, secs = (2, max(cfg.seconds, 4 * wf_latency)) if big else (
                            32, cfg.seconds)
                        for key, script, extra in (("wf get", "get", []),
                                                   ("wf list", "list", ["desc"])):
                            if key.split()[1] in cfg.suites:
                                procs.wait_idle([*hellos, *servers])
                                go(key, wf, script, [*ids, *extra], conns, secs)
                waits_after = _disk_waits(tl.port)
            res = {k: load.Result(v) for k, v in runs.items()}
            served = sum(res[k].requests for k in ("get", "list asc", "list desc") if k in res)
            waited = (f"{div(waits_after - waits_before, served):.0%} of its get/list requests "
                      "read bytes the page cache had dropped"
                      if waits_before is not None and waits_after is not None and served else "")
            cfg.raw.setdefault("reads", {})[label] = {k: [asdict(r) for r in v]
                                                      for k, v in runs.items()}
            ceiling = max(res[h.name].rps for h in hellos)
            ceiling_name = max(hellos, key=lambda h: res[h.name].rps).name
            for h in hellos:
                rows.append(Row("hello-world GET" + (" (uvloop)" if "uvloop" in h.name else ""),
                                label, "—", hello=rate(res[h.name].rps),
                                notes=f"p99 {res[h.name].median_run.p99_ms:.1f} ms; "
                                      f"{spread(res[h.name])}"))
            if "healthz" in res:
                r = res["healthz"]
                rows.append(Row("GET /healthz (stack floor)", label, rate(r.rps), rate(ceiling),
                                vs_hello=pct(div(r.rps, ceiling)),
                                notes="no store work: the app's own per-request cost (routing, "
                                      f"the gate around each handler); {spread(r)}"))
            for key in ("get", "list asc", "list desc"):
                if key not in res:
                    continue
                r = res[key]
                wf_key = "wf " + key.split()[0]
                w = res[wf_key].rps if wf_key in res else float("nan")
                vh, vw = div(r.rps, ceiling), div(r.rps, w)
                target, status = "", ""
                if key == "get" and label == "1M":
                    target, status = "≥ 75% hello", at_least(vh, 0.75)
                elif key == "get" and label == "100k":
                    target, status = "≥ 100x whole-file", at_least(vw, 100)
                elif key != "get":
                    target, status = "≥ 60% hello", at_least(vh, 0.60)
                notes = [f"p50 {r.median_run.p50_ms:.1f} / p99 {r.median_run.p99_ms:.1f} ms",
                         spread(r)]
                if r.bad:
                    notes.append(f"**{r.bad} errors/non-2xx**")
                if wf_key not in res and ds.messages > cfg.wholefile_max:
                    notes.append(f"whole-file not run above {cfg.wholefile_max:,} messages")
                elif wf_key in res and ds.messages > 10_000:
                    notes.append("whole-file: one run at -c2")
                notes.append(f"ceiling: {ceiling_name}")
                if waited:
                    notes.append(waited)
                rows.append(Row(key, label, rate(r.rps), rate(ceiling),
                                rate(w) if wf_key in res else "—", pct(vh), times(vw),
                                target, status, "; ".join(notes)))
            lists = [res[k].rps for k in ("list asc", "list desc") if k in res]
            if lists:
                list_means[label] = statistics.mean(lists)
    if len(list_means) >= 2:
        small = min(list_means, key=lambda s: data.SIZES[s])
        large = max(list_means, key=lambda s: data.SIZES[s])
        flat = list_means[large] / list_means[small]
        rows.append(Row("list flatness", f"{large} vs {small}", times(flat),
                        target="flat (≥ 0.9x)", status=at_least(flat, 0.9),
                        notes="mean of asc+desc list/s at the largest size over the smallest"))
    return rows


# --- creates ------------------------------------------------------------------------------------
