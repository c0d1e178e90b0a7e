"""`python -m bench [--quick] [--suites ...] [--sizes ...]`: run the suites, print the markdown
table and write it to `bench/results/latest.md` (raw numbers in `latest.json`)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import re
import resource
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from service.config import FIELDS as SERVICE_SETTINGS

from . import data, fanout, live, load, micro, procs, profiling
from .report import (
    HEADER,
    Row,
    at_least,
    at_most,
    div,
    environment,
    pct,
    rate,
    times,
)

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


def _uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


# --- reads: get and list ------------------------------------------------------------------------

def _measure(cfg: Settings, runs: dict[str, list[load.Run]], label: str, key: str,
             server: procs.Server, script: str, args: list[str], conns: int = 32,
             seconds: float | None = None) -> None:
    run = load.run_wrk(server.url, script, args, seconds=seconds or cfg.seconds,
                       connections=conns, cpu=cfg.client_cpu)
    runs.setdefault(key, []).append(run)
    say(f"  {label} {key}: {run.rps:,.1f}/s (p99 {run.p99_ms:.1f} ms)")


def _spread(r: load.Result) -> str:
    """The range of the repeated runs: how much to trust the median."""
    if len(r.runs) < 2:
        return "1 run"
    rates = sorted(x.rps for x in r.runs)
    return f"runs {rates[0]:,.0f} to {rates[-1]:,.0f}/s"


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
                go = functools.partial(_measure, cfg, runs, label)
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
            res = {k: load.Result(v) for k, v in runs.items()}
            cfg.raw.setdefault("reads", {})[label] = {k: [asdict(r) for r in v]
                                                      for k, v in runs.items()}
            ceiling = max(res[h.name].rps for h in hellos)
            ceiling_name = max(hellos, key=lambda h: res[h.name].rps).name
            for h in hellos:
                rows.append(Row("hello-world GET" + (" (uvloop)" if "uvloop" in h.name else ""),
                                label, "—", hello=rate(res[h.name].rps),
                                notes=f"p99 {res[h.name].median_run.p99_ms:.1f} ms; "
                                      f"{_spread(res[h.name])}"))
            if "healthz" in res:
                r = res["healthz"]
                rows.append(Row("GET /healthz (stack floor)", label, rate(r.rps), rate(ceiling),
                                vs_hello=pct(div(r.rps, ceiling)),
                                notes="no store work: the app's own per-request cost (routing, "
                                      f"the gate around each handler); {_spread(r)}"))
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
                         _spread(r)]
                if r.bad:
                    notes.append(f"**{r.bad} errors/non-2xx**")
                if wf_key not in res and ds.messages > cfg.wholefile_max:
                    notes.append(f"whole-file not run above {cfg.wholefile_max:,} messages")
                elif wf_key in res and ds.messages > 10_000:
                    notes.append("whole-file: one run at -c2")
                notes.append(f"ceiling: {ceiling_name}")
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

def _rss_anon(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


_READY = re.compile(r"index ready: .* ([\d.]+) MB in ([\d.]+) s")


def startup(cfg: Settings) -> list[Row]:
    ds = cfg.largest
    empty = data.scratch_dir("empty")
    (empty / "threads").mkdir()
    samples: list[tuple[float, int, int, float, int, int]] = []
    own_rates: list[float] = []
    readies: list[float] = []
    try:
        for _ in range(cfg.repeats):
            e = procs.threadline("threadline-empty", empty, cfg.server_cpu, cfg.logs, cfg.env)
            with e:
                t_empty = e.start()
                rss_e, anon_e = e.rss(), _rss_anon(e.pid)
            s = procs.threadline(f"threadline-startup-{ds.label}", ds.path, cfg.server_cpu,
                                 cfg.logs, cfg.env)
            with s:
                t_ready = s.start()
                t_full = s.indexed()  # the id tables, built just after it answers, included
                rss_f, anon_f = s.rss(), _rss_anon(s.pid)
            m = _READY.search(s.log_path.read_text(errors="replace"))
            if m and float(m.group(2)) > 0:
                own_rates.append(float(m.group(1)) / float(m.group(2)))
            readies.append(t_ready)
            say(f"startup {ds.label}: answering in {t_ready:.2f} s, indexed in {t_full:.2f} s "
                f"(empty dir {t_empty:.2f} s), "
                f"RSS {rss_f / 1e6:.0f} MB (empty {rss_e / 1e6:.0f} MB)")
            samples.append((t_empty, rss_e, anon_e, t_full, rss_f, anon_f))
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    t_empty = statistics.median(x[0] for x in samples)
    t_full = statistics.median(x[3] for x in samples)
    anon = statistics.median(x[5] - x[2] for x in samples)
    rss = statistics.median(x[4] - x[1] for x in samples)
    mb = ds.jsonl_bytes / 1e6
    net = max(t_full - t_empty, 1e-9)
    mbps = mb / net
    cfg.raw["startup"] = {"dataset": ds.label, "jsonl_bytes": ds.jsonl_bytes,
                          "messages": ds.messages, "samples": samples, "own_rates": own_rates}
    own = f"; server's own log: {statistics.median(own_rates):,.0f} MB/s" if own_rates else ""
    per_msg = anon / ds.messages
    return [
        Row("cold start-up index rate", ds.label, f"{mbps:,.0f} MB/s", target="≥ 500 MB/s",
            status=at_least(mbps, 500),
            notes=f"{mb:,.0f} MB jsonl; spawn → index whole (id tables included) in "
                  f"{t_full:.2f} s, minus {t_empty:.2f} s for an empty data dir (first /healthz "
                  f"200 at {statistics.median(readies):.2f} s){own}; page cache warm"),
        Row("index memory per message", ds.label, f"{per_msg:,.0f} B", target="≤ 64 B",
            status=at_most(per_msg, 64),
            notes=f"RssAnon after index minus empty data dir, / {ds.messages:,} messages "
                  f"(VmRSS: {rss / ds.messages:,.0f} B)"),
    ]


# --- live append → visible ----------------------------------------------------------------------

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

def _raise_nofile(need: int) -> str:
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
    missed_measured = res.api.timeouts + res.external.timeouts
    complete = rep.get("complete", 0) + (missed_measured == 0)
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
    return rows


# --- multi-process reads ------------------------------------------------------------------------

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
               _spread(r)]
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

def profile(cfg: Settings) -> str:
    if profiling.py_spy() is None:
        return ("### Profile\n\nskipped: py-spy is not installed (`.venv/bin/pip install -e "
                "'.[bench]'`)\n")
    ds = cfg.largest
    ids = [ds.thread_id, str(ds.ids_file)]
    out = [f"### Profile (py-spy, {ds.label} thread, {cfg.profile_seconds:g} s of load each)\n"]
    tl = procs.threadline(f"threadline-profile-{ds.label}", ds.path, cfg.server_cpu, cfg.logs,
                          cfg.env)
    with running(tl):
        for name, script, args in (("get", "get", ids), ("list desc", "list", [*ids, "desc"])):
            box: dict[str, load.Run] = {}
            t = threading.Thread(target=lambda s=script, a=args, b=box: b.setdefault(
                "run", load.run_wrk(tl.url, s, a, seconds=cfg.profile_seconds + 2,
                                    connections=32, cpu=cfg.client_cpu)))
            t.start()
            time.sleep(0.5)  # let wrk connect before sampling
            raw = RESULTS / f"profile-{script}.txt"
            prof = profiling.record(tl.pid, cfg.profile_seconds, raw)
            t.join()
            if prof is None:
                out.append(f"{name}: py-spy failed (see stderr)\n")
                continue
            rps = box["run"].rps if "run" in box else float("nan")
            out.append(profiling.markdown(f"{name}: {rps:,.0f} req/s while sampled", prof))
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    needs_wrk = cfg.suites & {"get", "list", "create", "workers", "profile"}
    if needs_wrk and not load.have_wrk():
        print(load.WRK_MISSING, file=sys.stderr)
        return 2
    if cfg.client_cpu is not None:
        os.sched_setaffinity(0, {cfg.client_cpu})  # this process and its children: client side
    # Before any server starts (they inherit it): the sse suite's server holds a socket per
    # subscriber, and so does the swarm.
    nofile_note = _raise_nofile(cfg.sse_subscribers + 256) if "sse" in cfg.suites else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    mode = "quick" if cfg.quick else "full"
    env_md = environment(mode, cfg.seconds, cfg.repeats, cfg.server_cpu, cfg.client_cpu)
    for label in cfg.sizes:
        data.dataset(label)
    rows: list[Row] = []
    sections: list[str] = []
    if cfg.suites & {"get", "list"}:
        rows += reads(cfg)
    if "create" in cfg.suites:
        rows += creates(cfg)
    if "startup" in cfg.suites:
        rows += startup(cfg)
    if "live" in cfg.suites:
        rows += live_suite(cfg)
    if "sse" in cfg.suites:
        rows += sse_suite(cfg, nofile_note)
    if "workers" in cfg.suites:
        rows += workers_suite(cfg)
    if "micro" in cfg.suites:
        path = cfg.largest.jsonl
        reads_n, reps = (5000, 3) if cfg.quick else (20_000, 5)
        say("micro: pread vs mmap vs thread pool")
        res = micro.run(path, reads_n, reps)
        cfg.raw["micro"] = res
        sections.append("### 1 KB read at an offset (`python -m bench.micro`)\n\n"
                        + micro.table(res) + "\n")
    if "profile" in cfg.suites:
        sections.append(profile(cfg))
    extra = ", ".join(f"{k}={v}" for k, v in cfg.env.items())
    md = "\n".join([
        f"## Threadline benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {mode} run, "
        f"{time.monotonic() - started:.0f} s)", "",
        env_md + (f"\n- Threadline environment: {extra}" if extra else ""), "",
        HEADER, *(r.markdown() for r in rows), "", *sections,
    ])
    print(md)
    (RESULTS / "latest.md").write_text(md + "\n")
    (RESULTS / "latest.json").write_text(json.dumps(
        {"rows": [asdict(r) for r in rows], "raw": cfg.raw}, indent=1, default=str))
    say(f"wrote {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
