"""`GET /metrics`: Prometheus text that the official parser reads, and that moves with the work
done: requests by route and status, latency, index contents, feed records, fsyncs, watcher events
and open event streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.config import Config

from .jan import jan_message, jan_thread, write_thread
from .procs import ServerProcess
from .watchkit import wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient) -> Samples:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    return parse(await resp.text())


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    thread = await (await client.post("/v1/threads", json={})).json()
    route = "/v1/threads/{thread_id}"
    before = await scrape(client)
    assert (await client.get(f"/v1/threads/{thread['id']}")).status == 200
    assert (await client.get("/v1/threads/no_such_thread")).status == 404
    assert (await client.get("/not/a/route")).status == 404
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("threadline_http_requests_total", method="GET", route=route, status="200") == 1
    assert moved("threadline_http_requests_total", method="GET", route=route, status="404") == 1
    assert moved("threadline_http_requests_total", method="GET", route="unmatched",
                 status="404") == 1
    assert moved("threadline_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert moved("threadline_http_request_duration_seconds_sum", method="GET", route=route) > 0
    # Ids never become label values.
    assert not any(thread["id"] in str(labels) for _, labels in after)


async def test_a_client_gone_before_its_body_arrived_is_no_server_error(tmp_path: Path
                                                                       ) -> None:
    """It is counted as a client's close (499), not a 500, and logs no traceback. (A real server
    process: aiohttp's test server cancels the handler instead, as the real one does not.)"""
    server = ServerProcess(tmp_path / "data", tmp_path / "run")
    await server.start()
    route = "/v1/threads/{thread_id}/messages"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/v1/threads", json={}) as resp:
                thread_id = (await resp.json())["id"]
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(f"POST /v1/threads/{thread_id}/messages HTTP/1.1\r\n"
                         "Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         'Content-Length: 100\r\n\r\n{"role":'.encode())
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()

            async def samples() -> Samples:
                async with http.get(server.url + "/metrics") as resp:
                    return parse(await resp.text())

            async def counted() -> bool:
                return value(await samples(), "threadline_http_requests_total", method="POST",
                             route=route, status="499") == 1

            await wait_for(counted, what="the cut-short request counted as a client's close")
            assert value(await samples(), "threadline_http_requests_total", method="POST",
                         route=route, status="500") == 0
            async with http.get(f"{server.url}/v1/threads/{thread_id}/messages") as resp:
                assert (await resp.json())["data"] == []  # and nothing was written
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()


async def test_writes_move_feed_and_fsync_metrics(client: TestClient) -> None:
    before = await scrape(client)
    thread = await (await client.post("/v1/threads", json={})).json()
    for text in ("one", "two"):
        resp = await client.post(f"/v1/threads/{thread['id']}/messages",
                                 json={"role": "user", "content": text})
        assert resp.status == 200
    after = await scrape(client)
    assert value(after, "threadline_feed_changes_total", kind="thread.created") - value(
        before, "threadline_feed_changes_total", kind="thread.created") == 1
    assert value(after, "threadline_feed_changes_total", kind="thread.message.created") - value(
        before, "threadline_feed_changes_total", kind="thread.message.created") == 2
    assert value(after, "threadline_append_fsync_seconds_count") - value(
        before, "threadline_append_fsync_seconds_count") == 2
    assert value(after, "threadline_threads") == 1
    assert value(after, "threadline_messages") == 2


async def test_index_gauges_count_threads_messages_and_corrupt_lines(
        aiohttp_client: Any, make_config: Callable[..., Config], data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1"),
                 [jan_message("m1", "jan_1", "hi"), "{not json", jan_message("m2", "jan_1", "yo")])
    write_thread(data_dir, "jan_2", jan_thread("jan_2"), [jan_message("m3", "jan_2", "hey")])
    client = await aiohttp_client(create_app(make_config(watch=False)))
    samples = await scrape(client)
    assert value(samples, "threadline_index_ready") == 1
    assert value(samples, "threadline_threads") == 2
    assert value(samples, "threadline_messages") == 3
    assert value(samples, "threadline_corrupt_lines") == 1
    assert value(samples, "threadline_line_cache_bytes") == 0
    for _ in range(2):
        assert (await client.get("/v1/threads/jan_1/messages/m1")).status == 200
    samples = await scrape(client)
    assert value(samples, "threadline_line_cache_misses_total") == 1  # normalized once,
    assert value(samples, "threadline_line_cache_hits_total") == 1  # then served from the cache
    assert value(samples, "threadline_line_cache_bytes") > 0


async def test_another_writers_append_counts_as_watcher_event_and_feed_record(
        client: TestClient, data_dir: Path) -> None:
    thread = await (await client.post("/v1/threads", json={})).json()
    before = await scrape(client)
    line = json.dumps(jan_message("01JAN", thread["id"], "from Jan")) + "\n"
    with (data_dir / "threads" / thread["id"] / "messages.jsonl").open("a") as f:
        f.write(line)

    async def counted() -> Samples | None:
        s = await scrape(client)
        created = value(s, "threadline_feed_changes_total", kind="thread.message.created")
        return s if created > value(before, "threadline_feed_changes_total",
                                    kind="thread.message.created") else None

    after = await wait_for(counted, what="the appended line to reach the feed")
    assert value(after, "threadline_watcher_events_total") > value(
        before, "threadline_watcher_events_total")
    assert value(after, "threadline_append_fsync_seconds_count") == value(
        before, "threadline_append_fsync_seconds_count")  # nothing was written by us


async def test_open_event_streams_are_counted(client: TestClient) -> None:
    assert value(await scrape(client), "threadline_sse_subscribers") == 0
    async with client.get("/v1/events") as resp:
        assert resp.status == 200
        assert value(await scrape(client), "threadline_sse_subscribers") == 1
    resp.close()

    async def gone() -> bool:
        return value(await scrape(client), "threadline_sse_subscribers") == 0

    await wait_for(gone, what="the closed stream to be unsubscribed")


async def test_each_app_has_its_own_registry(aiohttp_client: Any,
                                             make_config: Callable[..., Config]) -> None:
    first = await aiohttp_client(create_app(make_config()))
    second = await aiohttp_client(create_app(make_config()))
    await asyncio.gather(*(first.get("/healthz") for _ in range(3)))
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(await scrape(first), "threadline_http_requests_total", **healthz) == 3
    assert value(await scrape(second), "threadline_http_requests_total", **healthz) == 0


async def test_openmetrics_is_served_to_scrapers_that_ask_for_it(client: TestClient) -> None:
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert resp.content_type == "application/openmetrics-text"
    assert (await resp.text()).rstrip().endswith("# EOF")


async def test_a_request_with_an_unknown_method_is_answered_and_counted_as_other(
        client: TestClient) -> None:
    """Any token is a method: one outside the standard set gets its envelope and one label."""
    for _ in range(2):
        resp = await client.request("PROPFIND", "/v1/threads")
        assert resp.status == 405
        assert (await resp.json())["error"]["type"] == "invalid_request_error"
    samples = await scrape(client)
    assert value(samples, "threadline_http_requests_total", method="other",
                 route="unmatched", status="405") == 2
    assert not any(("method", "PROPFIND") in labels for _, labels in samples)
