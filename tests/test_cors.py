"""CORS for browser clients: preflights answered for configured origins (Authorization allowed),
the origin echoed on every response including errors and event streams, nothing for others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .envelope import expect_error

APP_ORIGIN = "http://localhost:3000"
MakeClient = Callable[..., Any]


@pytest.fixture
def make_client(open_client: MakeClient) -> MakeClient:
    return open_client  # the shared fixture (tests/conftest.py), under this file's name


def preflight(origin: str, method: str = "POST", headers: str | None = "authorization, content-type"
              ) -> dict[str, str]:
    out = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        out["Access-Control-Request-Headers"] = headers
    return out


async def test_preflight_from_allowed_origin_is_answered(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=(APP_ORIGIN,), api_keys=("k",))
    resp = await client.options("/v1/threads", headers=preflight(APP_ORIGIN))
    assert resp.status == 204  # no key needed: browsers never send credentials on a preflight
    assert resp.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in resp.headers.getall("Vary")
    assert int(resp.headers["Access-Control-Max-Age"]) > 0


async def test_a_preflight_with_an_expect_header_is_answered_as_one(
        make_client: MakeClient) -> None:
    """The Expect handler runs before the route's handler: it leaves a preflight to the gate
    (it answered the catch-all route's 405)."""
    client = await make_client(cors_origins=(APP_ORIGIN,), api_keys=("k",))
    resp = await client.options("/v1/threads", headers={**preflight(APP_ORIGIN),
                                                        "Expect": "100-continue"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


async def test_preflight_without_requested_headers_still_allows_authorization(
        make_client: MakeClient) -> None:
    client = await make_client(cors_origins=(APP_ORIGIN,))
    resp = await client.options("/v1/threads/t1/messages",
                                headers=preflight(APP_ORIGIN, "GET", headers=None))
    assert resp.status == 204
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed


async def test_responses_and_errors_carry_the_allowed_origin(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=(APP_ORIGIN, "tauri://localhost"), api_keys=("k",))
    ok = await client.post("/v1/threads", json={},
                           headers={"Origin": APP_ORIGIN, "Authorization": "Bearer k"})
    assert ok.status == 200
    assert ok.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    # A browser can only read the 401's body (and show why) if it carries the header too.
    denied = await client.get("/v1/threads", headers={"Origin": "tauri://localhost"})
    await expect_error(denied, 401)
    assert denied.headers["Access-Control-Allow-Origin"] == "tauri://localhost"


async def test_event_stream_carries_the_allowed_origin(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=(APP_ORIGIN,))
    async with client.get("/v1/events", headers={"Origin": APP_ORIGIN}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert resp.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


async def test_other_origins_get_no_cors(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=(APP_ORIGIN,))
    resp = await client.options("/v1/threads", headers=preflight("http://evil.example"))
    await expect_error(resp, 403)
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.get("/v1/threads", headers={"Origin": "http://evil.example"})
    assert resp.status == 200
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_wildcard_allows_any_origin(make_client: MakeClient) -> None:
    client = await make_client(cors_origins=("*",))
    resp = await client.options("/v1/threads", headers=preflight("http://anything.example"))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_is_off_by_default(make_client: MakeClient) -> None:
    client = await make_client()
    resp = await client.options("/v1/threads", headers=preflight(APP_ORIGIN))
    assert resp.status == 405
    assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.get("/v1/threads", headers={"Origin": APP_ORIGIN})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_simple_cross_site_post_from_allowed_origin_still_creates_nothing(
        make_client: MakeClient) -> None:
    client = await make_client(cors_origins=(APP_ORIGIN,))
    resp = await client.post("/v1/threads", data="{}",
                             headers={"Origin": APP_ORIGIN, "Content-Type": "text/plain"})
    await expect_error(resp, 415)
    assert (await (await client.get("/v1/threads")).json())["data"] == []
