"""Live changes: another program's append seen by a get and an SSE stream, and SSE fan-out to
many subscribers."""

from __future__ import annotations

import resource
import shutil
from dataclasses import asdict

from . import data, fanout, live, procs, sendfloor
from .report import (
    Row,
    at_most,
)
from .run import Settings, running, say


def live_suite(cfg: Settings) -> list[Row]:
    src = data.dataset("1k")
    scratch = data.scratch_dir("live")
    rows = []
    try:
        shutil.copytree(src.path, scratch, dirs_exist_ok=True)
        ds = data.Dataset("1k", scratch, src.thread_id, src.messages, src.jsonl_bytes)
        env = {k: v for k, v in cfg.env.items() if k != "THREADLINE_WATCH"}
        tl = procs.threadline("threadline-live", scratch, cfg.server_cpu, cfg.logs, env)
        with running(tl):
            got = live.append_to_get(tl.port, ds, cfg.appends)
            say(f"live append → GET: p50 {got.p50:.1f} ms, p99 {got.p99:.1f} ms, "
                f"{got.timeouts} timeouts")
            sse = live.append_to_sse(tl.port, ds, cfg.appends)
            say(f"live append → SSE: {sse.note or f'p50 {sse.p50:.1f} ms, p99 {sse.p99:.1f} ms'}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cfg.raw["live"] = {"get_ms": got.ms, "get_timeouts": got.timeouts, "sse_ms": sse.ms,
                       "sse_timeouts": sse.timeouts, "sse_note": sse.note}

    def row(name: str, lat: live.Latencies, target: bool) -> Row:
        notes = f"{len(lat.ms)} appends by another process (plain O_APPEND write)"
        if lat.timeouts:
            notes += f"; **{lat.timeouts} not visible within 5 s**"
        bad = lat.timeouts > 0
        status = at_most(lat.p99, 50) if target and not bad else ("✗ timeouts" if bad else "")
        return Row(name, "1k thread", f"p50 {lat.p50:.1f} / p99 {lat.p99:.1f} ms",
                   target="p99 ≤ 50 ms" if target else "", status=status, notes=notes)

    rows.append(row("live append → GET 200", got, True))
    if sse.note:
        rows.append(Row("live append → SSE event", "1k thread", "—", notes=sse.note))
    else:
        rows.append(row("live append → SSE event", sse, False))
    return rows


# --- SSE with many subscribers ------------------------------------------------------------------

def raise_nofile(need: int) -> str:
    """Raise this process's open-files limit to `need` before any server starts: the servers and
    the swarm inherit it. Returns a note saying what was done or what is missing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return ""
    new = need if hard == resource.RLIM_INFINITY else min(need, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    if new < need:
        return (f"open-files hard limit {hard} is below the {need} needed: raise it "
                "(`ulimit -Hn`, or `nofile` in /etc/security/limits.conf)")
    return f"open-files limit raised from {soft} to {new} for the server and the swarm"


def _lat(lat: live.Latencies) -> str:
    return f"p50 {lat.p50:.1f} / p99 {lat.p99:.1f} ms"


def sse_suite(cfg: Settings, nofile_note: str) -> list[Row]:
    n = cfg.sse_subscribers
    src = data.dataset("1k")
    scratch = data.scratch_dir("sse")
    try:
        shutil.copytree(src.path, scratch, dirs_exist_ok=True)
        ds = data.Dataset("1k", scratch, src.thread_id, src.messages, src.jsonl_bytes)
        env = {k: v for k, v in cfg.env.items() if k not in ("THREADLINE_WATCH",
                                                              "THREADLINE_WORKERS")}
        tl = procs.threadline("threadline-sse", scratch, cfg.server_cpu, cfg.logs, env)
        with running(tl):
            say(f"sse: opening {n:,} streams, then {cfg.appends} creates and "
                f"{cfg.appends} appends")
            res = fanout.run(tl.port, ds, n, cfg.appends, cfg.logs / "swarm.log")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    cfg.raw["sse"] = asdict(res)
    size = f"{n:,} subscribers" + (" (quick; target is at 1,000)" if n < 1000 else "")
    if res.note:
        return [Row("SSE create/append → event", size, "—",
                    notes=f"not measured: {res.note}; {nofile_note}".rstrip("; "))]
    say(f"sse: API create → event {_lat(res.api)} (all {n:,}: {_lat(res.api_all)}); "
        f"append → event {_lat(res.external)} (all {n:,}: {_lat(res.external_all)}); "
        f"swarm {res.report}")
    rep = res.report
    events = len(res.api.ms) + res.api.timeouts + len(res.external.ms) + res.external.timeouts
    missedmeasured = res.api.timeouts + res.external.timeouts
    complete = rep.get("complete", 0) + (missedmeasured == 0)
    delivered = (f"{complete:,}/{n:,} streams received all {events} events "
                 f"({rep.get('missing', '?')} missing, {rep.get('duplicates', '?')} duplicates, "
                 f"{rep.get('closed', '?')} streams closed by the server)")
    if "error" in rep:
        delivered = f"**delivery not counted: {rep['error']}**"
    rows = []
    deliveries = rep.get("delivery_ms", {})
    for name, kind, one, every, goal, how in (
            ("SSE: API create → event", "api", res.api, res.api_all, 5,
             "creates by POST (fsync=always)"),
            ("SSE: external append → event", "external", res.external, res.external_all, 50,
             "Jan-shaped lines appended by another process (through the watcher)")):
        bad = one.timeouts or every.timeouts or complete < n
        status = at_most(one.p99, goal) if not bad else "✗ events missing"
        spread = {k: f"{v:.1f}" for k, v in (deliveries.get(kind) or {}).items()}
        notes = [f"{len(one.ms) + one.timeouts} {how}, timed to a thread stream read by its own "
                 "thread (the server starts each fan-out at a random stream); arrival is the "
                 "kernel's receive time on the subscriber's socket",
                 f"every delivery to the swarm's {n - 1:,} streams: p50 {spread.get('p50', '?')}"
                 f" / p99 {spread.get('p99', '?')} / max {spread.get('max', '?')} ms",
                 f"to the last of all {n:,} streams: {_lat(every)}",
                 f"streams: {n - (n - 1) // 2:,} thread + {(n - 1) // 2:,} `/v1/events`",
                 delivered]
        if kind == "api" and res.api_ack.ms:
            notes.append(f"POST answered in {_lat(res.api_ack)}")
        if one.timeouts or every.timeouts:
            notes.append(f"**{one.timeouts} (measured) / {every.timeouts} (all) not seen "
                         f"within {fanout.WAIT_S:g} s**")
        if nofile_note:
            notes.append(nofile_note)
        rows.append(Row(name, size, _lat(one), target=f"p99 ≤ {goal} ms", status=status,
                        notes="; ".join(notes)))
    say(f"sse: the kernel's floor for {n:,} sends (C, no server)")
    rows.append(sendfloor.floor_row(n, 50, cfg.server_cpu, cfg.client_cpu))
    return rows


# --- multi-process reads ------------------------------------------------------------------------
