"""Prometheus metrics, in a registry of the app's own (tests build many apps in one process).

Counted as things happen: requests (by method, route template and status) and their latency,
change-feed records by kind (the feed, not the files: whoever wrote a change, it is counted once),
and the time each batch of appended lines takes to write and fsync. Read when scraped: what the
index holds, open event streams and the watcher's counters.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .feed import Change, Feed
from .index.catalog import Catalog
from .index.peers import Peers
from .store.resident import Reader
from .watch import WatchStats

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Requests are served in well under a millisecond to seconds; fsyncs take 0.1 ms to a second.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _StateCollector(Collector):
    """Gauges and counters read from the live state at scrape time."""

    def __init__(self, catalog: Catalog, watch: WatchStats, sse_subscribers: Callable[[], int],
                 changes: dict[str, int], peers: Peers | None, reader: Reader) -> None:
        self.changes = changes
        self.reader = reader
        self.peers = peers
        self.catalog = catalog
        self.watch = watch
        self.sse_subscribers = sse_subscribers

    def collect(self) -> Iterable[Metric]:
        changes = CounterMetricFamily("threadline_feed_changes",
                                      "Change-feed records (any writer) by kind.", labels=["kind"])
        for kind, count in sorted(self.changes.items()):
            changes.add_metric([kind], count)
        yield changes
        cache = self.catalog.lines
        yield CounterMetricFamily("threadline_line_cache_hits",
                                  "Jan-shaped lines served from the cache of normalized lines.",
                                  value=cache.hits)
        yield CounterMetricFamily("threadline_line_cache_misses",
                                  "Jan-shaped lines normalized because the cache lacked them.",
                                  value=cache.misses)
        yield GaugeMetricFamily("threadline_line_cache_bytes",
                                "Bytes the normalized lines held take, bookkeeping included "
                                "(bounded by line_cache_mb).",
                                value=cache.size)
        yield CounterMetricFamily(
            "threadline_read_disk_waits",
            "Byte ranges of gets and list pages the page cache no longer held, read by a reader "
            "thread while the event loop went on (store/resident.py).", value=self.reader.loads)
        yield CounterMetricFamily(
            "threadline_read_loop_waits",
            "Gets and list pages read on the event loop after all, their bytes dropped again "
            "after each load or too scattered (store/resident.py).", value=self.reader.fallbacks)
        threads, messages, corrupt = self.catalog.stats()
        w = self.watch
        yield GaugeMetricFamily("threadline_index_ready", "1 once the start-up index is built.",
                                value=int(self.catalog.ready))
        yield GaugeMetricFamily("threadline_threads", "Threads in the index.", value=threads)
        yield GaugeMetricFamily("threadline_messages", "Messages in the index.", value=messages)
        yield GaugeMetricFamily("threadline_corrupt_lines",
                                "Lines of messages.jsonl that are not messages (skipped, kept).",
                                value=corrupt)
        yield GaugeMetricFamily("threadline_sse_subscribers", "Open event streams.",
                                value=self.sse_subscribers())
        yield CounterMetricFamily("threadline_watcher_events",
                                  "File events the watcher received.", value=w.paths)
        yield CounterMetricFamily("threadline_watcher_batches",
                                  "Batches of file events the watcher received.", value=w.batches)
        yield CounterMetricFamily("threadline_watcher_errors", "Watcher and sync failures.",
                                  value=w.errors)
        yield GaugeMetricFamily("threadline_watcher_lag_seconds",
                                "From the last batch of file events to its threads being indexed.",
                                value=w.last_lag_ms / 1000)
        if self.peers is not None:  # workers = N: catching up with the other workers' writes
            yield CounterMetricFamily(
                "threadline_peer_catch_ups",
                "Reads that first caught up with another worker's write (index/peers.py).",
                value=self.peers.catch_ups)
            yield CounterMetricFamily(
                "threadline_peer_syncs",
                "Threads those catch-ups found changed and synced before the watcher did.",
                value=self.peers.syncs)


Observe = Callable[[str, int, float], None]  # (method, status, seconds) of one request


class RequestStats(Collector):
    """Requests by method, route template and status, and their latency, counted in plain lists.

    prometheus_client's Counter and Histogram take a lock per update and walk the buckets in
    Python: twice the cost of the rest of a small request's bookkeeping. One event loop thread
    updates these (each worker process has its own), so no lock is needed; the families are
    built when scraped."""

    def __init__(self) -> None:
        # (method, route, status) -> [count, sum of seconds, count per bucket (+Inf last)]
        self.cells: dict[tuple[str, str, int], list[float]] = {}

    def observer(self, route: str) -> Observe:
        """The update function for one route (its template is fixed when the route is made)."""
        cells = self.cells
        bounds = LATENCY_BUCKETS
        width = 2 + len(bounds) + 1

        def observe(method: str, status: int, seconds: float) -> None:
            key = (method, route, status)
            cell = cells.get(key)
            if cell is None:
                if method not in METHODS:  # any token is a method: bound the label values
                    key = ("other", route, status)
                    cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = [0.0] * width
            cell[0] += 1
            cell[1] += seconds
            cell[2 + bisect_left(bounds, seconds)] += 1
        return observe

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "threadline_http_requests", "HTTP requests by method, route and status.",
            labels=["method", "route", "status"])
        latency = HistogramMetricFamily(
            "threadline_http_request_duration_seconds",
            "Time to serve a request (an event stream: its whole life), by method and route.",
            labels=["method", "route"])
        by_route: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), cell in sorted(self.cells.items()):
            requests.add_metric([method, route, str(status)], cell[0])
            total = by_route.setdefault((method, route), [0.0] * len(cell))
            for i, v in enumerate(cell):
                total[i] += v
        for (method, route), total in by_route.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), total[2:], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            latency.add_metric([method, route], buckets, total[1])
        yield requests
        yield latency


class Metrics:
    def __init__(self, catalog: Catalog, feed: Feed, watch: WatchStats,
                 sse_subscribers: Callable[[], int], peers: Peers | None, reader: Reader
                 ) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestStats()
        self.registry.register(self.requests)
        self.changes: dict[str, int] = {}  # feed records by kind (plain ints: see RequestStats)
        self.fsync = Histogram(
            "threadline_append_fsync_seconds",
            "Time to write and fsync (per the fsync setting) one batch of appended lines.",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(catalog, watch, sse_subscribers, self.changes,
                                               peers, reader))
        feed.subscribe(self._on_change)

    def _on_change(self, change: Change) -> None:
        self.changes[change.kind] = self.changes.get(change.kind, 0) + 1

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition in the format the scraper asks for (Prometheus text or OpenMetrics),
        and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type
