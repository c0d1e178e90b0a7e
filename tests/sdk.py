"""The official openai SDK pointed at a running test server (for tests that start it late)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai
from aiohttp.test_utils import TestServer


@asynccontextmanager
async def open_sdk(server: TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """Unmodified client, strict response validation, no retries (a retry would hide a 5xx).
    Plain HTTP to loopback: `verify=False` only skips loading the CA bundle (50 ms a client)."""
    http = openai.DefaultAsyncHttpxClient(verify=False)
    async with openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused",
                                  max_retries=0, _strict_response_validation=True,
                                  http_client=http) as client:
        yield client
