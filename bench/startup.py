"""Start-up: the cold index rate and the index's memory per message."""

from __future__ import annotations

import re
import shutil
import statistics

from . import data, procs
from .report import (
    Row,
    at_least,
    at_most,
)
from .run import Settings, say

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
                rss_e, anon_e = e.rss(), procs.rss_bytes(e.pid, "RssAnon")
            s = procs.threadline(f"threadline-startup-{ds.label}", ds.path, cfg.server_cpu,
                                 cfg.logs, cfg.env)
            with s:
                t_ready = s.start()
                t_full = s.indexed()  # the id tables, built just after it answers, included
                rss_f, anon_f = s.rss(), procs.rss_bytes(s.pid, "RssAnon")
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
