"""The hot reads' own matching (api/dispatch.py) gives the router's answer for every path: the
same route and the same values, or it leaves the path to the router."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from service.app import create_app
from service.config import Config

IDS = ["jan_1717666232", "thread_abc", "0F3A-uuid-like", "a.b", "a~b", "-dash", "_under", "~",
       "x" * 300]
ODD = ["", ".", "..", "%2e%2e", "a%2Fb", "%41bc", "a%20b", "é", "a b", "a;b", "a+b", "a@b",
       "a:b", "a,b", "(a)", "a'b", "a*b", "a!b", "a$b", "a=b", "a&b"]
SUFFIXES = ["", "/", "?limit=1", "?after=a/b&order=asc", "?", "#frag", "/files", "//"]


def _paths() -> list[str]:
    out = []
    for tid in IDS + ODD:
        for mid in [None, "m1", "~", "x" * 300, "", ".", "..", "a%2Fb", "é", "a b", "a;b", "a=b"]:
            base = f"/v1/threads/{tid}/messages" + ("" if mid is None else f"/{mid}")
            out += [base + s for s in SUFFIXES]
    out += ["/v1/threads", "/v1/threads/", "/v1/threads/t", "/v1/threads/t/events",
            "/v1/threads/t/messagesx", "/v1/threads/t/Messages", "/v2/threads/t/messages",
            "/v1/threads/t/messages/m/files/f", "/v1/threadsx/t/messages", "/healthz"]
    return out


def _answer(match: Any) -> tuple[Any, dict[str, str], Any]:
    """What a match tells the application: the route, the values, the error (for a miss)."""
    http_exception = getattr(match, "http_exception", None)
    return (match.route, dict(match), None if http_exception is None
            else (type(http_exception), http_exception.status))


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
async def test_same_answer_as_the_router(make_config: Callable[..., Config], method: str) -> None:
    app = create_app(make_config())
    router = app.router
    fast = 0
    # Other methods always take the walk: a sample of the paths shows it.
    for path in _paths() if method == "GET" else _paths()[::7]:
        request = make_mocked_request(method, path, app=app)
        mine = await router.resolve(request)
        general = await web.UrlDispatcher.resolve(router, request)  # the router's own walk
        assert _answer(mine) == _answer(general), path
        fast += mine is not general and method == "GET" and "thread_id" in mine
    if method == "GET":
        assert fast > 100  # and the shortcut was taken: these are not all the router's answers


async def test_shortcut_is_taken_only_for_plain_paths(make_config: Callable[..., Config]
                                                     ) -> None:
    """The router's own walk is not run for the two hot shapes, and is for the rest."""
    walked: list[str] = []
    general = web.UrlDispatcher.resolve

    async def counting(self: web.UrlDispatcher, request: web.Request) -> Any:
        walked.append(request.raw_path)
        return await general(self, request)

    web.UrlDispatcher.resolve = counting  # type: ignore[method-assign]
    try:
        app = create_app(make_config())  # its router's walk is now the counting one
        router = app.router
        for path in ["/v1/threads/t1/messages/m1", "/v1/threads/t1/messages?limit=2&order=asc"]:
            match = await router.resolve(make_mocked_request("GET", path, app=app))
            assert match["thread_id"] == "t1"
        assert walked == []
        for path in ["/v1/threads/t%31/messages/m1", "/v1/threads/t1/messages/../m1",
                     "/v1/threads/t1"]:
            await router.resolve(make_mocked_request("GET", path, app=app))
        assert len(walked) == 3
    finally:
        web.UrlDispatcher.resolve = general  # type: ignore[method-assign]


async def test_over_http(client: TestClient) -> None:
    """Through a real server: the shortcut's routes answer, and an escaped id still reaches
    the same message by the router's walk."""
    thread = await (await client.post("/v1/threads", json={})).json()
    tid = thread["id"]
    msg = await (await client.post(f"/v1/threads/{tid}/messages",
                                   json={"role": "user", "content": "hi"})).json()
    got = await client.get(f"/v1/threads/{tid}/messages/{msg['id']}")
    assert got.status == 200 and (await got.json())["id"] == msg["id"]
    escaped = "".join(f"%{b:02X}" for b in msg["id"].encode())
    got = await client.get(f"/v1/threads/{tid}/messages/{escaped}")
    assert got.status == 200 and (await got.json())["id"] == msg["id"]
    page = await client.get(f"/v1/threads/{tid}/messages?limit=1&order=asc")
    assert page.status == 200 and (await page.json())["data"][0]["id"] == msg["id"]
    head = await client.head(f"/v1/threads/{tid}/messages/{msg['id']}")
    assert head.status == 200
    missing = await client.get(f"/v1/threads/{tid}/messages/msg_nope")
    assert missing.status == 404 and (await missing.json())["error"]["param"] == "message_id"


def test_no_route_the_shortcut_would_shadow(make_config: Callable[..., Config]) -> None:
    """The shortcut answers every plain `/v1/threads/X/messages[/Y]` GET itself: a route added
    later with a fixed segment in one of those places (`.../messages/search`) would never be
    reached. Only the two hot routes may have these shapes."""
    app = create_app(make_config())
    shapes = []
    for resource in app.router.resources():
        parts = resource.canonical.split("/")
        hot_shape = len(parts) in (5, 6) and parts[1:3] == ["v1", "threads"] \
            and parts[4] == "messages"
        if hot_shape and any(route.method == "GET" for route in resource):
            shapes.append(resource.canonical)
    assert sorted(shapes) == ["/v1/threads/{thread_id}/messages",
                              "/v1/threads/{thread_id}/messages/{message_id}"]
