"""Assertions on the one error contract: `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse

ERROR_KEYS = {"message", "type", "param", "code"}


def check_envelope(status: int, content_type: str, raw: bytes) -> dict[str, Any]:
    """The error object of an error response, after checking its shape exactly."""
    assert 400 <= status < 500, (status, raw[:300])
    assert content_type == "application/json", (content_type, raw[:300])
    body = json.loads(raw)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"], error
    assert error["type"] == "invalid_request_error", error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    return error  # type: ignore[no-any-return]


async def expect_error(resp: ClientResponse, status: int | None = None,
                       message: str | None = None) -> dict[str, Any]:
    """Read `resp` as an error envelope; check its status (any 4xx if None) and message."""
    error = check_envelope(resp.status, resp.content_type, await resp.read())
    if status is not None:
        assert resp.status == status, (resp.status, error)
    if message is not None:
        assert error["message"] == message, error
    return error


def no_thread(thread_id: str) -> str:
    return f"No thread found with id '{thread_id}'."


def no_message(message_id: str) -> str:
    return f"No message found with id '{message_id}'."
