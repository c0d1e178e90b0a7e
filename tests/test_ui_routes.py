"""The viewer's server side, without a browser: the page and its assets, their headers, the
allow-list that keeps `/ui/...` from naming any other file, and `/v1/thread_summaries`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

from service.api.ui import UI_DIR
from service.app import create_app
from service.config import Config

from .envelope import expect_error
from .jan import jan_message, jan_thread, write_thread

JSON = {"Content-Type": "application/json"}


async def test_page_is_served_with_a_csp_that_allows_no_inline_script(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await resp.text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts == [""]  # one script, loaded from /ui, with no inline body
    assert '<script type="module" src="/ui/app.js">' in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


async def test_assets_are_served_from_the_package(client: TestClient) -> None:
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css"),
                       ("favicon.svg", "image/svg+xml")):
        resp = await client.get(f"/ui/{name}")
        assert resp.status == 200, name
        assert kind in resp.content_type, (name, resp.content_type)
        assert await resp.read() == (UI_DIR / name).read_bytes()


async def test_ui_paths_cannot_name_any_file_outside_the_asset_list(client: TestClient) -> None:
    for raw in ("/ui/..%2Fapi%2Fui.py", "/ui/%2e%2e%2fkeys.py", "/ui/..%5Capp.py",
                "/ui/%2e%2e", "/ui/.hidden", "/ui/nope.js", "/ui/index.html%00.js"):
        resp = await client.get(URL(raw, encoded=True))
        await expect_error(resp, 404)
    resp = await client.get(URL("/ui/../service/app.py", encoded=True))
    assert resp.status == 404
    assert b"create_app" not in await resp.read()


async def test_page_and_assets_are_open_but_the_api_they_call_needs_the_key(
        aiohttp_client: Any, make_config: Callable[..., Config]) -> None:
    client = await aiohttp_client(create_app(make_config(api_keys=("k1",))))
    assert (await client.get("/")).status == 200
    assert (await client.get("/ui/app.js")).status == 200
    await expect_error(await client.get("/v1/thread_summaries?ids=x"), 401)
    await expect_error(await client.get("/v1/events"), 401)
    ok = await client.get("/v1/thread_summaries?ids=x", headers={"Authorization": "Bearer k1"})
    assert ok.status == 200


def test_viewer_script_never_turns_data_into_html() -> None:
    # Code only: the comments name these sinks to say they are not used.
    source = re.sub(r"(^|\s)//.*$", "", (UI_DIR / "app.js").read_text(), flags=re.M)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "EventSource("):
        assert sink not in source, sink


async def test_summaries_give_count_last_activity_and_first_text(
        aiohttp_client: Any, make_config: Callable[..., Config], data_dir: Path) -> None:
    write_thread(data_dir, "jan_1", jan_thread("jan_1", created_ms=1_700_000_000_000), [
        jan_message("a", "jan_1", "  first\n\nline  ", created_ms=1_700_000_010_000),
        jan_message("b", "jan_1", "second", created_ms=1_700_000_020_000),
    ])
    client = await aiohttp_client(create_app(make_config()))
    made = await (await client.post("/v1/threads", json={}, headers=JSON)).json()

    resp = await client.get(f"/v1/thread_summaries?ids=jan_1,missing,{made['id']},jan_1")
    assert resp.status == 200
    body = await resp.json()
    assert body["object"] == "list"
    assert body["data"] == [
        {"id": "jan_1", "object": "thread.summary", "message_count": 2,
         "last_activity_at": 1_700_000_020, "preview": "first line"},
        {"id": made["id"], "object": "thread.summary", "message_count": 0,
         "last_activity_at": made["created_at"], "preview": None},
    ]

    created = await client.post("/v1/threads/jan_1/messages", headers=JSON,
                                json={"role": "user", "content": "third"})
    newest = (await created.json())["created_at"]
    again = await (await client.get("/v1/thread_summaries?ids=jan_1")).json()
    assert again["data"][0]["message_count"] == 3
    assert again["data"][0]["last_activity_at"] == newest


async def test_summaries_refuse_more_than_a_hundred_ids(client: TestClient) -> None:
    ids = ",".join(f"t{i}" for i in range(101))
    error = await expect_error(await client.get(f"/v1/thread_summaries?ids={ids}"), 400)
    assert error["param"] == "ids"
    empty = await client.get("/v1/thread_summaries")
    assert (await empty.json())["data"] == []
