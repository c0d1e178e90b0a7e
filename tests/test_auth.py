"""Optional API keys: Bearer auth on every /v1 route when keys are set, none when they are not;
401 in OpenAI's envelope; operational endpoints stay open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from service.app import create_app
from service.config import Config

from .envelope import expect_error

KEYS = ("key-one", "key-two")
MakeClient = Callable[..., Any]


@pytest.fixture
def make_client(open_client: MakeClient) -> MakeClient:
    return open_client  # the shared fixture (tests/conftest.py), under this file's name


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_without_keys_no_authorization_is_needed(make_client: MakeClient) -> None:
    client = await make_client()
    resp = await client.post("/v1/threads", json={})
    assert resp.status == 200
    assert (await client.get("/v1/threads")).status == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic a2V5LW9uZQ=="},
                                     {"Authorization": "Bearer "}, {"Authorization": "key-one"}])
async def test_missing_key_is_401_in_the_openai_envelope(make_client: MakeClient,
                                                         headers: dict[str, str]) -> None:
    client = await make_client(api_keys=KEYS)
    resp = await client.get("/v1/threads", headers=headers)
    error = await expect_error(resp, 401)
    assert error["code"] == "invalid_api_key"
    assert "Authorization header as 'Bearer YOUR_KEY'" in error["message"]


async def test_wrong_key_is_401_and_creates_nothing(make_client: MakeClient) -> None:
    client = await make_client(api_keys=KEYS)
    resp = await client.post("/v1/threads", json={}, headers=bearer("key-three"))
    error = await expect_error(resp, 401, "Incorrect API key provided.")
    assert error["code"] == "invalid_api_key"
    listing = await (await client.get("/v1/threads", headers=bearer("key-one"))).json()
    assert listing["data"] == []


async def test_each_of_several_keys_is_accepted(make_client: MakeClient) -> None:
    client = await make_client(api_keys=KEYS)
    created = await (await client.post("/v1/threads", json={}, headers=bearer("key-one"))).json()
    resp = await client.get(f"/v1/threads/{created['id']}", headers=bearer("key-two"))
    assert resp.status == 200
    assert (await resp.json())["id"] == created["id"]
    # The scheme is case-insensitive, as in RFC 7235.
    assert (await client.get("/v1/threads", headers={"Authorization": "bearer key-two"})
            ).status == 200


@pytest.mark.parametrize("path", ["/v1/threads/t1/messages", "/v1/events",
                                  "/v1/threads/t1/events", "/v1/nope"])
async def test_every_v1_route_is_guarded(make_client: MakeClient, path: str) -> None:
    client = await make_client(api_keys=KEYS)
    await expect_error(await client.get(path), 401)


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/openapi.json"])
async def test_operational_endpoints_are_open_without_a_key(make_client: MakeClient,
                                                            path: str) -> None:
    client = await make_client(api_keys=KEYS)
    assert (await client.get(path)).status == 200


async def test_sdk_works_with_a_key_and_raises_authentication_error_without(
        aiohttp_server: Any, make_config: Callable[..., Config]) -> None:
    server = await aiohttp_server(create_app(make_config(api_keys=KEYS)))
    base = str(server.make_url("/v1"))
    async with openai.AsyncOpenAI(base_url=base, api_key="key-two", max_retries=0,
                                  _strict_response_validation=True) as sdk:
        thread = await sdk.beta.threads.create()
        message = await sdk.beta.threads.messages.create(thread.id, role="user", content="hi")
        assert message.thread_id == thread.id
    async with openai.AsyncOpenAI(base_url=base, api_key="wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as info:
            await sdk.beta.threads.retrieve(thread.id)
        assert info.value.code == "invalid_api_key"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:1337", "192.168.1.20:1337",
                                  "127.0.0.1.evil.example", "localhost.evil.example",
                                  "[::ffff:192.168.1.20]:1337", "localhost..", "0.0.0.1"])
async def test_without_keys_a_rebound_host_name_is_refused_and_nothing_created(
        make_client: MakeClient, host: str) -> None:
    """DNS rebinding: a web page that points its own name at 127.0.0.1 must get nothing."""
    client = await make_client()
    resp = await client.post("/v1/threads", json={}, headers={"Host": host})
    await expect_error(resp, 403)
    resp = await client.get("/v1/threads", headers={"Host": host})
    await expect_error(resp, 403)
    listed = await (await client.get("/v1/threads")).json()
    assert listed["data"] == []


@pytest.mark.parametrize("host", ["localhost:1337", "127.0.0.1", "[::1]:1337", "LOCALHOST",
                                  # addresses, which no page can rebind, in any loopback spelling
                                  "0.0.0.0:1337", "127.0.0.2", "[::ffff:127.0.0.1]:1337", "[::]",
                                  "localhost.:1337", "app.localhost."])
async def test_without_keys_loopback_host_names_are_served(make_client: MakeClient,
                                                            host: str) -> None:
    client = await make_client()
    resp = await client.get("/v1/threads", headers={"Host": host})
    assert resp.status == 200


async def test_with_keys_any_host_name_is_served_with_the_key(make_client: MakeClient) -> None:
    client = await make_client(api_keys=KEYS)
    resp = await client.get("/v1/threads", headers={"Host": "threadline.lan", **bearer(KEYS[0])})
    assert resp.status == 200


async def test_bad_header_bytes_in_a_key_are_a_401_not_a_500(make_client: MakeClient) -> None:
    client = await make_client(api_keys=KEYS)
    resp = await client.get("/v1/threads", headers={"Authorization": "Bearer k\udcff".encode(
        "utf-8", "surrogateescape").decode("latin-1")})
    await expect_error(resp, 401)
