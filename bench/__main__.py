"""`python -m bench [--quick] [--suites ...] [--sizes ...]`: run the suites, print the markdown
table and write it to `bench/results/latest.md` (raw numbers in `latest.json`)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import asdict

from . import data, load, micro, procs, profiling
from .creates import creates
from .events import live_suite, raise_nofile, sse_suite
from .reads import reads
from .report import (
    HEADER,
    Row,
    environment,
)
from .run import RESULTS, Settings, parse_args, running, say
from .scaling import workers_suite
from .startup import startup


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
        tl.indexed()  # the id tables built: lookups before then search the ids (start-up cost)
        procs.wait_idle([tl])  # and the prover's pass done, as before the read suites' runs
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
    nofile_note = raise_nofile(cfg.sse_subscribers + 256) if "sse" in cfg.suites else ""
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
